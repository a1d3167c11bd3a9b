// SPDX-License-Identifier: MIT
// Percent-encoding and form parsing: lib/http/query.cpp.

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

std::string decoded(std::string_view text) {
  std::string out;
  REQUIRE(percent_decode(text, out) == Error::None);
  return out;
}

std::string encoded(std::string_view text) {
  std::string out;
  percent_encode(text, out);
  return out;
}

std::vector<FormField> form(std::string_view text, const FormLimits& limits = {}) {
  std::vector<FormField> fields;
  REQUIRE(parse_form(text, fields, limits) == Error::None);
  return fields;
}

// RFC 3986 §2.1: "%" HEXDIG HEXDIG, either case.
TEST_CASE("percent_decode turns %XX into the byte XX in either case", "[http]") {
  CHECK(decoded("") == "");
  CHECK(decoded("plain") == "plain");
  CHECK(decoded("a%2Fb") == "a/b");
  CHECK(decoded("a%2fb") == "a/b");
  CHECK(decoded("%41%42%43") == "ABC");
  CHECK(decoded("%00") == std::string(1, '\0'));
  CHECK(decoded("%FF%fe") == "\xff\xfe");
  CHECK(decoded("%25") == "%");
  CHECK(decoded("%2541") == "%41");
}

TEST_CASE("percent_decode leaves '+' alone: it is a space only in forms", "[http]") {
  CHECK(decoded("a+b") == "a+b");
  CHECK(decoded("%2B") == "+");
}

TEST_CASE("percent_decode refuses a '%' without two hex digits and leaves its output alone",
          "[http]") {
  const auto bad = GENERATE(as<std::string_view>{}, "%", "%4", "a%", "ab%4", "%zz", "%4g", "%g4",
                            "%%41", "ok%2Fthen%", "% 41", "%+1");
  std::string out = "kept";
  CHECK(percent_decode(bad, out) == Error::BadPercentEncoding);
  CHECK(out == "kept");
}

TEST_CASE("percent_decode appends to its output", "[http]") {
  std::string out = "x=";
  REQUIRE(percent_decode("%31", out) == Error::None);
  CHECK(out == "x=1");
}

// RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
TEST_CASE("percent_encode keeps unreserved characters and encodes every other byte", "[http]") {
  CHECK(encoded("") == "");
  CHECK(encoded("AZaz09-._~") == "AZaz09-._~");
  CHECK(encoded("a b+c/d?e&f=g%") == "a%20b%2Bc%2Fd%3Fe%26f%3Dg%25");
  CHECK(encoded(std::string_view("\0\n\x7f\x80\xff", 5)) == "%00%0A%7F%80%FF");
}

TEST_CASE("percent_encode then percent_decode gives every byte back", "[http]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string e = encoded(all);
  CHECK(e.size() == 66 + 3 * 190);
  CHECK(decoded(e) == all);
  CHECK(form("k=" + e) == std::vector<FormField>{{"k", all}});
}

// WHATWG URL §5.1, application/x-www-form-urlencoded parsing.
TEST_CASE("parse_form splits on '&' and the first '=' and decodes '+' and %XX", "[http]") {
  CHECK(form("a=1&b=two+words&c=%26%3D%2B") ==
        std::vector<FormField>{{"a", "1"}, {"b", "two words"}, {"c", "&=+"}});
  CHECK(form("na+me%21=v") == std::vector<FormField>{{"na me!", "v"}});
  CHECK(form("a=b=c") == std::vector<FormField>{{"a", "b=c"}});
}

TEST_CASE("parse_form keeps repeated names in order", "[http]") {
  CHECK(form("x=1&y=2&x=3&x=1") ==
        std::vector<FormField>{{"x", "1"}, {"y", "2"}, {"x", "3"}, {"x", "1"}});
}

TEST_CASE("parse_form skips empty fields and reads a field without '=' as an empty value",
          "[http]") {
  CHECK(form("").empty());
  CHECK(form("&&&").empty());
  CHECK(form("&a=1&&b&") == std::vector<FormField>{{"a", "1"}, {"b", ""}});
  CHECK(form("=x&a=") == std::vector<FormField>{{"", "x"}, {"a", ""}});
  CHECK(form("=") == std::vector<FormField>{{"", ""}});
}

// Python's CVE-2021-23336: ';' as a second separator let caches and applications disagree.
TEST_CASE("parse_form does not split on semicolons", "[http]") {
  CHECK(form("a=1;b=2") == std::vector<FormField>{{"a", "1;b=2"}});
}

TEST_CASE("parse_form appends to the fields it is given", "[http]") {
  std::vector<FormField> fields{{"old", "1"}};
  REQUIRE(parse_form("new=2", fields) == Error::None);
  CHECK(fields == std::vector<FormField>{{"old", "1"}, {"new", "2"}});
}

TEST_CASE("parse_form refuses bad percent-encoding anywhere and leaves the fields alone",
          "[http]") {
  const auto bad =
      GENERATE(as<std::string_view>{}, "a=%", "a%=1", "a=1&b=%zz", "a=1&%4=b", "a=%4g&b=2");
  std::vector<FormField> fields{{"old", "1"}};
  CHECK(parse_form(bad, fields) == Error::BadPercentEncoding);
  CHECK(fields == std::vector<FormField>{{"old", "1"}});
}

TEST_CASE("parse_form takes exactly max_fields fields and refuses one more", "[http]") {
  const FormLimits limits{.max_fields = 3, .max_bytes = 100};
  CHECK(form("a&b&&c&", limits).size() == 3);
  std::vector<FormField> fields{{"old", "1"}};
  CHECK(parse_form("a&b&&c&d", fields, limits) == Error::TooManyFields);
  CHECK(fields == std::vector<FormField>{{"old", "1"}});
  CHECK(parse_form("a", fields, {.max_fields = 0, .max_bytes = 100}) == Error::TooManyFields);
  CHECK(form("&&", {.max_fields = 0, .max_bytes = 100}).empty());
}

TEST_CASE("parse_form takes exactly max_bytes decoded bytes and refuses one more", "[http]") {
  // Decoded: "ab" + "c d" + "%" + "" = 6 bytes from 14 encoded ones.
  const FormLimits at{.max_fields = 10, .max_bytes = 6};
  CHECK(form("ab=c+d&%25", at) == std::vector<FormField>{{"ab", "c d"}, {"%", ""}});
  std::vector<FormField> fields{{"old", "1"}};
  const FormLimits under{.max_fields = 10, .max_bytes = 5};
  CHECK(parse_form("ab=c+d&%25", fields, under) == Error::FormTooLarge);
  CHECK(fields == std::vector<FormField>{{"old", "1"}});
}

TEST_CASE("the limits count only the fields of this call", "[http]") {
  std::vector<FormField> fields{{"a", "1"}, {"b", "2"}};
  REQUIRE(parse_form("c=3", fields, {.max_fields = 1, .max_bytes = 2}) == Error::None);
  CHECK(fields.size() == 3);
}

TEST_CASE("field() finds the first value of a name", "[http]") {
  const auto fields = form("a=1&b=&a=2");
  CHECK(field(fields, "a") == "1");
  CHECK(field(fields, "b") == "");
  CHECK_FALSE(field(fields, "A"));
  CHECK_FALSE(field(fields, "c"));
}

}  // namespace
}  // namespace fcgimux::http
