// SPDX-License-Identifier: MIT
// Cookies: the Cookie request header in, Set-Cookie values out (RFC 6265).

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {
namespace {

// RFC 6265 §4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E, which leaves
// out CTLs, space, '"', ',', ';', '\\' and every non-ASCII byte.
bool is_cookie_octet(char c) noexcept {
  return c > ' ' && c < '\x7f' && c != '"' && c != ',' && c != ';' && c != '\\';
}

// RFC 6265 §4.1.1: path-value = <any CHAR except CTLs or ";">; the same rule keeps the other
// free-text attributes (Domain, Expires) from ending the header or adding an attribute.
bool is_attribute_value(std::string_view text) noexcept {
  return std::ranges::all_of(text, [](char c) {
    return static_cast<unsigned char>(c) < 0x80 && !ascii::is_ctl(c) && c != ';';
  });
}

std::string_view to_string(SameSite same_site) noexcept {
  switch (same_site) {
    case SameSite::Strict:
      return "Strict";
    case SameSite::Lax:
      return "Lax";
    case SameSite::None:
      return "None";
    case SameSite::Unset:
      break;
  }
  return "";
}

}  // namespace

Error parse_cookies(std::string_view header, std::vector<Cookie>& cookies,
                    std::size_t max_cookies) {
  const std::size_t before = cookies.size();
  while (!header.empty()) {
    const std::size_t semicolon = header.find(';');
    const std::string_view pair = header.substr(0, semicolon);
    header =
        semicolon == std::string_view::npos ? std::string_view() : header.substr(semicolon + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = ascii::trim_ows(pair.substr(0, eq));
    std::string_view value = ascii::trim_ows(pair.substr(eq + 1));
    // RFC 6265 §4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!ascii::is_token(name) || std::ranges::any_of(value, ascii::is_ctl)) continue;
    if (cookies.size() - before == max_cookies) {
      cookies.resize(before);
      return Error::TooManyCookies;
    }
    cookies.push_back({name, value});
  }
  return Error::None;
}

Error append_set_cookie(std::string& out, const SetCookie& cookie) {
  if (!ascii::is_token(cookie.name)) return Error::BadCookieName;
  if (!std::ranges::all_of(cookie.value, is_cookie_octet)) return Error::BadCookieValue;
  if (!is_attribute_value(cookie.path) || !is_attribute_value(cookie.domain) ||
      !is_attribute_value(cookie.expires) ||
      (cookie.same_site == SameSite::None && !cookie.secure)) {
    return Error::BadCookieAttribute;
  }
  out.append(cookie.name).append("=").append(cookie.value);
  if (!cookie.path.empty()) out.append("; Path=").append(cookie.path);
  if (!cookie.domain.empty()) out.append("; Domain=").append(cookie.domain);
  if (cookie.max_age) out.append("; Max-Age=").append(std::to_string(*cookie.max_age));
  if (!cookie.expires.empty()) out.append("; Expires=").append(cookie.expires);
  if (cookie.secure) out.append("; Secure");
  if (cookie.http_only) out.append("; HttpOnly");
  if (cookie.same_site != SameSite::Unset)
    out.append("; SameSite=").append(to_string(cookie.same_site));
  return Error::None;
}

}  // namespace fcgimux::http
