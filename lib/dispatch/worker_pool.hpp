// SPDX-License-Identifier: MIT
#pragma once

// The worker threads of every pool, and the state they share with the I/O thread.
//
// Workers that ignore the shutdown: a handler may block forever and ignore its stop token. At
// the end of the shutdown grace the server gives up on such a worker instead of waiting for it
// (WorkerPool::abandon): the thread is detached and run() returns. Whenever that handler
// returns, its thread goes on touching its exchange, the output of the exchange's
// connection, the notice queue, the counters and the logger. All of them live
// in one SharedState block that every worker thread holds by shared_ptr: the one place where this
// library uses shared ownership, because an abandoned thread's end is unknowable. The server
// moves the abandoned exchanges and outputs into the block, so they are freed with it, when
// the last thread lets go of it.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "dispatch/admission_queue.hpp"
#include "dispatch/buffer_pool.hpp"
#include "dispatch/exchange.hpp"
#include "dispatch/notice_queue.hpp"
#include "dispatch/output.hpp"
#include "dispatch/pool.hpp"
#include "fcgimux/config.hpp"
#include "fcgimux/handler.hpp"
#include "observe/counters.hpp"
#include "observe/worker_board.hpp"
#include "util/logger.hpp"

namespace fcgimux::dispatch {

// Where a server's counters live when not in its SharedState: the process's scoreboard slot
// (observe/scoreboard.hpp), with the pools' counters in order.
struct Figures {
  observe::Counters* counters = nullptr;
  std::span<observe::PoolCounters> pools{};
};

// Threading: the members say; the block itself is shared by the server and every worker.
struct SharedState {
  // `wake` tells the I/O thread that `notices` has notices (see NoticeQueue). `default_workers`:
  // the default pool's size. `handler`: the server's, for the pools without their own.
  // `figures`: where the counters live when not here (see Figures).
  SharedState(const Config& config, unsigned default_workers, Handler& handler,
              NoticeQueue::Wake wake, void* context, Figures figures = {});
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  const util::Logger logger;     // thread-safe
  observe::Counters own_counters;  // unused when Figures gave counters elsewhere
  observe::Counters& counters;     // thread-safe
  NoticeQueue notices;         // workers → I/O thread
  // The default pool, then Config::pools in order; each with its admission queue (I/O thread
  // → its workers) and its board: each worker's request, which one (always), and its details
  // for the status page and the slow log (when either is on). Never resized.
  std::vector<std::unique_ptr<PoolState>> pools;
  BufferPool body_buffers;     // thread-safe
  const ExchangeContext exchange_context;

  // I/O thread only, and only once the pool has abandoned workers: what abandoned workers may
  // still touch. Declared last, so the exchanges go before anything they refer to.
  std::vector<std::unique_ptr<Output>> abandoned_outputs;
  std::vector<std::unique_ptr<Exchange>> abandoned_exchanges;
};

// A fixed set of threads, each serving one pool: popping admitted requests from its queue and
// running them one at a time with its handler. No thread is created per request.
// Threading: construct, abandon() and destroy on one thread (the server's); the workers touch
// only `shared` and the exchanges they pop.
class WorkerPool {
 public:
  // Starts every pool's workers. Each pool's handler must outlive every call it gets (also
  // abandoned ones).
  explicit WorkerPool(std::shared_ptr<SharedState> shared);
  // Stops the workers once they finish the request at hand, and joins them (not the abandoned
  // ones). Requests still queued are not run: the caller drains the queues first.
  ~WorkerPool() = default;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Stops every worker and detaches those still running a request: their threads end when
  // their handlers return, if ever. Call it after NoticeQueue::close(), once the admission queues
  // are empty. Returns how many were detached.
  std::size_t abandon() noexcept;

 private:
  std::shared_ptr<SharedState> shared_;
  std::vector<std::jthread> threads_;
  // Whose each thread is: its pool and its index there, by the position in threads_.
  struct Seat {
    PoolState* pool;
    unsigned index;
  };
  std::vector<Seat> seats_;
};

}  // namespace fcgimux::dispatch
