// SPDX-License-Identifier: MIT
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace fcgimux::util {

// What a server's run() tells the other threads: the addresses its listeners are bound to
// (Server::local_endpoints() waits for them, or for run()'s end when binding failed), and
// whether run() is still running (the destructor waits for its end).
// Threading: Thread-safe.
class RunState {
 public:
  // For the length of run(): begun on construction, ended on destruction, however run() ends.
  class Running {
   public:
    explicit Running(RunState& state) : state_(state) {
      const std::lock_guard lock(state_.mutex_);
      state_.running_ = true;
    }
    ~Running() {
      {
        const std::lock_guard lock(state_.mutex_);
        state_.running_ = false;
        state_.published_ = true;
      }
      state_.changed_.notify_all();
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

   private:
    RunState& state_;
  };

  // The listeners are bound to `endpoints`.
  void publish(std::vector<std::string> endpoints) {
    {
      const std::lock_guard lock(mutex_);
      endpoints_ = std::move(endpoints);
      published_ = true;
    }
    changed_.notify_all();
  }
  // Blocks until publish(), or run()'s end (then empty unless published before).
  std::vector<std::string> endpoints() const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return published_; });
    return endpoints_;
  }
  // Blocks while run() runs.
  void wait_ended() const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !running_; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool published_ = false;              // Guarded by mutex_.
  std::vector<std::string> endpoints_;  // Guarded by mutex_.
  bool running_ = false;                // Guarded by mutex_.
};

}  // namespace fcgimux::util
