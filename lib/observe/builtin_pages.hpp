// SPDX-License-Identifier: MIT
#pragma once

// The pages the server answers itself, on its I/O thread and without a worker (php-fpm's
// pm.status_path and ping.path), and the slow-request log. Off unless Config asks.
//
// Threading: I/O thread only. Reads the counters and the worker board, which workers write
// (both thread-safe).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dispatch/pool.hpp"
#include "fcgimux/config.hpp"
#include "fcgimux/protocol.hpp"
#include "observe/counters.hpp"
#include "observe/scoreboard.hpp"
#include "observe/worker_board.hpp"
#include "util/logger.hpp"

namespace fcgimux::observe {

class BuiltinPages {
 public:
  // Throws std::invalid_argument when a path is set but does not start with '/', or when the
  // status and ping paths are the same.
  static void check(const Config& config);

  // `config`, `counters`, `logger` and `pools` must outlive this object. `pools`: the
  // server's, the default first, each with the board its workers keep (detailed when the
  // status page or a slow log is on).
  // `scoreboard`: the processes' of a server of several (Config::processes > 1), whose sum
  // the page shows; null for a server of one process.
  BuiltinPages(const Config& config, Counters& counters, const util::Logger& logger,
               const std::vector<std::unique_ptr<dispatch::PoolState>>& pools,
               const Scoreboard* scoreboard = nullptr);

  // Any thread: the server's figures, every pool's included (Server::stats()): this process's,
  // or the sum over every process of the scoreboard.
  Stats stats() const;

  // The complete CGI response (header block and body) when a request in `role` with `params`
  // (complete) asks for the status or the ping page; nothing for any other request. The
  // connection and request ids go to the access log.
  std::optional<std::string> answer(protocol::Role role,
                                    std::span<const protocol::NameValue> params,
                                    std::uint64_t connection_id, std::uint16_t request_id);

  // Logs, once each, the requests running past their pool's slow_request_threshold, and the
  // stack
  // of the first one's worker as it runs (observe/stack_trace.hpp): one stack every
  // kStackInterval at most, since taking one interrupts the worker and holds the I/O thread
  // up to kStackWait. Out of memory, it logs nothing this time (and those requests count as
  // reported).
  void sweep() noexcept;

  static constexpr std::chrono::seconds kStackInterval{10};
  static constexpr std::chrono::milliseconds kStackWait{100};

 private:
  // The status page's whole response; a 404 when it asks for a pool there is not.
  std::string status_page(std::span<const protocol::NameValue> params) const;
  // Logs the requests of `pool` running past its threshold (see sweep()).
  void sweep(dispatch::PoolState& pool);

  const Config& config_;
  Counters& counters_;
  const util::Logger& logger_;
  const std::chrono::system_clock::time_point started_;
  const std::vector<std::unique_ptr<dispatch::PoolState>>& pools_;
  const Scoreboard* scoreboard_;
  const bool stacks_;  // the slow log takes stacks: it is on, and SIGURG was free for it
  std::optional<std::chrono::steady_clock::time_point> last_stack_;
};

}  // namespace fcgimux::observe
