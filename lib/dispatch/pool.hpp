// SPDX-License-Identifier: MIT
#pragma once

// A worker pool as the server runs it (Config::pools, and the default pool the rest of Config
// describes): its limits, its handler, its admission queue and count, and its worker board.
// The server holds them in order, the default pool first; choose_pool() picks one for a
// request.
//
// Threading: the limits, the name and the handler are immutable after construction; the
// queue, the counters and the board are thread-safe, as their headers say.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

#include "dispatch/admission_queue.hpp"
#include "fcgimux/config.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"
#include "fcgimux/server.hpp"
#include "observe/counters.hpp"
#include "observe/worker_board.hpp"

namespace fcgimux::dispatch {

// One pool: owned by the server's SharedState, which every worker thread holds.
// Threading: the members say; immutable ones are safe to share.
class PoolState {
 public:
  // The pool `spec` describes, running `handler` (spec.handler when set). `totals`: the
  // server's counters, which the board counts slow requests in. `detailed`: the board keeps
  // each request's details (the status page or a slow log is on). `own_figures`: the server has
  // several pools, so this one keeps its own figures besides the server's (PoolCounters).
  // `figures`: where its counters live when not here (the process's scoreboard slot).
  PoolState(const Pool& spec, Handler& handler, observe::Counters& totals, bool detailed,
            bool own_figures, observe::PoolCounters* figures = nullptr);
  PoolState(const PoolState&) = delete;
  PoolState& operator=(const PoolState&) = delete;

  // Any thread: the pool's figures now. `totals`: the server's, which are this pool's own when
  // it does not keep them (the default pool alone).
  PoolStats figures(const Stats& totals) const;

  const std::string name;
  const unsigned workers;
  const std::size_t max_requests;
  const std::chrono::milliseconds queue_timeout;  // 0: none
  const std::chrono::milliseconds request_timeout;
  const std::chrono::milliseconds slow_request_threshold;
  Handler& handler;
  const bool own_figures;

  observe::PoolCounters own_counters;  // unused when the constructor got `figures`
  observe::PoolCounters& counters;
  AdmissionQueue queue;  // I/O thread → this pool's workers
  observe::WorkerBoard board;
};

// Which pool takes a request in `role` with complete `params`: 0 for the default pool, i + 1
// for pools[i], the first whose match it meets (see fcgimux::Pool). Throws what a predicate
// throws.
std::size_t choose_pool(std::span<const Pool> pools, protocol::Role role,
                        std::span<const protocol::NameValue> params);

// Whether `path` starts with `prefix` at a path-segment boundary: "/slow" matches "/slow" and
// "/slow/x", not "/slower"; a prefix ending in '/' is a plain prefix.
bool path_has_prefix(std::string_view path, std::string_view prefix) noexcept;

}  // namespace fcgimux::dispatch
