// SPDX-License-Identifier: MIT
#pragma once

// The unsent output of one connection: a hand-off between the workers that produce bytes and
// the I/O thread that sends them.
//
// Producers (workers) count bytes in before they hand records to the I/O thread: acquire()
// waits while the connection already holds `limit` unsent bytes, so a client that stops
// reading blocks its handlers instead of growing memory. The consumer (the I/O thread)
// counts bytes out with release() once they are written to the socket or dropped.
//
// A waiter may overshoot the limit by what it acquires at once (at most one record, 64 KiB),
// so the bound is limit + one record per writing worker.

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>

#include "dispatch/counters.hpp"

namespace fcgimux::dispatch {

// Threading: Thread-safe. acquire() and add() on workers, release() and close() on the I/O
// thread.
class OutputBudget {
 public:
  OutputBudget(std::size_t limit, Counters& counters) noexcept
      : limit_(limit), counters_(counters) {}
  OutputBudget(const OutputBudget&) = delete;
  OutputBudget& operator=(const OutputBudget&) = delete;

  // Waits until fewer than `limit` bytes are unsent, then counts `bytes` in. Returns false,
  // counting nothing, once `stop` fires or the budget is closed.
  bool acquire(std::size_t bytes, std::stop_token stop);
  // Counts `bytes` in without waiting (a request's closing records must always go out).
  void add(std::size_t bytes);
  // Counts `bytes` out and wakes waiting producers.
  void release(std::size_t bytes);
  // The connection is gone: every waiter returns false, now and later.
  void close();

 private:
  const std::size_t limit_;
  Counters& counters_;
  std::mutex mutex_;
  std::condition_variable_any drained_;
  std::size_t unsent_ = 0;  // Guarded by mutex_.
  bool closed_ = false;     // Guarded by mutex_.
};

}  // namespace fcgimux::dispatch
