// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>

#include "socket.hpp"

namespace fcgimux::test {

// Where handlers wait until the test lets them through. It counts the callers that arrived, so
// a test can hold requests in their handlers and know that they are there, without sleeping.
// Threading: Thread-safe.
class Gate {
 public:
  // Counts the caller in, then waits until the gate opens or `stop` fires, at most `timeout`.
  // Returns whether the gate opened (false: stopped or timed out).
  bool pass(std::stop_token stop, std::chrono::milliseconds timeout = kTimeout) {
    std::unique_lock lock(mutex_);
    ++arrived_;
    changed_.notify_all();
    return changed_.wait_for(lock, stop, timeout, [this] { return open_; });
  }

  // Lets every caller through, those waiting and those still to come.
  void open() {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }

  // Waits until `count` callers have arrived; false if they do not within kTimeout.
  bool wait_arrivals(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kTimeout, [&] { return arrived_ >= count; });
  }

  // The callers that have arrived so far.
  std::size_t arrivals() const {
    const std::lock_guard lock(mutex_);
    return arrived_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;
  std::size_t arrived_ = 0;  // Guarded by mutex_.
  bool open_ = false;        // Guarded by mutex_.
};

}  // namespace fcgimux::test
