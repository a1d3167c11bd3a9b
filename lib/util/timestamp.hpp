// SPDX-License-Identifier: MIT
#pragma once

// RFC 3339 timestamps in UTC with milliseconds, "2026-11-27T06:35:39.123Z", for log lines.
// fmt 9 formats a system_clock time_point in local time and whole seconds, so the date and
// time come from fmt::gmtime of the whole seconds and the milliseconds are added by hand.
//
// Threading: any thread (fmt::gmtime uses gmtime_r).

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <string>

namespace fcgimux::util {

inline std::string utc_timestamp(std::chrono::system_clock::time_point when) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto seconds = std::chrono::floor<std::chrono::seconds>(when);
  const auto millis = duration_cast<milliseconds>(when - seconds).count();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(seconds)), millis);
}

}  // namespace fcgimux::util
