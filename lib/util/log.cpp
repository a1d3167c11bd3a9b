// SPDX-License-Identifier: MIT
#include "fcgimux/log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "util/timestamp.hpp"

namespace fcgimux {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warning:
      return "warning";
    case LogLevel::Error:
      return "error";
  }
  return "unknown";
}

LogSink stderr_log_sink() {
  return [](LogLevel level, std::string_view line) {
    // One fwrite per line: stdio locks the stream per call, so concurrent lines never
    // interleave.
    const std::string text =
        fmt::format("{} {} {}\n", util::utc_timestamp(std::chrono::system_clock::now()),
                    to_string(level), line);
    std::fwrite(text.data(), 1, text.size(), stderr);
  };
}

}  // namespace fcgimux
