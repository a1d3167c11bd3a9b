// SPDX-License-Identifier: MIT
// sse: server-sent events (text/event-stream, HTML Living Standard §9.2), streamed with
// Response::flush(): each event reaches the client as soon as it is written, while the handler
// goes on.
//
//   GET /?count=N&interval_ms=M   N events (default 5, at most 100000), M milliseconds apart
//                                 (default 1000, at most 60000), each
//                                 "id: I\nevent: tick\ndata: I of N\n\n"; then the stream ends.
//
// The handler waits between events on the request's stop token, so it ends at once, without
// writing more, when the client goes away (the web server closes its connection or aborts the
// request) or the server's shutdown deadline passes. Each stream's end is reported on standard
// output: "sse: sent N of N events" or "sse: stopped after I of N events".
//
// Behind nginx, the "X-Accel-Buffering: no" header it sends turns off nginx's buffering of the
// response for this request, so events are not held back.
//
// Usage: sse [--listen ADDRESS]... (ADDRESS as for echo; by default the socket the process was
// started with). Serves until SIGINT or SIGTERM, then drains.

#include <fmt/core.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "fcgimux/fcgimux.hpp"

namespace http = fcgimux::http;

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

// Threading: Immutable after construction; safe to share.
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

    response.header("Content-Type", "text/event-stream");
    response.header("Cache-Control", "no-cache");
    response.header("X-Accel-Buffering", "no");
    response.flush();  // the client sees the stream open before the first event

    const std::stop_token stop = request.stop_token();
    std::mutex mutex;
    std::condition_variable_any never_notified;
    unsigned sent = 0;
    while (sent < *count && !stop.stop_requested()) {
      if (sent > 0) {
        std::unique_lock lock(mutex);
        never_notified.wait_for(lock, stop, std::chrono::milliseconds(*interval_ms),
                                [] { return false; });
        if (stop.stop_requested()) break;
      }
      ++sent;
      response.print("id: {0}\nevent: tick\ndata: {0} of {1}\n\n", sent, *count);
      response.flush();
    }
    if (sent == *count) {
      fmt::print("sse: sent {} of {} events\n", sent, *count);
    } else {
      fmt::print("sse: stopped after {} of {} events\n", sent, *count);
    }
    std::fflush(stdout);
  }
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
