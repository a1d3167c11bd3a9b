// SPDX-License-Identifier: MIT
#include "dispatch/worker_pool.hpp"

#include <utility>

namespace fcgimux::dispatch {

SharedState::SharedState(const Config& config, unsigned workers, NoticeQueue::Wake wake,
                         void* context)
    : logger(config.log_level, config.log),
      notices(wake, context),
      queue(workers),
      // One buffer per worker: as many bodies as can be read at once. A stream holds at most
      // the body budget plus the record that crossed it; its string may have grown to twice
      // that.
      body_buffers(workers, 2 * (config.request_body_budget + protocol::kMaxContentLength)),
      exchange_context{notices,
                       counters,
                       logger,
                       config.max_params_bytes,
                       config.request_body_budget,
                       config.queue_timeout,
                       config.access_log,
                       &body_buffers,
                       config.max_streams},
      board(workers, counters,
            !config.status_path.empty() || config.slow_request_threshold.count() > 0) {}

WorkerPool::WorkerPool(unsigned count, std::shared_ptr<SharedState> shared, Handler& handler)
    : shared_(std::move(shared)) {
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Each thread holds the shared state itself: it may outlive the pool (see abandon()).
    threads_.emplace_back([shared = shared_, &handler, i](std::stop_token stop) {
      const auto index = static_cast<unsigned>(i);
      shared->board.attach(index);
      while (Exchange* exchange = shared->queue.pop(index, stop)) {
        const observe::WorkerBoard::Shift shift(
            shared->board, index,
            {exchange, exchange->connection_id(), exchange->id(), exchange->params()});
        exchange->run(handler, &shared);
      }
    });
  }
}

std::size_t WorkerPool::abandon() noexcept {
  std::size_t detached = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    threads_[i].request_stop();
    // A worker whose slot is empty is waiting for the queue, or has just popped an exchange
    // that the server has stopped by now (run() then skips the handler): joining it is
    // bounded.
    if (!shared_->board.busy(static_cast<unsigned>(i)) || !threads_[i].joinable()) {
      continue;
    }
    threads_[i].detach();
    ++detached;
  }
  return detached;
}

}  // namespace fcgimux::dispatch
