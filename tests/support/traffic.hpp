// SPDX-License-Identifier: MIT
#pragma once

// Steady traffic against the echo handler (examples/echo_handler.hpp) while a test restarts,
// recycles or stops what serves it: every request on a new connection, as web servers without
// keep-alive send them, each answer checked byte for byte.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bytes.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"

namespace fcgimux::test {

struct TrafficShape {
  unsigned threads = 4;
  // Every sleep_every-th request of a thread sleeps 20 ms in the handler, so that some are
  // running when a server stops. 0: none sleeps.
  unsigned sleep_every = 8;
  // Connections reset on connect or on the first send are counted by resets() instead of
  // failing: what the kernel does to a connection queued on a closing SO_REUSEPORT listener
  // when it does not migrate it (net.ipv4.tcp_migrate_req=0).
  bool tolerate_resets = false;
};

// Requests driven from several threads, each on a new connection, until stopped. Counts the
// requests answered correctly and keeps the first failures. Every 3rd request carries a body.
// Threading: Thread-safe.
class Traffic {
 public:
  Traffic(std::string endpoint, TrafficShape shape)
      : endpoint_(std::move(endpoint)), shape_(shape) {
    for (unsigned i = 0; i < shape_.threads; ++i) {
      threads_.emplace_back([this, i](std::stop_token stop) { drive(stop, i); });
    }
  }

  // Waits until `count` more requests than now have completed. False when they do not within
  // kTimeout, or when a request failed.
  bool wait_for_more(std::uint64_t count) {
    std::unique_lock lock(mutex_);
    const std::uint64_t target = completed_ + count;
    return changed_.wait_for(lock, kTimeout, [&] { return completed_ >= target; }) &&
           failures_.empty();
  }

  // Stops driving and waits for the requests in flight.
  void stop() {
    for (std::jthread& thread : threads_) thread.request_stop();
    threads_.clear();
  }

  // Requests answered correctly.
  std::uint64_t completed() const {
    const std::lock_guard lock(mutex_);
    return completed_;
  }

  // Requests that failed (resets tolerated aside).
  std::uint64_t failed() const {
    const std::lock_guard lock(mutex_);
    return failed_;
  }

  // Connections reset on connect or on the first send, when the shape tolerates them.
  std::uint64_t resets() const {
    const std::lock_guard lock(mutex_);
    return resets_;
  }

  // The first failures, one line each.
  std::string failures() const {
    const std::lock_guard lock(mutex_);
    std::string lines;
    for (const std::string& failure : failures_) lines += failure + "\n";
    return lines;
  }

 private:
  void drive(std::stop_token stop, unsigned thread) {
    for (std::uint64_t n = 0; !stop.stop_requested(); ++n) {
      const bool sleeps = shape_.sleep_every != 0 && n % shape_.sleep_every == 0;
      const Params params{{"QUERY_STRING", sleeps ? "sleep_ms=20" : ""},
                          {"REQUEST", std::to_string(thread) + "/" + std::to_string(n)}};
      const std::string body =
          n % 3 == 0 ? pattern(1000 + n % 5000, static_cast<std::uint32_t>(n)) : "";
      std::string failure;
      try {
        FcgiClient client(endpoint_);
        RequestOptions options;
        options.keep_conn = false;
        const Response response = client.request(params, body, options);
        const std::string expected = body.empty() ? expected_listing(params) : body;
        if (!response.end ||
            response.end->protocol_status != protocol::ProtocolStatus::RequestComplete) {
          failure = "no FCGI_REQUEST_COMPLETE";
        } else if (const CgiResponse cgi = parse_cgi_response(response.out);
                   cgi.status != 200 || cgi.body != expected) {
          failure = "status " + std::to_string(cgi.status) + ", body of " +
                    std::to_string(cgi.body.size()) + " bytes";
        }
      } catch (const TestError& error) {
        failure = error.what();
      }
      {
        const std::lock_guard lock(mutex_);
        if (failure.empty()) {
          ++completed_;
        } else if (shape_.tolerate_resets && is_reset(failure)) {
          ++resets_;
        } else {
          ++failed_;
          if (failures_.size() < 10) failures_.push_back(params[1].second + ": " + failure);
        }
      }
      changed_.notify_all();
    }
  }

  static bool is_reset(const std::string& failure) {
    return failure.find("Connection reset by peer") != std::string::npos &&
           (failure.starts_with("connect") || failure.starts_with("send"));
  }

  const std::string endpoint_;
  const TrafficShape shape_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t completed_ = 0;        // Guarded by mutex_.
  std::uint64_t failed_ = 0;           // Guarded by mutex_.
  std::uint64_t resets_ = 0;           // Guarded by mutex_.
  std::vector<std::string> failures_;  // Guarded by mutex_.
  std::vector<std::jthread> threads_;  // last: joined before the members they use go
};

}  // namespace fcgimux::test
