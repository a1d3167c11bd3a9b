// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <string_view>

namespace fcgimux {

/// How much a log line matters. The server logs Error for failures that lose work (a handler
/// threw, a listener failed), Warning for a peer's bad input or a limit that refused work,
/// Info for lifecycle (listening, draining), Debug for per-connection detail.
enum class LogLevel : unsigned char { Debug, Info, Warning, Error };

/// "debug", "info", "warning", "error".
std::string_view to_string(LogLevel level) noexcept;

/// Receives one complete line (no trailing newline) at or above Config::log_level.
/// Threading: called from the I/O thread and from worker threads, possibly at once; a sink
/// must be thread-safe. It must not call back into the Server.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

/// A sink that writes `"2026-11-27T06:35:39.123Z warning <line>\n"` to stderr, one write per
/// line, so concurrent lines never interleave. Thread-safe.
LogSink stderr_log_sink();

}  // namespace fcgimux
