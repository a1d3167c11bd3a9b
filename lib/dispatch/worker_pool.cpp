// SPDX-License-Identifier: MIT
#include "dispatch/worker_pool.hpp"

#include <utility>

namespace fcgimux::dispatch {

namespace {

// The default pool, as the fields of Config describe it.
Pool default_pool(const Config& config, unsigned workers) {
  return Pool{.name = config.pool_name,
              .workers = workers,
              .max_requests = config.max_requests,
              .queue_timeout = config.queue_timeout,
              .request_timeout = config.request_timeout,
              .slow_request_threshold = config.slow_request_threshold};
}

unsigned total_workers(const Config& config, unsigned default_workers) noexcept {
  unsigned total = default_workers;
  for (const Pool& pool : config.pools) total += pool.workers;
  return total;
}

bool any_slow_log(const Config& config) noexcept {
  if (config.slow_request_threshold.count() > 0) return true;
  for (const Pool& pool : config.pools) {
    if (pool.slow_request_threshold.count() > 0) return true;
  }
  return false;
}

}  // namespace

SharedState::SharedState(const Config& config, unsigned default_workers, Handler& handler,
                         NoticeQueue::Wake wake, void* context, Figures figures)
    : logger(config.log_level, config.log),
      counters(figures.counters != nullptr ? *figures.counters : own_counters),
      notices(wake, context),
      // One buffer per worker: as many bodies as can be read at once. A stream holds at most
      // the body budget plus the record that crossed it; its string may have grown to twice
      // that.
      body_buffers(total_workers(config, default_workers),
                   2 * (config.request_body_budget + protocol::kMaxContentLength)),
      exchange_context{notices,
                       counters,
                       logger,
                       config.max_params_bytes,
                       config.request_body_budget,
                       config.access_log,
                       &body_buffers,
                       config.max_streams} {
  const bool detailed = !config.status_path.empty() || any_slow_log(config);
  const bool own_figures = !config.pools.empty();
  pools.reserve(1 + config.pools.size());
  const auto pool_figures = [&figures](std::size_t i) {
    return i < figures.pools.size() ? &figures.pools[i] : nullptr;
  };
  pools.push_back(std::make_unique<PoolState>(default_pool(config, default_workers), handler,
                                              counters, detailed, own_figures, pool_figures(0)));
  for (const Pool& pool : config.pools) {
    pools.push_back(std::make_unique<PoolState>(pool, handler, counters, detailed, own_figures,
                                                pool_figures(pools.size())));
  }
}

WorkerPool::WorkerPool(std::shared_ptr<SharedState> shared) : shared_(std::move(shared)) {
  for (const std::unique_ptr<PoolState>& pool : shared_->pools) {
    for (unsigned i = 0; i < pool->workers; ++i) seats_.push_back({pool.get(), i});
  }
  threads_.reserve(seats_.size());
  for (const Seat& seat : seats_) {
    // Each thread holds the shared state itself: it may outlive the pool (see abandon()).
    threads_.emplace_back([shared = shared_, seat](std::stop_token stop) {
      PoolState& pool = *seat.pool;
      pool.board.attach(seat.index);
      while (Exchange* exchange = pool.queue.pop(seat.index, stop)) {
        const observe::WorkerBoard::Shift shift(
            pool.board, seat.index,
            {exchange, exchange->connection_id(), exchange->id(), exchange->params()});
        exchange->run(pool.handler, &shared);
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
    if (!seats_[i].pool->board.busy(seats_[i].index) || !threads_[i].joinable()) continue;
    threads_[i].detach();
    ++detached;
  }
  return detached;
}

}  // namespace fcgimux::dispatch
