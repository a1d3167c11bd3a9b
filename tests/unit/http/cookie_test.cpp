// SPDX-License-Identifier: MIT
// Cookies in and out: lib/http/cookie.cpp.

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

std::vector<Cookie> cookies(std::string_view header, std::size_t max_cookies = 200) {
  std::vector<Cookie> out;
  REQUIRE(parse_cookies(header, out, max_cookies) == Error::None);
  return out;
}

std::string set_cookie_value(const SetCookie& cookie) {
  std::string out;
  REQUIRE(append_set_cookie(out, cookie) == Error::None);
  return out;
}

// RFC 6265 §4.2.1: cookie-string = cookie-pair *( ";" SP cookie-pair ).
TEST_CASE("a Cookie header gives its pairs in order as views into it", "[http]") {
  const std::string header = "sid=abc123; theme=dark; lang=en-GB";
  const auto parsed = cookies(header);
  CHECK(parsed == std::vector<Cookie>{{"sid", "abc123"}, {"theme", "dark"}, {"lang", "en-GB"}});
  CHECK(parsed[0].name.data() == header.data());
  CHECK(parsed[2].value.data() == header.data() + header.size() - 5);
}

TEST_CASE("cookie pairs may be separated without a space or with extra whitespace", "[http]") {
  CHECK(cookies("a=1;b=2") == std::vector<Cookie>{{"a", "1"}, {"b", "2"}});
  CHECK(cookies(" \ta = 1 \t;  b=2 ; ") == std::vector<Cookie>{{"a", "1"}, {"b", "2"}});
  CHECK(cookies("").empty());
  CHECK(cookies(";;  ;").empty());
}

// RFC 6265 §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
TEST_CASE("a cookie value in double quotes loses its quotes and nothing else", "[http]") {
  CHECK(cookies("a=\"x y\"; b=\"\"; c=\"; d=\"e\"f\"") ==
        std::vector<Cookie>{{"a", "x y"}, {"b", ""}, {"c", "\""}, {"d", "e\"f"}});
}

TEST_CASE("cookie values are returned as sent, '=' and percent-encoding included", "[http]") {
  CHECK(cookies("t=a=b==; u=%41%zz; v=") ==
        std::vector<Cookie>{{"t", "a=b=="}, {"u", "%41%zz"}, {"v", ""}});
}

TEST_CASE("repeated cookie names are all kept, in order", "[http]") {
  CHECK(cookies("id=1; id=2") == std::vector<Cookie>{{"id", "1"}, {"id", "2"}});
}

TEST_CASE("a malformed cookie pair is skipped and the others are kept", "[http]") {
  CHECK(cookies("novalue; a=1") == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies("=x; a=1") == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies("b c=x; a=1") == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies("b(c)=x; a=1") == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies("b=x\r\nSet-Cookie: y; a=1") == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies(std::string_view("b=x\0y; a=1", 10)) == std::vector<Cookie>{{"a", "1"}});
  CHECK(cookies("b=x\x7fy; a=1") == std::vector<Cookie>{{"a", "1"}});
}

TEST_CASE("cookie values may hold non-ASCII bytes", "[http]") {
  CHECK(cookies("n=caf\xc3\xa9") == std::vector<Cookie>{{"n", "caf\xc3\xa9"}});
}

TEST_CASE("parse_cookies keeps exactly max_cookies pairs and refuses one more", "[http]") {
  CHECK(cookies("a=1; b=2; bad; c=3", 3).size() == 3);
  std::vector<Cookie> out{{"old", "1"}};
  CHECK(parse_cookies("a=1; b=2; bad; c=3; d=4", out, 3) == Error::TooManyCookies);
  CHECK(out == std::vector<Cookie>{{"old", "1"}});
  CHECK(parse_cookies("a=1", out, 0) == Error::TooManyCookies);
  CHECK(cookies("bad", 0).empty());
}

// RFC 6265 §4.1.1: the attributes as sent.
TEST_CASE("append_set_cookie writes every attribute in order", "[http]") {
  CHECK(set_cookie_value({.name = "sid",
                          .value = "abc",
                          .path = "/",
                          .domain = "example.com",
                          .max_age = 3600,
                          .expires = "Wed, 21 Oct 2026 07:28:00 GMT",
                          .secure = true,
                          .http_only = true,
                          .same_site = SameSite::Strict}) ==
        "sid=abc; Path=/; Domain=example.com; Max-Age=3600; "
        "Expires=Wed, 21 Oct 2026 07:28:00 GMT; Secure; HttpOnly; SameSite=Strict");
}

TEST_CASE("append_set_cookie leaves out the attributes that are not set", "[http]") {
  CHECK(set_cookie_value({.name = "a", .value = "1"}) == "a=1");
  CHECK(set_cookie_value({.name = "a", .value = ""}) == "a=");
  CHECK(set_cookie_value({.name = "a", .value = "1", .same_site = SameSite::Lax}) ==
        "a=1; SameSite=Lax");
  CHECK(set_cookie_value({.name = "a", .value = "1", .http_only = true}) == "a=1; HttpOnly");
  CHECK(
      set_cookie_value({.name = "a", .value = "1", .secure = true, .same_site = SameSite::None}) ==
      "a=1; Secure; SameSite=None");
}

TEST_CASE("append_set_cookie writes a zero or negative Max-Age as given", "[http]") {
  CHECK(set_cookie_value({.name = "a", .value = "", .max_age = 0}) == "a=; Max-Age=0");
  CHECK(set_cookie_value({.name = "a", .value = "", .max_age = -1}) == "a=; Max-Age=-1");
}

TEST_CASE("append_set_cookie appends to its output", "[http]") {
  std::string out = "Set-Cookie: ";
  REQUIRE(append_set_cookie(out, {.name = "a", .value = "1"}) == Error::None);
  CHECK(out == "Set-Cookie: a=1");
}

TEST_CASE("append_set_cookie refuses a name that is not a token", "[http]") {
  const auto name = GENERATE(as<std::string_view>{}, "", "a b", "a=b", "a;b", "a\r\nb", "a,b",
                             "a\"b", "caf\xc3\xa9", "a\tb");
  std::string out = "kept";
  CHECK(append_set_cookie(out, {.name = name, .value = "1"}) == Error::BadCookieName);
  CHECK(out == "kept");
}

TEST_CASE("append_set_cookie refuses a value outside cookie-octet", "[http]") {
  const auto value =
      GENERATE(as<std::string_view>{}, "a b", "a;b", "a\rb", "a\nb", "a,b", "a\"b", "\"ab\"",
               "a\\b", "caf\xc3\xa9", "a\x7f", std::string_view("a\0b", 3));
  std::string out = "kept";
  CHECK(append_set_cookie(out, {.name = "a", .value = value}) == Error::BadCookieValue);
  CHECK(out == "kept");
}

TEST_CASE("append_set_cookie takes every cookie-octet in a value", "[http]") {
  std::string octets;
  for (int c = 0x21; c <= 0x7e; ++c) {
    if (c != '"' && c != ',' && c != ';' && c != '\\') octets.push_back(static_cast<char>(c));
  }
  CHECK(set_cookie_value({.name = "a", .value = octets}) == "a=" + octets);
}

TEST_CASE("append_set_cookie refuses an attribute that could end or extend the header", "[http]") {
  const auto bad = GENERATE(as<std::string_view>{}, "/a;b", "/a\r\nX: y", "/a\n", "/\x7f",
                            "/caf\xc3\xa9", std::string_view("/\0", 2));
  std::string out = "kept";
  CHECK(append_set_cookie(out, {.name = "a", .value = "1", .path = bad}) ==
        Error::BadCookieAttribute);
  CHECK(append_set_cookie(out, {.name = "a", .value = "1", .domain = bad}) ==
        Error::BadCookieAttribute);
  CHECK(append_set_cookie(out, {.name = "a", .value = "1", .expires = bad}) ==
        Error::BadCookieAttribute);
  CHECK(out == "kept");
}

// RFC 6265bis §5.4.7 and browsers: SameSite=None without Secure is rejected.
TEST_CASE("append_set_cookie refuses SameSite=None without Secure", "[http]") {
  std::string out;
  CHECK(append_set_cookie(out, {.name = "a", .value = "1", .same_site = SameSite::None}) ==
        Error::BadCookieAttribute);
  CHECK(out.empty());
}

}  // namespace
}  // namespace fcgimux::http
