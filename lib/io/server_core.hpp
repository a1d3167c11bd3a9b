// SPDX-License-Identifier: MIT
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/admission_queue.hpp"
#include "dispatch/exchange.hpp"
#include "dispatch/notice_queue.hpp"
#include "dispatch/worker_pool.hpp"
#include "fcgimux/server.hpp"
#include "io/client_filter.hpp"
#include "io/connection.hpp"
#include "io/endpoint.hpp"
#include "io/listener.hpp"
#include "io/piece_pool.hpp"
#include "observe/builtin_pages.hpp"
#include "observe/counters.hpp"
#include "observe/scoreboard.hpp"
#include "util/logger.hpp"
#include "util/run_state.hpp"

namespace fcgimux::io {

// `config` checked for what a Server refuses (see Server's constructor): throws
// std::invalid_argument, naming the field.
Config validated(Config config);
// The default pool's worker threads for Config::workers (0 picks a number from the cores).
unsigned worker_count(unsigned configured) noexcept;
// Calls Config::on_listening, if set, with the bound addresses; logs what it throws.
void announce(const Config& config, const std::vector<std::string>& endpoints,
              const util::Logger& logger) noexcept;

// Where a child process of a server of several (Config::processes > 1) keeps its figures and
// hears its supervisor (process/supervisor.hpp): its slot on the scoreboard.
struct Place {
  observe::Scoreboard* scoreboard = nullptr;
  std::size_t slot = 0;
};

// The server behind the facade: the uv loop, its listeners and connections, the worker pools
// and their admission queues.
//
// Threading: I/O thread only (the thread in run()), except the members marked otherwise: the
// hand-offs (queue, notices), the counters, the endpoint publication and stop().
class ServerCore {
 public:
  // `place`: the scoreboard slot of this process when a supervisor forked it; its figures go
  // there, and every 50 ms the server reads its supervisor's command there and writes whether
  // it passed a recycling limit (Config::max_requests_per_process, max_rss_per_process).
  ServerCore(Config config, Handler& handler, Place place = {});
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  void run();
  // Any thread, also a signal handler: only an atomic load and uv_async_send.
  void stop() noexcept;
  std::vector<std::string> local_endpoints() const;
  // Any thread.
  Stats stats() const;

  // --- I/O thread, called by listeners and connections --------------------------------------
  // A listener has a connection waiting.
  void accept_from(Listener& listener) noexcept;
  // Makes a connection of the one waiting on `listener`, or of `queued_fd` when >= 0.
  void take_connection(Listener& listener, int queued_fd) noexcept;
  // Chooses the pool of a request whose params are complete (Exchange::pool, set either way),
  // and admits it there (queued for one of its workers) unless the pool's max_requests are
  // admitted; returns whether it did. Throws what a pool's predicate throws.
  bool admit(dispatch::Exchange& exchange);
  // Takes an admitted request back out of its pool's queue, counted as aborted, if no worker
  // has taken it yet; returns whether it did.
  bool take_back(dispatch::Exchange& exchange) noexcept;
  // Requests admitted and not yet ended, in every pool.
  std::size_t requests_in_flight() const noexcept;
  // Whether any pool has a request_timeout.
  bool request_timeouts() const noexcept { return request_timeouts_; }
  // An admitted request leaves its connection's table (it ended, or was taken back out of the
  // queue): its slot is released unless its worker already did (Exchange::release_slot()),
  // and a drain waiting for it ends.
  void release_admission(dispatch::Exchange& exchange) noexcept;
  // Counts `bytes` more params of requests not yet ended, unless that would pass
  // Config::pending_params_budget; returns whether it did. release_pending_params() counts
  // them out again.
  bool hold_pending_params(std::size_t bytes) noexcept;
  void release_pending_params(std::size_t bytes) noexcept;
  // Takes ownership of a connection that is open (its transport is live), for the sweeps,
  // the drain and remove_connection(). take_connection() adopts what it accepts; a transport
  // that is not a socket (the whole-connection fuzz target's) comes in here directly.
  void adopt(std::unique_ptr<Connection> connection);
  std::uint64_t next_connection_id() noexcept { return next_connection_id_++; }
  // Hands every notice the workers queued to its connection, then flushes those.
  void deliver_notices() noexcept;
  // The connection's handle is closed and it has no exchange left: free it.
  void remove_connection(Connection& connection) noexcept;
  // Exchanges are recycled, each kept with its buffers (up to a bound on how many), so that
  // the steady path of a request allocates nothing.
  dispatch::Exchange* make_exchange(std::uint64_t connection_id, std::uint16_t id,
                                    protocol::Role role, bool keep_conn, dispatch::Output& output);
  // Requires: no worker holds `exchange` (Exchange, step 4).
  void retire_exchange(dispatch::Exchange& exchange) noexcept;
  bool draining() const noexcept { return draining_; }
  // Loop time at which draining began; 0 before.
  std::uint64_t drain_started() const noexcept { return drain_started_; }
  // Checks that I/O-thread-only code runs on the thread that runs the loop (the one that made
  // the server until run() starts, then run()'s, then the destructor's), as muduo's
  // assertInLoopThread does: aborts with a message otherwise. In builds with
  // FCGIMUX_CHECK_THREADS (Debug and sanitizer builds); nothing otherwise.
  void assert_in_loop_thread() const noexcept;
  // The loop's one read buffer: libuv fills it and calls the read callback at once, which
  // consumes all of it before returning, so every connection can share it.
  std::span<char> read_buffer() noexcept { return read_buffer_; }

  const Config config;
  Handler& handler;  // the default pool's, and that of every pool without its own
  // What the workers touch, shared with them (see dispatch/worker_pool.hpp), and references
  // to its parts.
  const std::shared_ptr<dispatch::SharedState> shared;
  const util::Logger& logger;
  observe::Counters& counters;

  uv_loop_t loop{};
  dispatch::NoticeQueue& notices;
  dispatch::AdmissionQueue& queue;  // the default pool's
  const dispatch::ExchangeContext& exchange_context;
  observe::BuiltinPages pages;  // the status and ping pages, the slow-request log
  PiecePool pieces;             // for every connection's output

 private:
  static void on_wake(uv_async_t* async) noexcept;
  static void on_stop(uv_async_t* async) noexcept;
  static void on_signal(uv_signal_t* signal, int signum) noexcept;
  static void on_shutdown_deadline(uv_timer_t* timer) noexcept;
  // Place's check, every 50 ms.
  static void on_process_tick(uv_timer_t* timer) noexcept;

  void bind_listeners();
  void start_sweeping(std::uint64_t interval_ms) noexcept;
  std::uint64_t sweep_interval_ms() const noexcept;
  void start_systemd_notification() noexcept;
  void begin_drain() noexcept;
  void cancel_all() noexcept;
  // The grace after cancel_all() is over: gives up on the handlers still running.
  void abandon_stuck() noexcept;
  void log_stuck(const dispatch::Exchange& exchange) noexcept;
  void finish_if_drained() noexcept;
  void close_loop_handles() noexcept;
  void publish_endpoints(std::vector<std::string> endpoints, bool bound);

  uv_async_t wake_{};          // workers → I/O: the notice queue has notices
  uv_prepare_t quiet_ends_{};  // before the loop sleeps: the notices queued without a wake-up
  uv_async_t stop_{};          // stop() → I/O
  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
  uv_timer_t shutdown_timer_{};
  uv_timer_t abandon_timer_{};  // started by cancel_all()
  uv_timer_t sweep_timer_{};    // idle connections and request deadlines
  uv_timer_t watchdog_timer_{};
  uv_timer_t process_timer_{};  // with a Place: the supervisor's command, the recycling limits
  bool loop_handles_open_ = false;
  bool signals_started_ = false;

  const Place place_;
  std::uint64_t process_ticks_ = 0;
  bool cancelled_by_supervisor_ = false;
  std::vector<Endpoint> listen_endpoints_;
  ClientFilter client_filter_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::list<std::unique_ptr<Connection>> connections_;
  std::uint64_t next_connection_id_ = 1;
  bool draining_ = false;
  std::uint64_t drain_started_ = 0;
  bool request_timeouts_ = false;  // see request_timeouts()
  std::size_t pending_params_ = 0;            // see hold_pending_params()
  dispatch::WorkerPool* workers_ = nullptr;   // while run() runs the loop
  std::vector<dispatch::Notice> delivering_;  // reused by deliver_notices()
  std::vector<Connection*> to_flush_;         // reused by deliver_notices()
  std::array<char, 64 * 1024> read_buffer_{};
  // Retired, for make_exchange(); capacity reserved up to the bound.
  std::vector<std::unique_ptr<dispatch::Exchange>> spare_exchanges_;

  std::thread::id loop_thread_ = std::this_thread::get_id();  // see assert_in_loop_thread()
  std::atomic<bool> run_called_{false};
  std::atomic<bool> stop_requested_{false};

  util::RunState run_state_;  // run() → local_endpoints() callers and ~ServerCore()
};

}  // namespace fcgimux::io
