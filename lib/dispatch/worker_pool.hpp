// SPDX-License-Identifier: MIT
#pragma once

#include <thread>
#include <vector>

#include "dispatch/admission_queue.hpp"
#include "dispatch/worker_board.hpp"
#include "fcgimux/handler.hpp"

namespace fcgimux::dispatch {

// A fixed set of threads, each popping admitted requests from the queue and running them one
// at a time. No thread is created per request.
// Threading: construct and destroy on one thread (the server's); the workers touch only the
// queue and the exchanges they pop.
class WorkerPool {
 public:
  // Starts `count` workers. `queue` and `handler` must outlive the pool, and so must `board`
  // when not null: each worker then keeps its slot (worker_board.hpp).
  WorkerPool(unsigned count, AdmissionQueue& queue, Handler& handler, WorkerBoard* board = nullptr);
  // Stops the workers once they finish the request at hand, and joins them. Requests still
  // queued are not run: the caller drains the queue first.
  ~WorkerPool() = default;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

 private:
  std::vector<std::jthread> threads_;
};

}  // namespace fcgimux::dispatch
