// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string_view>

namespace fcgimux::io {

// sd_notify(3) without libsystemd: sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1") as
// one datagram to the socket named by NOTIFY_SOCKET (a path, or "@name" in the abstract
// namespace). Returns false when NOTIFY_SOCKET is unset or the send failed; never blocks.
// Threading: Thread-safe.
bool notify_systemd(std::string_view state) noexcept;

// The unit's watchdog interval in microseconds (WATCHDOG_USEC, when WATCHDOG_PID is unset or
// this process), or 0 when there is no watchdog. Threading: Thread-safe.
std::uint64_t systemd_watchdog_usec() noexcept;

}  // namespace fcgimux::io
