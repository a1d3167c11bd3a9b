// SPDX-License-Identifier: MIT
// Streaming multipart/form-data: lib/http/multipart.cpp.

#include <catch2/catch.hpp>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

// What a parser reported: its callbacks as text, "[name|filename|type]" for a part's begin
// ("-" for no filename), the data as it is, "[end]" for its end; then its results.
struct Parsed {
  std::string events;
  Error error = Error::None;  // the first error feed() returned, or finish()'s result
  bool done = false;

  bool operator==(const Parsed&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Parsed& parsed) {
  return os << "{events \"" << parsed.events << "\", error \"" << to_string(parsed.error)
            << "\", done " << parsed.done << "}";
}

MultipartCallbacks recorder(std::string& events) {
  return {
      .on_part_begin =
          [&events](const Part& part) {
            events.append("[").append(part.name).append("|");
            events.append(part.filename ? *part.filename : "-").append("|");
            events.append(part.content_type).append("]");
          },
      .on_part_data =
          [&events](std::span<const std::byte> data) {
            REQUIRE(!data.empty());
            events.append(reinterpret_cast<const char*>(data.data()), data.size());
          },
      .on_part_end = [&events] { events.append("[end]"); },
  };
}

// Parses `body` fed in the pieces that start at `cuts` (offsets, ascending).
Parsed parse_pieces(std::string_view boundary, std::string_view body,
                    const std::vector<std::size_t>& cuts, const MultipartLimits& limits) {
  Parsed parsed;
  MultipartParser parser(boundary, recorder(parsed.events), limits);
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size() && parsed.error == Error::None; ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : body.size();
    parsed.error = parser.feed(body.substr(from, to - from));
    from = to;
  }
  if (parsed.error == Error::None) parsed.error = parser.finish();
  parsed.done = parser.done();
  return parsed;
}

// Parses `body` whole, byte by byte, and cut in two at every offset, checks that every way
// gives the same result, and returns it.
Parsed parse(std::string_view boundary, std::string_view body, const MultipartLimits& limits = {}) {
  const Parsed whole = parse_pieces(boundary, body, {}, limits);
  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
  CHECK(parse_pieces(boundary, body, every_byte, limits) == whole);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(parse_pieces(boundary, body, {cut}, limits) == whole);
  }
  return whole;
}

Parsed ok(std::string events) { return {std::move(events), Error::None, true}; }
Parsed failed(std::string events, Error error) { return {std::move(events), error, false}; }

// RFC 7578 §4.1's example body, with CRLF line ends: a text field and a file.
constexpr std::string_view kTwoParts =
    "--AaB03x\r\n"
    "Content-Disposition: form-data; name=\"field1\"\r\n"
    "Content-Type: text/plain;charset=UTF-8\r\n"
    "\r\n"
    "Joe owes =E2=82=AC100.\r\n"
    "--AaB03x\r\n"
    "content-disposition: form-data; name=\"pics\"; filename=\"file1.txt\"\r\n"
    "\r\n"
    "...contents of file1.txt...\r\n"
    "--AaB03x--\r\n";

TEST_CASE("a multipart body gives each part's headers, data and end", "[http]") {
  CHECK(parse("AaB03x", kTwoParts) ==
        ok("[field1|-|text/plain;charset=UTF-8]Joe owes =E2=82=AC100.[end]"
           "[pics|file1.txt|]...contents of file1.txt...[end]"));
}

// The body whole, one byte at a time and cut at every offset: every cut through the
// boundaries lands at each of their positions.
TEST_CASE("a boundary split across feeds at any position is still found", "[http]") {
  const std::string body =
      "--b0\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b0\r\n"
      "Content-Disposition: form-data; name=b\r\n\r\n\r\n--b0--";
  CHECK(parse("b0", body) == ok("[a|-|]x[end][b|-|][end]"));
}

TEST_CASE("data that begins like the delimiter but is not is passed on as data", "[http]") {
  const std::string head = "--bound\r\nContent-Disposition: form-data; name=f\r\n\r\n";
  const auto data =
      GENERATE(as<std::string>{}, "\r", "\r\n", "\r\n-", "\r\n--", "\r\n--b", "\r\n--boun",
               "\r\r\n--boun\r\n--", "x\r\n--bounX", "\r\n\r\n", "--bound", "a\rb\nc");
  CHECK(parse("bound", head + data + "\r\n--bound--") == ok("[f|-|]" + data + "[end]"));
}

TEST_CASE("a part's data reaches on_part_data from the caller's buffer without a copy", "[http]") {
  const std::string head = "--b\r\nContent-Disposition: form-data; name=f\r\n\r\n";
  const std::string data(100'000, 'x');
  std::vector<std::span<const std::byte>> pieces;
  MultipartParser parser("b", {.on_part_data = [&](auto piece) { pieces.push_back(piece); }});
  REQUIRE(parser.feed(head) == Error::None);
  REQUIRE(parser.feed(data) == Error::None);
  REQUIRE(pieces.size() == 1);
  CHECK(reinterpret_cast<const char*>(pieces[0].data()) == data.data());
  CHECK(pieces[0].size() == data.size());
}

TEST_CASE("the parser holds back no more data than a prefix of the delimiter", "[http]") {
  const std::string head = "--bnd\r\nContent-Disposition: form-data; name=f\r\n\r\n";
  std::string seen;
  MultipartParser parser("bnd", {.on_part_data = [&](std::span<const std::byte> piece) {
                           seen.append(reinterpret_cast<const char*>(piece.data()), piece.size());
                         }});
  REQUIRE(parser.feed(head) == Error::None);
  REQUIRE(parser.feed("abc\r\n--bn") == Error::None);
  CHECK(seen == "abc");  // "\r\n--bn" may still be the delimiter
  REQUIRE(parser.feed("x") == Error::None);
  CHECK(seen == "abc\r\n--bnx");
  REQUIRE(parser.feed("\r\n--bnd--") == Error::None);
  CHECK(seen == "abc\r\n--bnx");
  CHECK(parser.done());
}

TEST_CASE("a part may be empty and a body may have no part", "[http]") {
  CHECK(parse("b", "--b\r\nContent-Disposition: form-data; name=e\r\n\r\n\r\n--b--") ==
        ok("[e|-|][end]"));
  CHECK(parse("b", "--b--") == ok(""));
}

// RFC 2046 §5.1.1: transport-padding after a boundary; the epilogue is ignored.
TEST_CASE("spaces and tabs may follow a boundary, and anything may follow the final one",
          "[http]") {
  CHECK(parse("b",
              "--b \t \r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\t\r\n"
              "Content-Disposition: form-data; name=c\r\n\r\n2\r\n--b--  \r\nepilogue "
              "\r\n--b\r\n bytes") == ok("[a|-|]1[end][c|-|]2[end]"));
}

TEST_CASE("a part's headers are read in any case and other headers are ignored", "[http]") {
  CHECK(parse("b",
              "--b\r\nX-Other: 1\r\nCONTENT-TYPE:image/png \r\nContent-Transfer-Encoding: binary"
              "\r\nCONTENT-DISPOSITION: FORM-DATA ; NAME = \"up\" ;FileName=\"a b.png\"; "
              "filename*=UTF-8''x; size=3\r\n\r\nPNG\r\n--b--") ==
        ok("[up|a b.png|image/png]PNG[end]"));
}

// HTML's form-data encoding: browsers escape '"' as %22 and send backslashes as they are.
TEST_CASE("a quoted parameter ends at the next quote and keeps its backslashes", "[http]") {
  CHECK(parse("b",
              "--b\r\nContent-Disposition: form-data; name=\"a%22b\"; "
              "filename=\"C:\\dir\\x.txt\"\r\n\r\n\r\n--b--") ==
        ok("[a%22b|C:\\dir\\x.txt|][end]"));
  CHECK(parse("b",
              "--b\r\nContent-Disposition: form-data; name=\"\"; filename=\"\"\r\n\r\n\r\n--b--") ==
        ok("[||][end]"));
  CHECK(
      parse("b", "--b\r\nContent-Disposition: form-data; name=\"caf\xc3\xa9\"\r\n\r\n\r\n--b--") ==
      ok("[caf\xc3\xa9|-|][end]"));
}

TEST_CASE("a body that does not start with its boundary is refused", "[http]") {
  const auto body =
      GENERATE(as<std::string>{}, "preamble\r\n--b\r\n", "\r\n--b\r\n", "-b", "--c", "x");
  CHECK(parse("b", body) == failed("", Error::MultipartPreamble));
}

TEST_CASE("a boundary line not ended by CRLF or \"--\" is refused", "[http]") {
  const std::string part = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx";
  CHECK(parse("b", "--bx\r\n") == failed("", Error::BadBoundaryLine));
  CHECK(parse("b", "--b\n") == failed("", Error::BadBoundaryLine));
  CHECK(parse("b", "--b\rx") == failed("", Error::BadBoundaryLine));
  CHECK(parse("b", "--b -") == failed("", Error::BadBoundaryLine));
  CHECK(parse("b", "--b-x") == failed("", Error::BadBoundaryLine));
  CHECK(parse("b", part + "\r\n--bb") == failed("[a|-|]x[end]", Error::BadBoundaryLine));
  CHECK(parse("b", part + "\r\n--b -") == failed("[a|-|]x[end]", Error::BadBoundaryLine));
}

TEST_CASE("a body that ends before its final boundary is truncated", "[http]") {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxy\r\n--b\r\n"
      "Content-Disposition: form-data; name=c\r\n\r\nz\r\n--b--";
  // Each prefix, and what it has reported by then.
  CHECK(parse("b", "") == failed("", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 3)) == failed("", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 20)) == failed("", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 47)) == failed("[a|-|]", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 48)) == failed("[a|-|]x", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 51)) == failed("[a|-|]xy", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 54)) == failed("[a|-|]xy[end]", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, 56)) == failed("[a|-|]xy[end]", Error::MultipartTruncated));
  CHECK(parse("b", body.substr(0, body.size() - 1)) ==
        failed("[a|-|]xy[end][c|-|]z[end]", Error::MultipartTruncated));
  CHECK(parse("b", body) == ok("[a|-|]xy[end][c|-|]z[end]"));
}

TEST_CASE("a part without a valid form-data Content-Disposition is refused", "[http]") {
  const auto headers = GENERATE(as<std::string>{},
                                "",                                             // none
                                "Content-Type: text/plain\r\n",                 // none
                                "Content-Disposition: attachment; name=a\r\n",  // not form-data
                                "Content-Disposition: form-data\r\n",           // no name
                                "Content-Disposition: form-data; filename=a\r\n",
                                "Content-Disposition: form-data; name=a; name=b\r\n",
                                "Content-Disposition: form-data; name=a; filename=x; "
                                "filename=y\r\n",
                                "Content-Disposition: form-data; name=\"a\r\n",  // open quote
                                "Content-Disposition: form-data; name=\r\n",     // no value
                                "Content-Disposition: form-data; name a\r\n",    // no '='
                                "Content-Disposition: form-data; =a\r\n",        // no name
                                "Content-Disposition: form-data; name=a b\r\n",  // two tokens
                                "Content-Disposition: form-data name=a\r\n",     // no ';'
                                "Content-Disposition: form-data; name=\"a\"x\r\n");
  CHECK(parse("b", "--b\r\n" + headers + "\r\ndata\r\n--b--") == failed("", Error::BadPartHeader));
}

TEST_CASE("malformed or ambiguous part header lines are refused", "[http]") {
  const auto line = GENERATE(as<std::string>{}, "No colon\r\n", "Bad name: x\r\n",
                             "Name : x\r\n",  // space before ':'
                             ": no name\r\n",
                             "X-Folded: a\r\n continued\r\n",     // obs-fold
                             "X-Bare: a\nb\r\n",                  // bare LF
                             "X-Bare: a\rb\r\n",                  // bare CR
                             std::string("X-Nul: a\0b\r\n", 13),  // a CTL
                             "Content-Type: a\r\nContent-Type: b\r\n",
                             "Content-Disposition: form-data; name=z\r\n");  // a second one
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=a\r\n" + line + "\r\n\r\n--b--";
  CHECK(parse("b", body) == failed("", Error::BadPartHeader));
}

TEST_CASE("a header line may hold a tab", "[http]") {
  CHECK(parse("b", "--b\r\nContent-Disposition:\tform-data;\tname=a\r\n\r\n\r\n--b--") ==
        ok("[a|-|][end]"));
}

TEST_CASE("a part header block of exactly max_header_bytes is read and one more is refused",
          "[http]") {
  const std::string block = "Content-Disposition: form-data; name=a\r\n\r\n";  // 42 bytes
  REQUIRE(block.size() == 42);
  const std::string body = "--b\r\n" + block + "x\r\n--b--";
  CHECK(parse("b", body, {.max_parts = 1, .max_header_bytes = 42}) == ok("[a|-|]x[end]"));
  CHECK(parse("b", body, {.max_parts = 1, .max_header_bytes = 41}) ==
        failed("", Error::PartHeaderTooLarge));
}

TEST_CASE("a header block that never ends stops at max_header_bytes", "[http]") {
  MultipartParser parser("b", {}, {.max_parts = 1, .max_header_bytes = 10});
  CHECK(parser.feed("--b\r\n0123456789") == Error::None);
  CHECK(parser.feed("0") == Error::PartHeaderTooLarge);
}

TEST_CASE("a body of exactly max_parts parts is read and one more part is refused", "[http]") {
  std::string body;
  std::string events;
  for (const char* name : {"a", "b", "c"}) {
    body.append("--sep\r\nContent-Disposition: form-data; name=").append(name).append("\r\n\r\n");
    body.append(name).append("\r\n");
    events.append("[").append(name).append("|-|]").append(name).append("[end]");
  }
  CHECK(parse("sep", body + "--sep--", {.max_parts = 3, .max_header_bytes = 100}) == ok(events));
  CHECK(parse("sep", body + "--sep\r\n", {.max_parts = 2, .max_header_bytes = 100}) ==
        failed("[a|-|]a[end][b|-|]b[end]", Error::TooManyParts));
  CHECK(parse("sep", "--sep\r\n", {.max_parts = 0, .max_header_bytes = 100}) ==
        failed("", Error::TooManyParts));
}

TEST_CASE("a failed parser stays failed and calls nothing more", "[http]") {
  std::string events;
  MultipartParser parser("b", recorder(events));
  REQUIRE(parser.feed("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx") == Error::None);
  CHECK(parser.feed("\r\n--bX") == Error::BadBoundaryLine);
  CHECK(parser.feed("\r\n--b\r\nContent-Disposition: form-data; name=c\r\n\r\n") ==
        Error::BadBoundaryLine);
  CHECK(parser.finish() == Error::BadBoundaryLine);
  CHECK_FALSE(parser.done());
  CHECK(events == "[a|-|]x[end]");
}

TEST_CASE("bytes after the final boundary are ignored and finish() succeeds", "[http]") {
  MultipartParser parser("b", {});
  CHECK(parser.feed("--b--") == Error::None);
  CHECK(parser.done());
  CHECK(parser.feed("\r\n--b\r\ngarbage") == Error::None);
  CHECK(parser.finish() == Error::None);
  CHECK(parser.finish() == Error::None);
}

TEST_CASE("a truncated parser stays failed after finish()", "[http]") {
  MultipartParser parser("b", {});
  CHECK(parser.finish() == Error::MultipartTruncated);
  CHECK(parser.feed("--b--") == Error::MultipartTruncated);
}

// RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace.
TEST_CASE("a parser for a boundary RFC 2046 does not allow starts failed", "[http]") {
  const auto boundary = GENERATE(as<std::string>{}, "", "a ", "a\"b", "a;b", "a\r", "a\\b",
                                 std::string(71, 'x'), "caf\xc3\xa9");
  std::string events;
  MultipartParser parser(boundary, recorder(events));
  CHECK(parser.feed("--" + boundary + "\r\n") == Error::BadBoundary);
  CHECK(parser.finish() == Error::BadBoundary);
  CHECK(events.empty());
}

TEST_CASE("the longest boundary and one with every boundary character work", "[http]") {
  const auto boundary = GENERATE(std::string(70, 'x'), std::string("'()+_,-./:=? 09AZaz"));
  CHECK(parse(boundary, "--" + boundary +
                            "\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--" + boundary +
                            "--") == ok("[a|-|]v[end]"));
}

TEST_CASE("callbacks may be left empty", "[http]") {
  MultipartParser full("AaB03x", {});
  CHECK(full.feed(kTwoParts) == Error::None);
  CHECK(full.finish() == Error::None);
}

TEST_CASE("feed() takes bytes as well as characters", "[http]") {
  std::string events;
  MultipartParser parser("AaB03x", recorder(events));
  CHECK(parser.feed(std::as_bytes(std::span(kTwoParts))) == Error::None);
  CHECK(parser.finish() == Error::None);
  CHECK(events.ends_with("...contents of file1.txt...[end]"));
}

// RFC 7578 §4.1 and RFC 2045 §5.1: the boundary parameter of the Content-Type.
TEST_CASE("form_data_boundary reads the boundary of a multipart/form-data type", "[http]") {
  CHECK(form_data_boundary("multipart/form-data; boundary=AaB03x") == "AaB03x");
  CHECK(form_data_boundary("Multipart/Form-Data;BOUNDARY=AaB03x") == "AaB03x");
  CHECK(form_data_boundary("multipart/form-data; charset=utf-8; boundary=\"a b:c\"") == "a b:c");
  CHECK(form_data_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk; "
                           "x=y") == "----WebKitFormBoundary7MA4YWxk");
  CHECK(form_data_boundary(" multipart/form-data ; boundary = x ;") == "x");
  CHECK(form_data_boundary("multipart/form-data; boundary=" + std::string(70, 'z')) ==
        std::string(70, 'z'));
}

TEST_CASE("form_data_boundary refuses other types and missing, repeated or bad boundaries",
          "[http]") {
  const auto content_type =
      GENERATE(as<std::string>{}, "", "multipart/form-data", "multipart/form-data;",
               "multipart/mixed; boundary=x", "text/plain; boundary=x",
               "multipart/form-datax; boundary=x", "multipart/form-data; boundary=x; boundary=x",
               "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
               "multipart/form-data; boundary=\"x ", "multipart/form-data; boundary=\"x \"",
               "multipart/form-data; boundary=\"a;b\"",
               "multipart/form-data; boundary=" + std::string(71, 'z'),
               "multipart/form-data boundary=x", "multipart/form-data; boundary=x y");
  CHECK_FALSE(form_data_boundary(content_type));
}

}  // namespace
}  // namespace fcgimux::http
