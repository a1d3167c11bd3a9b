// SPDX-License-Identifier: MIT
#pragma once

// Helpers for writing wire bytes literally in tests (h2o's style):
//   CHECK(out == hex("01 06 00 01 00 05 03 00") + "hello" + hex("00 00 00"));
// and for viewing a std::string as the byte span the codec takes, and back.

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fcgimux::test {

// The bytes that pairs of hex digits spell; spaces and newlines between pairs are ignored.
// Throws std::invalid_argument on anything else: that is a typo in a test, not input under test.
inline std::string hex(std::string_view digits) {
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("hex(): not a hex digit");
  };
  std::string out;
  for (std::size_t i = 0; i < digits.size();) {
    if (digits[i] == ' ' || digits[i] == '\n') {
      ++i;
      continue;
    }
    if (i + 1 >= digits.size()) throw std::invalid_argument("hex(): odd number of digits");
    out.push_back(static_cast<char>(nibble(digits[i]) * 16 + nibble(digits[i + 1])));
    i += 2;
  }
  return out;
}

// Views `text` as bytes; valid while `text`'s characters live.
inline std::span<const std::byte> bytes_of(std::string_view text) noexcept {
  return std::as_bytes(std::span(text));
}

// Views `bytes` as characters; valid while `bytes` lives.
inline std::string_view text_of(std::span<const std::byte> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace fcgimux::test
