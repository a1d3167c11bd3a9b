// SPDX-License-Identifier: MIT
#pragma once

// The worker board: what each worker is doing (php-fpm's scoreboard, one slot per worker
// thread), for the status page, the slow-request log, and the names of requests whose handlers
// ignore the shutdown.
//
// Writers and readers:
//  - each worker writes its own slot: attach() once when it starts, then begin() and end()
//    around every request (through Shift);
//  - the I/O thread reads every slot: snapshot(), take_slow() (which marks slow requests) and
//    runner().
// Thread safety: which request a worker runs, and since when, are two atomics per slot, set
// and read without a lock: the server asks them of every stuck request, and workers set them
// on every request. The rest of a slot (the request's method, URI, script and user, kept only
// when the board is `detailed`) is behind one mutex per slot, which a worker holds only while
// it copies a few fixed-size fields in begin() or end(), never while its handler runs; workers
// never contend with each other. The slots never move: the board is built with its final size
// before any worker starts.
//
// Bounded: each slot keeps fixed-size copies of the request's method, URI, script and user,
// truncated to fit (kMethodSize etc.), so a hostile request cannot grow the board.

#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "observe/counters.hpp"

namespace fcgimux::observe {

// One worker as a reader sees it: copied out of its slot, so it can be read without locks.
struct WorkerSnapshot {
  std::string_view pool;  // its pool's name, filled in by whoever knows it; empty until then
  unsigned index = 0;     // within its pool
  long thread_id = 0;  // the worker thread's Linux thread id (gettid()); 0 until it started
  std::chrono::system_clock::time_point started;  // when the worker thread started
  bool running = false;                           // running a request now (else idle)
  std::uint64_t requests = 0;                     // requests begun by this worker
  // The request running now, or the last one when idle (all empty before the first).
  std::uint64_t connection_id = 0;
  std::uint16_t request_id = 0;
  std::string method;
  std::string uri;
  std::string script;
  std::string user;
  std::uint64_t content_length = 0;
  // How long the request has run (running), or how long the last one ran (idle).
  std::chrono::microseconds duration{0};
};

// A request as a worker begins it.
struct BegunRequest {
  const void* token;  // what identifies it for runner(): its exchange's address
  std::uint64_t connection_id;
  std::uint16_t request_id;
  std::span<const protocol::NameValue> params;
};

// Threading: as the file comment says.
class WorkerBoard {
 public:
  static constexpr std::size_t kMethodSize = 16;
  static constexpr std::size_t kUriSize = 512;
  static constexpr std::size_t kScriptSize = 256;
  static constexpr std::size_t kUserSize = 64;

  // `workers` slots. `counters` (slow_requests) must outlive the board. `detailed`: keep each
  // request's method, URI, script and user (the status page and the slow log need them).
  WorkerBoard(unsigned workers, Counters& counters, bool detailed);
  WorkerBoard(const WorkerBoard&) = delete;
  WorkerBoard& operator=(const WorkerBoard&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(slots_.size()); }
  bool detailed() const noexcept { return detailed_; }

  // Worker `index`, on its own thread, before its first request.
  void attach(unsigned index) noexcept;
  // Worker `index` begins `request` (before its handler runs), and ends it (after).
  void begin(unsigned index, const BegunRequest& request) noexcept;
  void end(unsigned index) noexcept;

  // Marks begin() and end() around one request: begin now, end when it goes out of scope.
  class Shift {
   public:
    Shift(WorkerBoard& board, unsigned index, const BegunRequest& request) noexcept
        : board_(board), index_(index) {
      board_.begin(index_, request);
    }
    ~Shift() { board_.end(index_); }
    Shift(const Shift&) = delete;
    Shift& operator=(const Shift&) = delete;

   private:
    WorkerBoard& board_;
    unsigned index_;
  };

  // A worker running a request, and since when.
  struct Runner {
    unsigned index = 0;
    std::chrono::steady_clock::time_point since;
  };
  // Any thread, without a lock: the worker running the request `token` (admitted at
  // `admitted_at`), if one is. A slot not yet cleared may still name a request since freed
  // whose address a later one took; only a worker that began after `admitted_at` counts.
  std::optional<Runner> runner(const void* token,
                               std::chrono::steady_clock::time_point admitted_at) const noexcept;
  // Any thread, without a lock: whether worker `index` runs a request now.
  bool busy(unsigned index) const noexcept {
    return slots_[index].token.load(std::memory_order_acquire) != nullptr;
  }

  // Any thread: every worker, by index.
  std::vector<WorkerSnapshot> snapshot() const;

  // A request that has run longer than the threshold, reported once.
  struct Slow {
    unsigned worker = 0;
    pthread_t thread{};  // the worker's thread, for observe::stack_of()
    std::uint64_t connection_id = 0;
    std::uint16_t request_id = 0;
    std::string method;
    std::string uri;
    std::chrono::milliseconds running{0};
  };
  // The I/O thread: the requests running for `threshold` or longer that no earlier call
  // reported. Each is reported once and counted in Counters::slow_requests.
  std::vector<Slow> take_slow(std::chrono::milliseconds threshold);

 private:
  template <std::size_t N>
  struct Text {
    std::array<char, N> bytes{};
    std::size_t size = 0;
    void assign(std::string_view text) noexcept;
    std::string str() const { return std::string(bytes.data(), size); }
  };

  struct Slot {
    std::atomic<const void*> token{nullptr};               // the request running now, or null
    std::atomic<std::chrono::steady_clock::rep> since{0};  // when it began; set before token
    mutable std::mutex mutex;
    long thread_id = 0;                             // Guarded by mutex.
    pthread_t thread{};                             // Guarded by mutex.
    std::chrono::system_clock::time_point started;  // Guarded by mutex.
    bool running = false;                           // Guarded by mutex.
    bool reported_slow = false;                     // Guarded by mutex.
    std::uint64_t requests = 0;                     // Guarded by mutex.
    std::uint64_t connection_id = 0;                // Guarded by mutex.
    std::uint16_t request_id = 0;                   // Guarded by mutex.
    Text<kMethodSize> method;                       // Guarded by mutex.
    Text<kUriSize> uri;                             // Guarded by mutex.
    Text<kScriptSize> script;                       // Guarded by mutex.
    Text<kUserSize> user;                           // Guarded by mutex.
    std::uint64_t content_length = 0;               // Guarded by mutex.
    std::chrono::steady_clock::time_point begun;    // Guarded by mutex.
    std::chrono::microseconds last_duration{0};     // Guarded by mutex.
  };

  Counters& counters_;
  const bool detailed_;
  std::vector<Slot> slots_;  // sized once; never moves
};

}  // namespace fcgimux::observe
