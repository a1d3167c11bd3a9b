// SPDX-License-Identifier: MIT
#pragma once

// The scoreboard of a server of several processes (Config::processes > 1), php-fpm's way: one
// block of shared memory, mapped before the first fork, so that every child counts into its
// own slot with the same relaxed atomic adds as a single process does, and any process (the
// supervisor for Server::stats(), a child for the status page) reads the sum of all of them.
//
// A slot is the supervisor's to hand out: it clears a free slot, forks a child that counts
// into it, and once that child has died folds its totals into the retired figures (a total
// never goes back when a child is replaced) and frees the slot. The fold is bracketed by a
// generation count, odd while it runs, so a reader retries rather than count a dead child
// twice or not at all.
//
// Threading: every member is an atomic in shared memory, safe from any thread of any process
// that maps the block; the methods say which process calls them.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fcgimux/server.hpp"
#include "observe/counters.hpp"
#include "observe/status_page.hpp"

namespace fcgimux::observe {

// One child's place on the scoreboard.
struct ProcessSlot {
  enum class State : std::uint32_t {
    Free,      // no child
    Starting,  // forked, not serving yet
    Ready,     // serving
    Retiring,  // past a recycling limit: serving until its replacement is ready
    Leaving,   // told to stop: draining
  };
  // What the supervisor asks of the child (Leaving, then Cancel when a second stop comes).
  enum class Command : std::uint32_t { None, Drain, Cancel };

  std::atomic<pid_t> pid{0};
  std::atomic<State> state{State::Free};
  std::atomic<Command> command{Command::None};
  std::atomic<std::uint32_t> number{0};      // Config::on_process_start's argument
  std::atomic<std::int64_t> started_ms{0};   // since the Unix epoch
  std::atomic<std::uint64_t> rss_bytes{0};   // resident memory, as the child last saw it
  std::atomic<bool> retiring_for_memory{false};  // Retiring past max_rss_per_process
  Counters counters;
};

class Scoreboard {
 public:
  // Maps a block of `slots` slots, each with PoolCounters for `pools` pools. Throws
  // std::system_error when mmap fails.
  Scoreboard(std::size_t slots, std::size_t pools);
  ~Scoreboard();
  Scoreboard(const Scoreboard&) = delete;
  Scoreboard& operator=(const Scoreboard&) = delete;

  std::size_t slots() const noexcept { return slots_; }
  ProcessSlot& slot(std::size_t i) const noexcept;
  // The slot's pool counters, one per pool, the default pool first.
  std::span<PoolCounters> pool_counters(std::size_t i) const noexcept;

  // Supervisor: readies free slot `i` for a child numbered `number`, every figure zero.
  void claim(std::size_t i, unsigned number) noexcept;
  // Supervisor: the child in slot `i` has died; its totals join the retired figures and the
  // slot is free again.
  void release(std::size_t i) noexcept;

  // Any process: every figure summed over the retired ones and the live slots. `pools`: each
  // pool's name and limits in one process (workers, max_requests), multiplied by the processes
  // running; `own_figures` as dispatch::PoolState's.
  Stats stats(std::span<const PoolStats> pools, bool own_figures) const;

  // A child's I/O thread, before it accepts a connection from the listening socket it shares
  // with its siblings: whether the child in `slot` holds no more connections than the serving
  // (Ready) sibling that holds the fewest, plus an eighth of those (at least kShareMargin).
  // True when no sibling serves; false, whatever it holds, for a Retiring child while a
  // sibling serves. One relaxed load per slot.
  static constexpr std::uint64_t kShareMargin = 8;
  bool within_share(std::size_t slot) const noexcept;

  // Any process: every child, by slot, for the status page.
  std::vector<ProcessSnapshot> processes() const;
  // When the scoreboard was made: the server's start.
  std::chrono::system_clock::time_point started() const noexcept;

  std::atomic<std::uint64_t>& restarts() const noexcept;
  std::atomic<std::uint64_t>& recycles() const noexcept;

 private:
  struct Header;
  Header& header() const noexcept;
  std::span<PoolCounters> retired_pools() const noexcept;

  std::size_t slots_;
  std::size_t pools_;
  std::size_t stride_;  // bytes from one slot to the next
  std::size_t size_;    // bytes mapped
  void* memory_ = nullptr;
};

}  // namespace fcgimux::observe
