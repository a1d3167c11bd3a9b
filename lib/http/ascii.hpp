// SPDX-License-Identifier: MIT
#pragma once

// ASCII character classes and comparisons shared by the http helpers. HTTP names and
// parameters are ASCII and case-insensitive; these never consult the C locale.

#include <cstddef>
#include <string_view>

namespace fcgimux::http::ascii {

constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr char to_upper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// RFC 5234 CTL: %x00-1F and DEL.
constexpr bool is_ctl(char c) noexcept {
  return static_cast<unsigned char>(c) < 0x20 || c == '\x7f';
}

// RFC 9110 §5.6.2 tchar.
constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 §5.6.2 token: one or more tchar.
constexpr bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// RFC 9110 §5.6.3 OWS: spaces and horizontal tabs.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view text) noexcept {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace fcgimux::http::ascii
