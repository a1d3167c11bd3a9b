// SPDX-License-Identifier: MIT
#pragma once

#include <iterator>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "fcgimux/log.hpp"

namespace fcgimux::util {

// The server's one logging helper: checks the level before formatting, then hands one line to
// the embedding program's sink. A sink that throws loses that line, never the caller's work:
// the I/O thread must not throw.
// Threading: Immutable after construction; safe to share (the sink itself must be
// thread-safe, as LogSink says).
class Logger {
 public:
  Logger(LogLevel min_level, LogSink sink) : min_level_(min_level), sink_(std::move(sink)) {}

  bool enabled(LogLevel level) const noexcept { return sink_ && level >= min_level_; }

  template <class... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const noexcept {
    if (!enabled(level)) return;
    try {
      fmt::memory_buffer line;
      fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
      sink_(level, std::string_view(line.data(), line.size()));
    } catch (...) {
      // A failing sink (or an allocation failure) drops this line only.
    }
  }

  // Hands `line` to the sink at `level` whatever the minimum level: for lines the embedding
  // program asked for by name (the access log).
  void emit(LogLevel level, std::string_view line) const noexcept {
    if (!sink_) return;
    try {
      sink_(level, line);
    } catch (...) {
      // As in log(): a failing sink drops this line only.
    }
  }

 private:
  LogLevel min_level_;
  LogSink sink_;
};

}  // namespace fcgimux::util
