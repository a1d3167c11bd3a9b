// SPDX-License-Identifier: MIT
// A zero-downtime restart (docs/restart.md): the new server binds the old one's port with
// Config::reuse_port while the old one still serves, then the old one stops and drains. Traffic
// driven all the while, on a new connection per request as web servers without keep-alive
// send it, must see no failure at all.
//
// As docs/restart.md deploys it, with net.ipv4.tcp_migrate_req=1 (scripts/dev test sets it when
// it can). Without it the kernel resets a connection that reaches the old listener between the
// drain's last accept and the listener's close: such resets are then reported, not failed.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bytes.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

// Whether the kernel hands connections queued on a closing SO_REUSEPORT listener to another
// listener of the group.
bool kernel_migrates_requests() {
  std::ifstream setting("/proc/sys/net/ipv4/tcp_migrate_req");
  int value = 0;
  return setting >> value && value == 1;
}

// Requests driven from several threads, each on a new connection, until stopped. Counts the
// requests answered correctly and keeps the first failures.
// Threading: Thread-safe.
class Traffic {
 public:
  Traffic(std::string endpoint, unsigned threads) : endpoint_(std::move(endpoint)) {
    for (unsigned i = 0; i < threads; ++i) {
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

  std::uint64_t completed() const {
    const std::lock_guard lock(mutex_);
    return completed_;
  }

  // Connections reset on connect or on the first send: what the kernel does to a connection
  // queued on a listener as it closes, when it does not migrate it.
  std::uint64_t resets() const {
    const std::lock_guard lock(mutex_);
    return resets_;
  }

  // The first failures, one line each (resets the kernel may make are counted by resets()).
  std::string failures() const {
    const std::lock_guard lock(mutex_);
    std::string lines;
    for (const std::string& failure : failures_) lines += failure + "\n";
    return lines;
  }

 private:
  void drive(std::stop_token stop, unsigned thread) {
    for (std::uint64_t n = 0; !stop.stop_requested(); ++n) {
      // Every 8th request sleeps a little, so that some are running when a server stops; every
      // 3rd carries a body.
      const Params params{{"QUERY_STRING", n % 8 == 0 ? "sleep_ms=20" : ""},
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
        } else if (tolerate_resets_ && is_reset(failure)) {
          ++resets_;
        } else if (failures_.size() < 10) {
          failures_.push_back(params[1].second + ": " + failure);
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
  const bool tolerate_resets_ = !kernel_migrates_requests();
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t completed_ = 0;        // Guarded by mutex_.
  std::uint64_t resets_ = 0;           // Guarded by mutex_.
  std::vector<std::string> failures_;  // Guarded by mutex_.
  std::vector<std::jthread> threads_;  // last: joined before the members they use go
};

TEST_CASE("a restart from one server to another on the same port loses no request",
          "[integration][restart]") {
  constexpr std::uint64_t kPerPhase = 300;
  echo::EchoHandler handler;
  LogCapture old_log;
  LogCapture new_log;
  Config config = test_config();
  config.reuse_port = true;
  config.log = old_log.sink();
  std::optional<TestServer> old_server;
  old_server.emplace(handler, config);
  const std::string endpoint = old_server->endpoint();

  Traffic traffic(endpoint, 4);
  REQUIRE(traffic.wait_for_more(kPerPhase));
  INFO("the old server alone served " << traffic.completed());

  // The new process: same port, both with SO_REUSEPORT, so the kernel spreads new connections
  // over the two listeners.
  config.listen = {endpoint};
  config.log = new_log.sink();
  TestServer new_server(handler, config);
  CHECK(traffic.wait_for_more(kPerPhase));

  // The old process stops: it closes its listener, finishes what it admitted, and exits.
  old_server->stop();
  CHECK(traffic.wait_for_more(kPerPhase));
  traffic.stop();

  INFO("failures:\n" << traffic.failures());
  CHECK(traffic.failures().empty());
  if (traffic.resets() > 0) {
    WARN(traffic.resets() << " connections reset as the old listener closed: this kernel has "
                             "net.ipv4.tcp_migrate_req=0 (docs/restart.md)");
  }
  const Stats old_stats = old_server->server().stats();
  const Stats new_stats = new_server.server().stats();
  CHECK(old_stats.requests_completed > 0);
  CHECK(new_stats.requests_completed > 0);
  CHECK(old_stats.requests_completed + new_stats.requests_completed == traffic.completed());
  new_server.stop();
}

}  // namespace
}  // namespace fcgimux::test
