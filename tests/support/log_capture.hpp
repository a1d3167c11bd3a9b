// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/log.hpp"

namespace fcgimux::test {

// Keeps the lines a Server logs, so that a test can check that a line says why something was
// refused, and so that warnings the test provokes on purpose stay out of its output.
// Threading: Thread-safe.
class LogCapture {
 public:
  // A sink for Config::log that keeps every line. The capture must outlive the server.
  LogSink sink() {
    return [this](LogLevel level, std::string_view line) {
      const std::lock_guard lock(mutex_);
      lines_.emplace_back(level, line);
    };
  }

  // Whether a line logged at `level` contains `text`.
  bool contains(LogLevel level, std::string_view text) const {
    const std::lock_guard lock(mutex_);
    return std::any_of(lines_.begin(), lines_.end(), [&](const auto& entry) {
      return entry.first == level && entry.second.find(text) != std::string::npos;
    });
  }

  // Every line logged at `level` that contains `text`.
  std::vector<std::string> lines(LogLevel level, std::string_view text) const {
    const std::lock_guard lock(mutex_);
    std::vector<std::string> found;
    for (const auto& [line_level, line] : lines_) {
      if (line_level == level && line.find(text) != std::string::npos) found.push_back(line);
    }
    return found;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<LogLevel, std::string>> lines_;  // Guarded by mutex_.
};

}  // namespace fcgimux::test
