// SPDX-License-Identifier: MIT
#pragma once

// A connection's output for tests of the dispatch layer without a connection: it keeps every
// byte written to it, as a socket that takes everything would.

#include <chrono>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include "dispatch/output.hpp"

namespace fcgimux::test {

// Threading: Thread-safe.
class RecordingOutput final : public dispatch::Output {
 public:
  Written write(std::string_view records, std::stop_token stop) override {
    if (stop.stop_requested()) return Written::Dropped;
    return write_last(records);
  }
  bool wait_for_room(std::stop_token stop) override { return !stop.stop_requested(); }
  bool wait_for_room_until(std::stop_token stop, std::chrono::steady_clock::time_point) override {
    return !stop.stop_requested();
  }
  bool has_room() const noexcept override { return true; }
  Written write_last(std::string_view records) override {
    const std::lock_guard lock(mutex_);
    bytes_.append(records);
    return Written::Done;
  }
  // Everything written so far.
  std::string bytes() const {
    const std::lock_guard lock(mutex_);
    return bytes_;
  }

 private:
  mutable std::mutex mutex_;
  std::string bytes_;  // Guarded by mutex_.
};

}  // namespace fcgimux::test
