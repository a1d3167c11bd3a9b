// SPDX-License-Identifier: MIT
#include "dispatch/worker_pool.hpp"

#include "dispatch/exchange.hpp"

namespace fcgimux::dispatch {

WorkerPool::WorkerPool(unsigned count, AdmissionQueue& queue, Handler& handler) {
  threads_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    threads_.emplace_back([&queue, &handler](std::stop_token stop) {
      while (Exchange* exchange = queue.pop(stop)) exchange->run(handler);
    });
  }
}

}  // namespace fcgimux::dispatch
