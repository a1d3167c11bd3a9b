// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <cstdint>

#include "fcgimux/server.hpp"

namespace fcgimux::observe {

// The live counters behind Server::stats() (each pool's admission count is in PoolCounters).
// Each is updated with a relaxed atomic add by the thread that sees the event: the I/O thread
// for connections, admission and bytes, workers for running and finishing handlers.
// Threading: Thread-safe.
struct Counters {
  using Counter = std::atomic<std::uint64_t>;
  Counter connections_accepted{0};
  Counter connections_refused{0};
  Counter connections_open{0};
  Counter requests_admitted{0};
  Counter requests_completed{0};
  Counter requests_failed{0};
  Counter requests_body_too_large{0};
  Counter requests_aborted{0};
  Counter requests_overloaded{0};
  Counter requests_refused{0};
  Counter requests_refused_params{0};
  Counter requests_refused_body{0};
  Counter requests_abandoned{0};
  Counter requests_running{0};
  Counter requests_queued{0};
  Counter bytes_in{0};
  Counter bytes_out{0};
  Counter input_buffered{0};
  Counter output_buffered{0};
  Counter params_pending{0};
  Counter requests_running_max{0};
  Counter requests_queued_max{0};
  Counter slow_requests{0};
  Counter streams_open{0};  // raised by a worker at detach, only below Config::max_streams
  Counter stream_writes_dropped{0};

  // Returns the counter's new value.
  static std::uint64_t add(Counter& counter, std::uint64_t n = 1) noexcept {
    return counter.fetch_add(n, std::memory_order_relaxed) + n;
  }
  // Raises `max` to `value` unless it already holds more.
  static void raise_max(Counter& max, std::uint64_t value) noexcept {
    std::uint64_t seen = max.load(std::memory_order_relaxed);
    while (seen < value && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }
  static void sub(Counter& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_sub(n, std::memory_order_relaxed);
  }

  // Every figure but Stats::pools and the process figures.
  Stats snapshot() const noexcept;
  // Adds the totals to `into`'s and raises its most-at-once figures to these; leaves the
  // figures of the moment (open, running, buffered). How a process that ended leaves its
  // figures to the scoreboard (observe/scoreboard.hpp).
  void fold_into(Counters& into) const noexcept;
  // Every figure back to 0, one atomic store each (a reader may be looking).
  void reset() noexcept;
  // Adds `from`'s figures to `into`'s (the most-at-once ones: the larger), as the scoreboard
  // sums its processes.
  static void add(Stats& into, const Stats& from) noexcept;
};

// One worker pool's figures (dispatch/pool.hpp). `in_flight` is always kept: it is the pool's
// admission count. The others are kept only when the server has several pools: with the
// default pool alone, they would repeat the server's Counters, which then stand for it, so
// that a server without pools does no more work per request than before pools existed.
// Threading: Thread-safe.
struct PoolCounters {
  using Counter = Counters::Counter;
  // Requests admitted and not yet ended: what the pool's max_requests bounds. Raised by the
  // I/O thread at admission, lowered once per request (Exchange::release_slot()) by its worker
  // as the handler's end goes out, or by the I/O thread for a request no worker ran.
  Counter in_flight{0};
  Counter admitted{0};
  Counter overloaded{0};
  Counter running{0};
  Counter queued{0};
  Counter running_max{0};
  Counter queued_max{0};
  Counter slow{0};

  // As Counters' (`in_flight` is a figure of the moment).
  void fold_into(PoolCounters& into) const noexcept;
  void reset() noexcept;
  // These figures as the pool of `shape` (its name and limits) keeps them.
  PoolStats snapshot(PoolStats shape) const noexcept;
  static void add(PoolStats& into, const PoolStats& from) noexcept;
  // The figures of the default pool alone, which keeps none of its own: the server's totals
  // stand for it.
  static PoolStats from_totals(PoolStats shape, const Stats& totals) noexcept;
};

}  // namespace fcgimux::observe
