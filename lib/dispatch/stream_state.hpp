// SPDX-License-Identifier: MIT
#pragma once

// What a ResponseStream handle holds: the exchange of a detached request, and the mutex that
// serializes the handle's calls from the application's threads (any of them) against one
// another. The exchange's other holder, the worker that ran the handler, touches no output
// state after detach (dispatch/exchange.hpp); the I/O thread only stops the exchange, which is
// thread-safe.
//
// Lives on the heap apart from the exchange, so that a call racing end() on another thread
// finds `exchange` null instead of an exchange already handed back and reused. Holds the
// server's SharedState, as an abandoned worker does (dispatch/worker_pool.hpp): a stream the
// application never ends may outlive the server, and its exchange, output, counters and
// logger then live in that block.
//
// Threading: Thread-safe: every field but the immutable ones is guarded by mutex.

#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>

#include "dispatch/exchange.hpp"
#include "observe/counters.hpp"
#include "util/logger.hpp"

namespace fcgimux::dispatch {

struct StreamState {
  using StopCallback = std::stop_callback<std::function<void()>>;

  StreamState(Exchange& detached, std::shared_ptr<SharedState> keep_alive,
              observe::Counters& server_counters, const util::Logger& server_logger) noexcept
      : exchange(&detached),
        stop(detached.stop_token()),
        owner(std::move(keep_alive)),
        counters(server_counters),
        logger(server_logger) {}

  std::mutex mutex;
  Exchange* exchange;  // null once ended; Guarded by mutex.
  // The application's stop callback: destroyed outside mutex, as its destructor waits for a
  // callback under way, which may itself call end(). Guarded by mutex.
  std::unique_ptr<StopCallback> on_stop;
  StopReason reason_at_end = StopReason::None;  // Guarded by mutex.
  const std::stop_token stop;  // the request's: its exchange, once reused, gets a new one
  const std::shared_ptr<SharedState> owner;
  observe::Counters& counters;
  const util::Logger& logger;
};

}  // namespace fcgimux::dispatch
