// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <string>

#include "fcgi_client.hpp"

namespace fcgimux::test {

// What examples/echo_handler.hpp answers to a request without a body: one "NAME=VALUE\n" line
// per param, sorted by name bytewise (params of the same name in the order they were sent).
// Written independently of the handler, so that the tests check it.
inline std::string expected_listing(Params params) {
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string listing;
  for (const auto& [name, value] : params) listing += name + "=" + value + "\n";
  return listing;
}

}  // namespace fcgimux::test
