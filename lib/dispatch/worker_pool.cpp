// SPDX-License-Identifier: MIT
#include "dispatch/worker_pool.hpp"

#include <utility>

namespace fcgimux::dispatch {

SharedState::SharedState(const Config& config, unsigned workers, NoticeQueue::Wake wake,
                         void* context)
    : logger(config.log_level, config.log),
      notices(wake, context),
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
                       &body_buffers},
      board(!config.status_path.empty() || config.slow_request_threshold.count() > 0
                ? std::make_unique<WorkerBoard>(workers, counters)
                : nullptr),
      running(std::make_unique<Running[]>(workers)) {}

WorkerPool::WorkerPool(unsigned count, std::shared_ptr<SharedState> shared, Handler& handler)
    : shared_(std::move(shared)) {
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Each thread holds the shared state itself: it may outlive the pool (see abandon()).
    threads_.emplace_back([shared = shared_, &handler, i](std::stop_token stop) {
      WorkerBoard* const board = shared->board.get();
      if (board != nullptr) board->attach(static_cast<unsigned>(i));
      SharedState::Running& slot = shared->running[i];
      while (Exchange* exchange = shared->queue.pop(stop)) {
        slot.since.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                         std::memory_order_relaxed);
        slot.exchange.store(exchange, std::memory_order_release);
        {
          const WorkerBoard::Shift shift(board, static_cast<unsigned>(i), *exchange);
          exchange->run(handler);
        }
        slot.exchange.store(nullptr, std::memory_order_release);
      }
    });
  }
}

std::optional<WorkerPool::Worker> WorkerPool::running(
    const Exchange& exchange, std::chrono::steady_clock::time_point admitted_at) const {
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    const SharedState::Running& slot = shared_->running[i];
    if (slot.exchange.load(std::memory_order_acquire) != &exchange) continue;
    const std::chrono::steady_clock::time_point since{
        std::chrono::steady_clock::duration(slot.since.load(std::memory_order_relaxed))};
    // A slot not yet cleared may name an exchange freed since, whose address a later one
    // took (exchanges are also recycled): that one was admitted after the slot was set.
    if (since >= admitted_at) return Worker{i, since};
  }
  return std::nullopt;
}

std::size_t WorkerPool::abandon() noexcept {
  std::size_t detached = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    threads_[i].request_stop();
    // A worker whose slot is empty is waiting for the queue, or has just popped an exchange
    // that the server has stopped by now (run() then skips the handler): joining it is
    // bounded.
    if (shared_->running[i].exchange.load(std::memory_order_acquire) == nullptr ||
        !threads_[i].joinable()) {
      continue;
    }
    threads_[i].detach();
    ++detached;
  }
  return detached;
}

}  // namespace fcgimux::dispatch
