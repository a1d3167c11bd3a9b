// SPDX-License-Identifier: MIT
#include "observe/builtin_pages.hpp"

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

BuiltinPages::BuiltinPages(const Config& config, Counters& counters, const util::Logger& logger,
                           unsigned workers, WorkerBoard& board)
    : config_(config),
      counters_(counters),
      logger_(logger),
      workers_(workers),
      started_(std::chrono::system_clock::now()),
      board_(board),
      stacks_(config.slow_request_threshold.count() > 0 && enable_stack_traces()) {
  if (config.slow_request_threshold.count() > 0 && !stacks_) {
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
  if (config_.access_log) {
    const std::string uri = request_uri(params);
    logger_.emit(LogLevel::Info,
                 access_line(AccessEntry{.method = param(params, "REQUEST_METHOD"),
                                         .uri = uri,
                                         .status = 200,
                                         .bytes = body_bytes,
                                         .duration = std::chrono::steady_clock::now() - begun,
                                         .queue_wait = std::chrono::nanoseconds(0),
                                         .result = "ok",
                                         .reason = {},
                                         .connection_id = connection_id,
                                         .request_id = request_id}));
  }
  return response;
}

std::string BuiltinPages::status_page(std::span<const protocol::NameValue> params) const {
  const Query query = parse_query(param(params, "QUERY_STRING"));
  Snapshot snapshot{
      .pool = config_.pool_name,
      .start_time = started_,
      .now = std::chrono::system_clock::now(),
      .stats = counters_.snapshot(),
      .workers = workers_,
      .queue_capacity = config_.max_requests > workers_ ? config_.max_requests - workers_ : 0,
      .worker = {}};
  if (query.full && board_.detailed()) snapshot.worker = board_.snapshot();
  const Page page = render(snapshot, query);
  std::string response = "Status: 200 OK\r\nContent-Type: " + page.content_type + "\r\n";
  response.append(kNoCache).append("\r\n").append(page.body);
  return response;
}

void BuiltinPages::sweep() noexcept {
  if (config_.slow_request_threshold.count() <= 0) return;
  try {
    for (const WorkerBoard::Slow& slow : board_.take_slow(config_.slow_request_threshold)) {
      logger_.log(LogLevel::Warning, "conn {} req {}: slow: running for {} ms on worker {}: {} {}",
                  slow.connection_id, slow.request_id, slow.running.count(), slow.worker,
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
  } catch (const std::exception&) {
    // Out of memory while copying the report: nothing to log it with either.
  }
}

}  // namespace fcgimux::observe
