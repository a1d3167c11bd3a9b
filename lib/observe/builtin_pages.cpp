// SPDX-License-Identifier: MIT
#include "observe/builtin_pages.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string_view>

#include "observe/access_log.hpp"
#include "observe/stack_trace.hpp"
#include "observe/status_page.hpp"

namespace fcgimux::observe {

namespace {

// php-fpm's headers for both pages: never cached.
constexpr std::string_view kNoCache =
    "Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    "Cache-Control: no-cache, no-store, must-revalidate, max-age=0\r\n";

}  // namespace

void BuiltinPages::check(const Config& config) {
  const auto check_path = [](const std::string& path, const char* name) {
    if (!path.empty() && path.front() != '/') {
      throw std::invalid_argument(std::string("Config::") + name + " must start with '/': " + path);
    }
  };
  check_path(config.status_path, "status_path");
  check_path(config.ping_path, "ping_path");
  if (!config.status_path.empty() && config.status_path == config.ping_path) {
    throw std::invalid_argument("Config::status_path and ping_path are the same");
  }
}

namespace {

bool any_slow_log(const std::vector<std::unique_ptr<dispatch::PoolState>>& pools) noexcept {
  return std::any_of(pools.begin(), pools.end(),
                     [](const auto& pool) { return pool->slow_request_threshold.count() > 0; });
}

}  // namespace

BuiltinPages::BuiltinPages(const Config& config, Counters& counters, const util::Logger& logger,
                           const std::vector<std::unique_ptr<dispatch::PoolState>>& pools,
                           const Scoreboard* scoreboard)
    : config_(config),
      counters_(counters),
      logger_(logger),
      started_(scoreboard != nullptr ? scoreboard->started() : std::chrono::system_clock::now()),
      pools_(pools),
      scoreboard_(scoreboard),
      stacks_(any_slow_log(pools) && enable_stack_traces()) {
  if (any_slow_log(pools) && !stacks_) {
    logger_.log(LogLevel::Warning,
                "slow requests are logged without their stacks: the program handles SIGURG");
  }
}

std::optional<std::string> BuiltinPages::answer(protocol::Role role,
                                                std::span<const protocol::NameValue> params,
                                                std::uint64_t connection_id,
                                                std::uint16_t request_id) {
  if (config_.status_path.empty() && config_.ping_path.empty()) return std::nullopt;
  if (role != protocol::Role::Responder) return std::nullopt;
  // php-fpm compares its paths with the request's SCRIPT_NAME, exactly.
  const std::string_view script_name = param(params, "SCRIPT_NAME");
  const bool status = !config_.status_path.empty() && script_name == config_.status_path;
  const bool ping = !config_.ping_path.empty() && script_name == config_.ping_path;
  if (!status && !ping) return std::nullopt;

  const auto begun = std::chrono::steady_clock::now();
  std::string response;
  std::size_t body_bytes = 0;
  const bool head = param(params, "REQUEST_METHOD") == "HEAD";
  if (ping) {
    response = "Status: 200 OK\r\nContent-Type: text/plain\r\n";
    response.append(kNoCache).append("\r\n");
    if (!head) response.append(config_.ping_response);
    body_bytes = head ? 0 : config_.ping_response.size();
  } else {
    response = status_page(params);
    body_bytes = head ? 0 : response.size() - (response.find("\r\n\r\n") + 4);
    if (head) response.resize(response.find("\r\n\r\n") + 4);
  }
  const int code = response.starts_with("Status: 200") ? 200 : 404;
  if (config_.access_log) {
    const std::string uri = request_uri(params);
    logger_.emit(LogLevel::Info,
                 access_line(AccessEntry{.method = param(params, "REQUEST_METHOD"),
                                         .uri = uri,
                                         .status = code,
                                         .bytes = body_bytes,
                                         .duration = std::chrono::steady_clock::now() - begun,
                                         .queue_wait = std::chrono::nanoseconds(0),
                                         .result = "ok",
                                         .reason = {},
                                         .connection_id = connection_id,
                                         .request_id = request_id,
                                         .pool = {}}));
  }
  return response;
}

Stats BuiltinPages::stats() const {
  if (scoreboard_ == nullptr) {
    Stats stats = counters_.snapshot();
    stats.pools.reserve(pools_.size());
    for (const auto& pool : pools_) stats.pools.push_back(pool->figures(stats));
    return stats;
  }
  std::vector<PoolStats> shapes;
  shapes.reserve(pools_.size());
  for (const auto& pool : pools_) {
    shapes.push_back(
        PoolStats{.name = pool->name, .workers = pool->workers, .max_requests = pool->max_requests});
  }
  return scoreboard_->stats(shapes, pools_.size() > 1);
}

std::string BuiltinPages::status_page(std::span<const protocol::NameValue> params) const {
  const Query query = parse_query(param(params, "QUERY_STRING"));
  const bool named_pools = pools_.size() > 1;
  Stats stats = this->stats();
  const std::vector<PoolStats> figures = std::move(stats.pools);
  stats.pools.clear();
  // The pools shown: every one, or the one asked for.
  std::size_t first = 0;
  std::size_t last = pools_.size();
  if (!query.pool.empty()) {
    const auto it = std::find_if(pools_.begin(), pools_.end(),
                                 [&](const auto& pool) { return pool->name == query.pool; });
    if (it == pools_.end()) {
      return "Status: 404 Not Found\r\nContent-Type: text/plain\r\n" + std::string(kNoCache) +
             "\r\nno pool " + query.pool + "\n";
    }
    first = static_cast<std::size_t>(it - pools_.begin());
    last = first + 1;
  }
  Snapshot snapshot{.pool = config_.pool_name,
                    .start_time = started_,
                    .now = std::chrono::system_clock::now(),
                    .stats = stats,
                    .workers = 0,
                    .queue_capacity = 0,
                    .worker = {},
                    .pools = {}};
  std::uint64_t capacity = 0;
  for (std::size_t i = first; i < last; ++i) {
    snapshot.workers += figures[i].workers;
    capacity += figures[i].max_requests;
  }
  if (scoreboard_ != nullptr) snapshot.processes = scoreboard_->processes();
  snapshot.queue_capacity = capacity > snapshot.workers ? capacity - snapshot.workers : 0;
  if (!query.pool.empty() && named_pools) {
    const PoolStats& pool = figures[first];
    snapshot.pool = pool.name;
    snapshot.stats.requests_admitted = pool.requests_admitted;
    snapshot.stats.requests_overloaded = pool.requests_overloaded;
    snapshot.stats.requests_running = pool.requests_running;
    snapshot.stats.requests_queued = pool.requests_queued;
    snapshot.stats.requests_running_max = pool.requests_running_max;
    snapshot.stats.requests_queued_max = pool.requests_queued_max;
    snapshot.stats.slow_requests = pool.slow_requests;
  }
  if (named_pools) {
    snapshot.pools.assign(figures.begin() + static_cast<std::ptrdiff_t>(first),
                          figures.begin() + static_cast<std::ptrdiff_t>(last));
  }
  if (query.full) {
    for (std::size_t i = first; i < last; ++i) {
      const WorkerBoard& board = pools_[i]->board;
      if (!board.detailed()) continue;
      for (WorkerSnapshot& worker : board.snapshot()) {
        worker.pool = pools_[i]->name;
        snapshot.worker.push_back(std::move(worker));
      }
    }
  }
  const Page page = render(snapshot, query);
  std::string response = "Status: 200 OK\r\nContent-Type: " + page.content_type + "\r\n";
  response.append(kNoCache).append("\r\n").append(page.body);
  return response;
}

void BuiltinPages::sweep() noexcept {
  try {
    for (const auto& pool : pools_) {
      if (pool->slow_request_threshold.count() > 0) sweep(*pool);
    }
  } catch (const std::exception&) {
    // Out of memory while copying the report: nothing to log it with either.
  }
}

void BuiltinPages::sweep(dispatch::PoolState& pool) {
  const std::vector<WorkerBoard::Slow> slow_ones = pool.board.take_slow(pool.slow_request_threshold);
  if (pool.own_figures) Counters::add(pool.counters.slow, slow_ones.size());
  for (const WorkerBoard::Slow& slow : slow_ones) {
    logger_.log(LogLevel::Warning, "conn {} req {}: slow: running for {} ms on worker {}{}: {} {}",
                slow.connection_id, slow.request_id, slow.running.count(), slow.worker,
                pool.own_figures ? " of pool " + pool.name : std::string(),
                logfmt_value(slow.method), logfmt_value(slow.uri));
    const auto now = std::chrono::steady_clock::now();
    if (!stacks_ || (last_stack_ && now - *last_stack_ < kStackInterval)) continue;
    last_stack_ = now;
    const std::vector<std::string> frames = stack_of(slow.thread, kStackWait);
    if (frames.empty()) {
      logger_.log(LogLevel::Warning, "conn {} req {}: no stack of worker {}: it did not answer",
                  slow.connection_id, slow.request_id, slow.worker);
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
      logger_.log(LogLevel::Warning, "conn {} req {}: stack of worker {}: #{} {}",
                  slow.connection_id, slow.request_id, slow.worker, i, frames[i]);
    }
  }
}

}  // namespace fcgimux::observe
