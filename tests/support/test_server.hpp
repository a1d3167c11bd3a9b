// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fcgimux/server.hpp"
#include "socket.hpp"

namespace fcgimux::test {

// A Config for tests: an ephemeral loopback port, a few workers, no signal handling (the test
// runner owns the process's signals).
inline Config test_config() {
  return Config{.listen = {"tcp:127.0.0.1:0"}, .workers = 4, .handle_signals = false};
}

// A real Server running on its own thread for the life of this object.
// Threading: construct, stop() and destroy on one thread; server() as Server allows.
class TestServer {
 public:
  // Starts run() on a thread and waits until it has bound its listeners. Throws what run()
  // threw when it could not bind (std::system_error). `handler` must outlive this object.
  explicit TestServer(Handler& handler, Config config = test_config())
      : stop_bound_(config.shutdown_timeout + kTimeout), server_(std::move(config), handler) {
    std::promise<void> finished;
    finished_ = finished.get_future();
    thread_ = std::jthread([this, finished = std::move(finished)]() mutable {
      try {
        server_.run();
        finished.set_value();
      } catch (...) {
        finished.set_exception(std::current_exception());
      }
    });
    endpoints_ = server_.local_endpoints();
    if (endpoints_.empty()) {
      finished_.get();
      throw TestError("Server::run() bound nothing and threw nothing");
    }
  }

  // Stops the server unless stop() did; aborts the test program when run() does not return
  // within the shutdown timeout plus kTimeout, since joining it would hang.
  ~TestServer() {
    if (!finished_.valid()) return;
    server_.stop();
    if (finished_.wait_for(stop_bound_) != std::future_status::ready) {
      std::fputs("TestServer: Server::run() did not return after stop(); aborting\n", stderr);
      std::abort();
    }
    try {
      finished_.get();
    } catch (const std::exception& error) {
      fmt::print(stderr, "TestServer: Server::run() threw: {}\n", error.what());
    }
  }

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Stops the server and waits for run() to return. Throws TestError when it does not return
  // within the shutdown timeout plus kTimeout, and rethrows what run() threw.
  void stop() {
    server_.stop();
    if (finished_.wait_for(stop_bound_) != std::future_status::ready) {
      throw TestError("Server::run() did not return after stop()");
    }
    finished_.get();
  }

  // The first bound address, e.g. "tcp:127.0.0.1:40123".
  const std::string& endpoint() const { return endpoints_.front(); }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  Server& server() { return server_; }

 private:
  std::chrono::milliseconds stop_bound_;
  Server server_;
  std::future<void> finished_;
  std::vector<std::string> endpoints_;
  std::jthread thread_;  // last: joined before the members it uses are destroyed
};

}  // namespace fcgimux::test
