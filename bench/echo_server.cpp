// SPDX-License-Identifier: MIT
// The echo contract (examples/echo_handler.hpp) served by fcgimux, for bench/run: the same
// program as examples/echo plus the limits a load scenario needs to set. Every limit it does
// not set keeps the library's default (include/fcgimux/config.hpp).
//
// A request with "stream=1" in its query (bench/run's streams scenario) is not echoed: its
// response is detached (text/event-stream) and gets one event a second, from one publisher
// thread for all streams, until its client leaves.
//
// Usage: fcgimux_bench_echo_server --listen tcp:HOST:PORT [--workers N] [--processes N]
//                                  [--max-requests N] [--max-connections N] [--max-streams N]
// --processes N serves from N processes of --workers threads each (Config::processes); the
// limits are each process's.

#include <fmt/core.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "echo_handler.hpp"
#include "fcgimux/fcgimux.hpp"

namespace {

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size() && out > 0;
}

// Writes event N to every open stream in second N, from its own thread, which the first add()
// starts: with --processes, a thread started before Server::run() forks would exist in the
// supervisor alone, so each serving process starts its own.
// Threading: Thread-safe: add() from any thread (the workers); the rest is its own thread's.
class Publisher {
 public:
  Publisher() = default;
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void add(fcgimux::ResponseStream stream) {
    const std::lock_guard lock(mutex_);
    if (!thread_.joinable()) {
      thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
    }
    added_.push_back(std::move(stream));
  }

 private:
  void run(const std::stop_token& stop) {
    std::vector<fcgimux::ResponseStream> open;
    std::string event;
    auto next = std::chrono::steady_clock::now();
    for (std::uint64_t number = 1; !stop.stop_requested(); ++number) {
      {
        std::unique_lock lock(mutex_);
        // Nothing notifies: this only sleeps until the next second, or the stop.
        tick_.wait_until(lock, stop, next, [] { return false; });
        for (fcgimux::ResponseStream& stream : added_) open.push_back(std::move(stream));
        added_.clear();
      }
      next += std::chrono::seconds(1);
      event.clear();
      const std::string id = std::to_string(number);
      fcgimux::http::append_sse_event(event, {.data = id, .event = "tick", .id = id});
      // A stream whose client left answers Closed and is dropped; one whose client is not
      // reading (WouldBlock) misses this event.
      std::erase_if(open, [&](fcgimux::ResponseStream& stream) {
        return stream.write(event) == fcgimux::ResponseStream::Written::Closed;
      });
    }
  }

  std::mutex mutex_;
  std::condition_variable_any tick_;
  std::vector<fcgimux::ResponseStream> added_;  // Guarded by mutex_.
  std::jthread thread_;  // Guarded by mutex_ until it starts. Last: it stops first
};

// The echo contract, and streams for "stream=1".
// Threading: Thread-safe.
class EchoOrStream : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    if (echo::query_number(request.param("QUERY_STRING").value_or(""), "stream") != 1) {
      echo_.handle(request, response);
      return;
    }
    fcgimux::http::sse_headers(response);
    fcgimux::ResponseStream stream = response.detach();
    stream.flush();  // the client sees the stream open before the first event
    publisher_.add(std::move(stream));
  }

 private:
  echo::EchoHandler echo_;
  Publisher publisher_;
};

}  // namespace

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}};
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i < args.size(); i += 2) {
    const std::string_view flag = args[i];
    const std::string_view value = i + 1 < args.size() ? args[i + 1] : "";
    bool ok = !value.empty();
    if (flag == "--listen") {
      config.listen.emplace_back(value);
    } else if (flag == "--workers") {
      ok = ok && parse_number(value, config.workers);
    } else if (flag == "--processes") {
      ok = ok && parse_number(value, config.processes);
    } else if (flag == "--max-requests") {
      ok = ok && parse_number(value, config.max_requests);
    } else if (flag == "--max-connections") {
      ok = ok && parse_number(value, config.max_connections);
    } else if (flag == "--max-streams") {
      ok = ok && parse_number(value, config.max_streams);
    } else {
      ok = false;
    }
    if (!ok) {
      fmt::print(stderr, "echo_server: bad argument '{}' '{}'\n", flag, value);
      return 2;
    }
  }
  try {
    EchoOrStream handler;
    // Announced from run() itself: no thread of ours is alive when --processes forks.
    config.on_listening = [](const std::vector<std::string>& endpoints) {
      for (const auto& address : endpoints) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    };
    fcgimux::Server server(config, handler);
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "echo_server: {}\n", error.what());
    return 1;
  }
  return 0;
}
