// SPDX-License-Identifier: MIT
// Error descriptions: lib/http/error.cpp.

#include <catch2/catch.hpp>
#include <set>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

TEST_CASE("every http error has its own description", "[http]") {
  std::set<std::string_view> descriptions;
  const auto last = static_cast<int>(Error::MultipartTruncated);
  for (int e = 0; e <= last; ++e) {
    const std::string_view text = to_string(static_cast<Error>(e));
    CHECK_FALSE(text.empty());
    CHECK(text != "unknown error");
    descriptions.insert(text);
  }
  CHECK(descriptions.size() == static_cast<std::size_t>(last) + 1);
  CHECK(to_string(static_cast<Error>(last + 1)) == "unknown error");
}

}  // namespace
}  // namespace fcgimux::http
