// SPDX-License-Identifier: MIT
#include "dispatch/worker_pool.hpp"

#include "dispatch/exchange.hpp"

namespace fcgimux::dispatch {

WorkerPool::WorkerPool(unsigned count, AdmissionQueue& queue, Handler& handler,
                       WorkerBoard* board) {
  threads_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    threads_.emplace_back([&queue, &handler, board, i](std::stop_token stop) {
      if (board != nullptr) board->attach(i);
      while (Exchange* exchange = queue.pop(stop)) {
        const WorkerBoard::Shift shift(board, i, *exchange);
        exchange->run(handler);
      }
    });
  }
}

}  // namespace fcgimux::dispatch
