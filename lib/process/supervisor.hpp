// SPDX-License-Identifier: MIT
#pragma once

// The server of several processes (Config::processes > 1), mod_wsgi's daemon mode as php-fpm's
// master runs it: this process binds the listeners, forks the children that serve on them
// (each an io::ServerCore with its own I/O thread and workers), and from then on only
// supervises. It runs no handler, no thread and no libuv loop: one poll() over a self-pipe
// (signals and stop()) and a pidfd per child, waking every 50 ms to read the scoreboard.
//
// What it keeps true, each child being known by its number (0 to processes - 1):
//  - every number has a child serving: one that dies unasked is logged (its pid, its signal
//    or exit status, the requests it had in flight) and replaced at once, or after a back-off
//    (100 ms doubling to 10 s) when it died before it was ready or within a second of its
//    start, so that a handler that crashes at start-up does not spin the machine;
//  - a child past a recycling limit (it marks its slot Retiring), or every child in turn
//    after SIGHUP, is replaced replacement-first: the new child starts, and once it is ready
//    the old one is told to drain (ProcessSlot::Command::Drain) and leaves within
//    shutdown_timeout, so the capacity never drops;
//  - on stop() or SIGINT/SIGTERM every child drains as a single server does; a second stop
//    cancels their requests; a child still alive shutdown_timeout + 1.5 s after the stop is
//    killed; run() returns once every child is gone.
// A child dies with its supervisor (PR_SET_PDEATHSIG): no orphan serves on after it.
//
// Threading: construct, run() and destroy on one thread; stop(), local_endpoints() and stats()
// from any thread, stop() also from a signal handler.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fcgimux/config.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/server.hpp"
#include "io/endpoint.hpp"
#include "observe/scoreboard.hpp"
#include "util/logger.hpp"
#include "util/run_state.hpp"

namespace fcgimux::process {

class Supervisor {
 public:
  // Throws std::invalid_argument on a bad Config (as a Server of one process does), and
  // std::system_error when the scoreboard or the self-pipe cannot be made.
  Supervisor(Config config, Handler& handler);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // As Server::run(), with children serving (see the file comment).
  void run();
  // Async-signal-safe: a write to the self-pipe.
  void stop() noexcept;
  std::vector<std::string> local_endpoints() const;
  Stats stats() const;

 private:
  using Clock = std::chrono::steady_clock;

  struct Child {
    pid_t pid = -1;
    int pidfd = -1;         // readable once the child has exited
    std::size_t slot = 0;   // on the scoreboard
    unsigned number = 0;
    Clock::time_point started;
    bool ready = false;     // it has been seen Ready
    bool leaving = false;   // told to drain: its exit is expected
    bool replace = false;   // to be replaced: SIGHUP's rolling restart chose it
    bool backed_off = false;  // asked to be recycled soon after its start: see reconcile()
  };
  // What the supervisor knows of each number beyond its children.
  struct Number {
    unsigned quick_deaths = 0;  // in a row, each before ready or within a second of starting
    Clock::time_point next_start{};
  };

  // In the child: never returns.
  [[noreturn]] void serve_as_child(std::size_t slot, unsigned number, int bind_loop_fd) noexcept;
  void spawn(unsigned number, int bind_loop_fd);
  void reap(Child& child, int status);
  // One more quick end of `number` in a row: the next start waits 100 ms, doubling to 10 s.
  std::chrono::milliseconds back_off(Number& number);
  // Starts, replaces and retires children as the file comment says.
  void reconcile(int bind_loop_fd);
  void begin_stop();
  void command_all(observe::ProcessSlot::Command command);
  std::optional<std::size_t> free_slot() const noexcept;
  observe::ProcessSlot& slot_of(const Child& child) const noexcept {
    return scoreboard_.slot(child.slot);
  }

  const Config config_;
  Handler& handler_;
  const util::Logger logger_;
  std::vector<io::Endpoint> endpoints_to_bind_;
  std::vector<PoolStats> pool_shapes_;  // each pool's name and limits in one process
  observe::Scoreboard scoreboard_;
  int wake_read_ = -1;   // self-pipe: stop() and the signal handlers write, run() polls
  int wake_write_ = -1;
  pid_t supervisor_pid_ = 0;
  std::vector<std::string> child_listen_;  // "fd:N" for each bound listener

  // run() only.
  std::vector<Child> children_;
  std::vector<Number> numbers_;
  std::vector<unsigned> rolling_;  // numbers still to replace after SIGHUP, the next first
  Clock::time_point rolling_since_{};  // the SIGHUP: children started before it are replaced
  bool stopping_ = false;
  bool cancelled_ = false;
  bool announced_ready_ = false;
  Clock::time_point kill_at_{};
  bool killed_ = false;

  std::atomic<bool> run_called_{false};
  std::atomic<bool> stop_requested_{false};
  util::RunState run_state_;  // run() → local_endpoints() callers and ~Supervisor()
};

}  // namespace fcgimux::process
