// SPDX-License-Identifier: MIT
#pragma once

// The pages the server answers itself, on its I/O thread and without a worker (php-fpm's
// pm.status_path and ping.path), and the slow-request log. Off unless Config asks.
//
// Threading: I/O thread only, except board(): the workers write to the board (see
// worker_board.hpp). Reads the counters, which are thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dispatch/counters.hpp"
#include "dispatch/exchange.hpp"
#include "dispatch/worker_board.hpp"
#include "fcgimux/config.hpp"
#include "util/logger.hpp"

namespace fcgimux::status {

class BuiltinPages {
 public:
  // Throws std::invalid_argument when a path is set but does not start with '/', or when the
  // status and ping paths are the same.
  static void check(const Config& config);

  // `config`, `counters`, `logger` and `board` must outlive this object. `workers`: the pool's
  // size. `board`: the one the workers keep (dispatch::SharedState::board), null when neither
  // the status page nor the slow log is on.
  BuiltinPages(const Config& config, dispatch::Counters& counters, const util::Logger& logger,
               unsigned workers, dispatch::WorkerBoard* board);

  // The complete CGI response (header block and body) when `exchange`, its params complete,
  // asks for the status or the ping page; nothing for any other request.
  std::optional<std::string> answer(const dispatch::Exchange& exchange);

  // Logs, once each, the requests running past Config::slow_request_threshold. Out of memory,
  // it logs nothing this time (and those requests count as reported).
  void sweep() noexcept;

 private:
  std::string status_page(const dispatch::Exchange& exchange) const;

  const Config& config_;
  dispatch::Counters& counters_;
  const util::Logger& logger_;
  const unsigned workers_;
  const std::chrono::system_clock::time_point started_;
  dispatch::WorkerBoard* const board_;
};

}  // namespace fcgimux::status
