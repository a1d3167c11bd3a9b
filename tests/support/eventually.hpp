// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <thread>

#include "socket.hpp"

namespace fcgimux::test {

// Polls `condition` every `interval` until it holds or `timeout` passes, and returns whether
// it held. For conditions that nobody signals, such as the counters of Server::stats(). A
// condition that costs a request to check is polled less often, so that the polling does not
// starve what it waits for.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = kTimeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(1)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace fcgimux::test
