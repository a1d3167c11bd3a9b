// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <thread>

#include "socket.hpp"

namespace fcgimux::test {

// Polls `condition` every millisecond until it holds or `timeout` passes, and returns whether
// it held. For conditions that nobody signals, such as the counters of Server::stats().
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = kTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace fcgimux::test
