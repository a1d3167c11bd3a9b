// SPDX-License-Identifier: MIT
#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "fcgimux/log.hpp"

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
    const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
    // One fwrite per line: stdio locks the stream per call, so concurrent lines never
    // interleave.
    const std::string text = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z {} {}\n", now, to_string(level), line);
    std::fwrite(text.data(), 1, text.size(), stderr);
  };
}

}  // namespace fcgimux
