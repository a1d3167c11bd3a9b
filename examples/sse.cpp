// SPDX-License-Identifier: MIT
// sse: server-sent events (text/event-stream, HTML Living Standard §9.2) on detached responses:
// a handler checks the query, detaches its response (Response::detach()) and returns, so an
// open stream holds no worker; one publisher thread sends every stream its events.
//
//   GET /?count=N&interval_ms=M   N events (default 5, at most 100000), M milliseconds apart
//                                 (default 1000, at most 60000), each
//                                 "id: I\nevent: tick\ndata: I of N\n\n"; then the stream ends.
//
// The publisher is told (ResponseStream::on_stop()) when a client goes away (the web server
// closes its connection or aborts the request) or the server's shutdown deadline passes, and
// then drops that stream at once, without writing more. A client too slow to take an event
// (its connection's output budget is full) gets it when it has room again. Each stream's end
// is reported on standard output: "sse: sent N of N events" or "sse: stopped after I of N
// events".
//
// When the server begins to stop (SIGTERM, SIGINT), Config::on_drain tells the publisher, which
// sends each open stream a last event, "event: bye\ndata: server stopping\n\n", and ends it
// ("sse: ended after I of N events: server stopping"), so the stop does not wait for the
// shutdown deadline; a browser's EventSource then reconnects, to another process or to the
// server once it is back.
//
// Behind nginx, the "X-Accel-Buffering: no" header it sends turns off nginx's buffering of the
// response for this request, so events are not held back.
//
// Usage: sse [--listen ADDRESS]... (ADDRESS as for echo; by default the socket the process was
// started with). Serves until SIGINT or SIGTERM, then drains.

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "fcgimux/fcgimux.hpp"

namespace http = fcgimux::http;
using Clock = std::chrono::steady_clock;

// The number in form field `name`, when it is there, decimal and at most `max`; `fallback`
// when the field is absent; nothing when it is malformed or too large.
std::optional<unsigned> number_field(std::span<const http::FormField> fields, std::string_view name,
                                     unsigned fallback, unsigned max) {
  const std::optional<std::string_view> text = http::field(fields, name);
  if (!text) return fallback;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || error != std::errc{} || end != text->data() + text->size() || value > max) {
    return std::nullopt;
  }
  return value;
}

// One open stream and where it is in its count.
struct Subscriber {
  fcgimux::ResponseStream stream;
  unsigned count = 0;
  Clock::duration interval;
  unsigned sent = 0;
  Clock::time_point due;  // when the next event goes out
};

// The one thread that writes every stream's events.
// Threading: Thread-safe: add() from any thread (the workers), drain() from any thread (the
// server's I/O thread); the rest is its own thread's.
class Publisher {
 public:
  Publisher() : thread_([this](std::stop_token stop) { run(stop); }) {}
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void add(Subscriber subscriber) {
    // A stopped stream wakes the publisher, which then drops it. (The callback runs on the
    // server's I/O thread: it only wakes.)
    subscriber.stream.on_stop([this] { wake(); });
    {
      const std::lock_guard lock(mutex_);
      added_.push_back(std::move(subscriber));
    }
    wake();
  }

  // From now on every stream, open or added later, gets its last event and ends.
  void drain() {
    {
      const std::lock_guard lock(mutex_);
      draining_ = true;
    }
    wake();
  }

 private:
  void wake() {
    {
      const std::lock_guard lock(mutex_);
      woken_ = true;
    }
    woken_changed_.notify_one();
  }

  void run(const std::stop_token& stop) {
    std::vector<Subscriber> open;
    std::string event;
    Clock::time_point next = Clock::now();
    while (!stop.stop_requested()) {
      bool draining = false;
      {
        std::unique_lock lock(mutex_);
        woken_changed_.wait_until(lock, stop, next, [this] { return woken_; });
        woken_ = false;
        draining = draining_;
        for (Subscriber& added : added_) open.push_back(std::move(added));
        added_.clear();
      }
      // Streams are written and ended out of the lock: ending one waits for its stop callback
      // if it is running, and that callback takes the lock.
      next = Clock::now() + std::chrono::hours(1);
      const auto now = Clock::now();
      std::erase_if(open, [&](Subscriber& s) {
        if (draining && s.stream.open()) {
          event.clear();
          http::append_sse_event(event, {.data = "server stopping", .event = "bye"});
          s.stream.write(event);
          s.stream.end();
          fmt::print("sse: ended after {} of {} events: server stopping\n", s.sent, s.count);
          std::fflush(stdout);
          return true;
        }
        if (s.due <= now && s.stream.open()) {
          event.clear();
          const std::string id = std::to_string(s.sent + 1);
          const std::string data = fmt::format("{} of {}", s.sent + 1, s.count);
          http::append_sse_event(event, {.data = data, .event = "tick", .id = id});
          const auto written = s.stream.write(event);
          if (written == fcgimux::ResponseStream::Written::Queued) {
            ++s.sent;
            s.due = now + s.interval;
          } else if (written == fcgimux::ResponseStream::Written::WouldBlock) {
            s.due = now + std::chrono::milliseconds(10);  // try again once the client reads
          }
        }
        if (s.sent == s.count) {
          s.stream.end();
          fmt::print("sse: sent {} of {} events\n", s.sent, s.count);
        } else if (!s.stream.open()) {
          fmt::print("sse: stopped after {} of {} events\n", s.sent, s.count);
        } else {
          next = std::min(next, s.due);
          return false;
        }
        std::fflush(stdout);
        return true;  // dropped: a stream not ended yet ends here
      });
    }
  }

  std::mutex mutex_;
  std::condition_variable_any woken_changed_;
  std::vector<Subscriber> added_;  // Guarded by mutex_.
  bool woken_ = false;             // Guarded by mutex_.
  bool draining_ = false;          // Guarded by mutex_.
  std::jthread thread_;            // last: it starts once the rest is made, stops first
};

// Threading: Thread-safe (the publisher is).
class EventStream : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    std::vector<http::FormField> fields;
    const http::Error error = http::parse_form(http::query(request), fields);
    const auto count = number_field(fields, "count", 5, 100'000);
    const auto interval_ms = number_field(fields, "interval_ms", 1'000, 60'000);
    if (error != http::Error::None || !count || !interval_ms) {
      http::send_status(response, 400);
      return;
    }
    http::sse_headers(response);
    fcgimux::ResponseStream stream = response.detach();
    stream.flush();  // the client sees the stream open before the first event
    publisher_.add({.stream = std::move(stream),
                    .count = *count,
                    .interval = std::chrono::milliseconds(*interval_ms),
                    .due = Clock::now()});
  }

  void drain() { publisher_.drain(); }

 private:
  Publisher publisher_;
};

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}, .roles = {fcgimux::Role::Responder}};
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (std::string_view(args[i]) != "--listen" || i + 1 == args.size()) {
      fmt::print(stderr, "usage: sse [--listen ADDRESS]...\n");
      return 2;
    }
    config.listen.emplace_back(args[i + 1]);
  }
  try {
    EventStream handler;
    config.on_drain = [&handler] { handler.drain(); };
    fcgimux::Server server(config, handler);
    // local_endpoints() waits until run() has bound its listeners (empty if binding failed).
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "sse: {}\n", error.what());
    return 1;
  }
  return 0;
}
