// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fcgimux::test {

// `size` pseudo-random bytes (every byte value occurs), the same for the same `seed`, so a
// shifted, dropped or duplicated piece of a body shows as a mismatch.
inline std::string pattern(std::size_t size, std::uint32_t seed = 1) {
  std::string bytes(size, '\0');
  std::uint32_t state = seed * 2654435761U + 1;
  for (char& byte : bytes) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    byte = static_cast<char>(state >> 24);
  }
  return bytes;
}

// The offset of the first byte where `actual` differs from `expected` (a length difference
// counts), or npos when they are equal. Tests check this rather than comparing megabytes, so
// that a failure reports an offset instead of printing both bodies.
inline std::size_t first_mismatch(std::string_view actual, std::string_view expected) {
  const auto [a, e] = std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end());
  if (a == actual.end() && e == expected.end()) return std::string_view::npos;
  return static_cast<std::size_t>(a - actual.begin());
}

}  // namespace fcgimux::test
