// SPDX-License-Identifier: MIT
#pragma once

// The I/O → workers hand-off. Producer: the I/O thread, which pushes each admitted request
// and may take a queued one back out (abort, connection closed). Consumers: the workers, each
// popping the oldest request. Bounded by the caller: the I/O thread admits at most
// Config::max_requests requests (queued plus running), so the queue never holds more.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <stop_token>

namespace fcgimux::dispatch {

class Exchange;

// Threading: Thread-safe. push() and remove() on the I/O thread, pop() on workers.
class AdmissionQueue {
 public:
  AdmissionQueue() = default;
  AdmissionQueue(const AdmissionQueue&) = delete;
  AdmissionQueue& operator=(const AdmissionQueue&) = delete;

  void push(Exchange* exchange);
  // Takes `exchange` out if no worker has popped it yet; returns whether it did.
  bool remove(Exchange* exchange);
  // Waits for the oldest exchange; nullptr once `stop` fires.
  Exchange* pop(std::stop_token stop);
  // The oldest exchange, or nullptr at once when none is queued.
  Exchange* try_pop();

 private:
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<Exchange*> queue_;  // Guarded by mutex_.
};

}  // namespace fcgimux::dispatch
