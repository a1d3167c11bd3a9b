// SPDX-License-Identifier: MIT
// libFuzzer target for the http text parsers that take a whole string: percent_decode(),
// parse_form() (query strings and form bodies), parse_cookies() and append_set_cookie(). The
// input is the text. Invariants, checked on every input (a failure aborts):
//  1. percent_decode() succeeds exactly when every '%' starts "%XX", never lengthens its input,
//     leaves its output alone on error, and undoes percent_encode().
//  2. parse_form() stays within its limits, leaves its output alone on error, and on success
//     parses the fields' re-encoding to the same fields.
//  3. parse_cookies() returns views into the header with token names and CTL-free values,
//     at most max_cookies of them, and nothing on error.
//  4. append_set_cookie() with the text before and after the first '\x01' as name and value
//     either refuses them or writes a value with no CTL that parse_cookies() reads back.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace {

namespace http = fcgimux::http;

constexpr http::FormLimits kFormLimits{.max_fields = 32, .max_bytes = 1024};
constexpr std::size_t kMaxCookies = 16;

void check(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "query_fuzz: invariant failed: %s\n", invariant);
    std::abort();
  }
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_ctl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; }

bool is_token(std::string_view text) {
  return !text.empty() && std::ranges::all_of(text, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// The independent statement of RFC 3986 §2.1's grammar: every '%' is followed by two hex
// digits.
bool well_encoded(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') continue;
    if (text.size() - i < 3) return false;
    if (!is_hex(text[i + 1]) || !is_hex(text[i + 2])) return false;
    i += 2;
  }
  return true;
}

void check_percent(std::string_view input) {
  std::string out = "x";
  const auto error = http::percent_decode(input, out);
  check((error == http::Error::None) == well_encoded(input), "decodes exactly the well-encoded");
  if (error != http::Error::None) {
    check(error == http::Error::BadPercentEncoding && out == "x", "a bad decode changes nothing");
    return;
  }
  check(out.size() <= input.size() + 1, "decoding never lengthens");
  std::string encoded;
  http::percent_encode(std::string_view(out).substr(1), encoded);
  check(encoded.find('+') == std::string::npos, "encoding writes no '+'");
  std::string decoded;
  check(http::percent_decode(encoded, decoded) == http::Error::None &&
            decoded == std::string_view(out).substr(1),
        "decode(encode(x)) == x");
}

void check_form(std::string_view input) {
  const std::vector<http::FormField> before{{"sentinel", "1"}};
  auto fields = before;
  const auto error = http::parse_form(input, fields, kFormLimits);
  if (error != http::Error::None) {
    check(error == http::Error::BadPercentEncoding || error == http::Error::TooManyFields ||
              error == http::Error::FormTooLarge,
          "form error");
    check(fields == before, "a refused form changes nothing");
    return;
  }
  check(fields.size() - 1 <= kFormLimits.max_fields, "at most max_fields fields");
  std::size_t bytes = 0;
  std::string encoded;
  for (std::size_t i = 1; i < fields.size(); ++i) {
    bytes += fields[i].name.size() + fields[i].value.size();
    if (i > 1) encoded.push_back('&');
    http::percent_encode(fields[i].name, encoded);
    encoded.push_back('=');
    http::percent_encode(fields[i].value, encoded);
  }
  check(bytes <= kFormLimits.max_bytes, "at most max_bytes bytes");
  std::vector<http::FormField> again;
  check(http::parse_form(encoded, again, kFormLimits) == http::Error::None &&
            std::ranges::equal(again, std::span(fields).subspan(1)),
        "parse(encode(fields)) == fields");
}

void check_cookies(std::string_view input) {
  std::vector<http::Cookie> cookies;
  const auto error = http::parse_cookies(input, cookies, kMaxCookies);
  if (error != http::Error::None) {
    check(error == http::Error::TooManyCookies && cookies.empty(), "refused cookies leave nothing");
    return;
  }
  check(cookies.size() <= kMaxCookies, "at most max_cookies cookies");
  for (const auto& cookie : cookies) {
    for (const auto view : {cookie.name, cookie.value}) {
      check(view.empty() || (view.data() >= input.data() &&
                             view.data() + view.size() <= input.data() + input.size()),
            "cookies view the header");
    }
    check(is_token(cookie.name), "cookie names are tokens");
    check(std::ranges::none_of(cookie.value, is_ctl), "cookie values hold no CTL");
  }
}

void check_set_cookie(std::string_view input) {
  const std::size_t split = input.find('\x01');
  if (split == std::string_view::npos) return;
  const http::SetCookie cookie{.name = input.substr(0, split), .value = input.substr(split + 1)};
  std::string out;
  if (http::append_set_cookie(out, cookie) != http::Error::None) {
    check(out.empty(), "a refused cookie writes nothing");
    return;
  }
  check(std::ranges::none_of(out, is_ctl) && out.find(';') == std::string::npos,
        "a Set-Cookie value holds no CTL and, without attributes, no ';'");
  std::vector<http::Cookie> back;
  check(http::parse_cookies(out, back) == http::Error::None && back.size() == 1 &&
            back[0].name == cookie.name && back[0].value == cookie.value,
        "a written cookie reads back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_percent(input);
  check_form(input);
  check_cookies(input);
  check_set_cookie(input);
  return 0;
}
