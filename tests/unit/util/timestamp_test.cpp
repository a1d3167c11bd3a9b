// SPDX-License-Identifier: MIT
// RFC 3339 timestamps for log lines: lib/util/timestamp.hpp.

#include "util/timestamp.hpp"

#include <stdlib.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>

namespace fcgimux::util {
namespace {

using namespace std::chrono_literals;

TEST_CASE("a timestamp is RFC 3339 in UTC with milliseconds", "[util]") {
  CHECK(utc_timestamp(std::chrono::system_clock::time_point(1'764'230'400s + 123ms)) ==
        "2025-11-27T08:00:00.123Z");
}

TEST_CASE("a timestamp is UTC whatever the local time zone", "[util]") {
  const char* saved = std::getenv("TZ");
  const std::string previous = saved != nullptr ? saved : "";
  ::setenv("TZ", "XST-5", 1);  // five hours east of UTC, a POSIX rule that needs no tzdata
  ::tzset();
  const std::string stamp = utc_timestamp(std::chrono::system_clock::time_point(1'764'230'400s));
  if (saved != nullptr) {
    ::setenv("TZ", previous.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  CHECK(stamp == "2025-11-27T08:00:00.000Z");
}

}  // namespace
}  // namespace fcgimux::util
