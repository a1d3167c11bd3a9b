// SPDX-License-Identifier: MIT
// filter: a FastCGI Filter (FastCGI 1.0 §6.4). The web server sends the request, then the file
// the client asked for as the FCGI_DATA stream; the filter answers with that file's lines
// numbered, as `cat -n` prints them. It streams: it holds one read's worth of the file at a
// time, whatever the file's size. FCGI_DATA_LAST_MOD becomes the Last-Modified header, and a
// file shorter than FCGI_DATA_LENGTH announced ends with a line saying so (§6.4 asks a Filter
// to show that data is missing).
// Usage: filter [--listen ADDRESS]... (ADDRESS as for echo; by default the socket the process
// was started with). Serves until SIGINT or SIGTERM, then drains.

#include <fmt/core.h>
#include <time.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "fcgimux/fcgimux.hpp"

std::optional<std::uint64_t> number_param(const fcgimux::Request& request, std::string_view name) {
  const std::string_view text = request.param(name).value_or("");
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Threading: Immutable after construction; safe to share.
class LineNumbers : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    std::array<char, 16 * 1024> chunk;
    // §6.4: a Filter reads all of FCGI_STDIN before it writes; this one has no use for it.
    while (request.read(chunk) > 0) {
    }
    response.header("Content-Type", "text/plain; charset=utf-8");
    if (const auto modified = number_param(request, "FCGI_DATA_LAST_MOD")) {
      const auto seconds = static_cast<time_t>(*modified);
      std::tm utc{};
      std::array<char, 64> date{};
      if (gmtime_r(&seconds, &utc) != nullptr &&
          std::strftime(date.data(), date.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc) > 0) {
        response.header("Last-Modified", date.data());
      }
    }
    const auto data = std::as_writable_bytes(std::span(chunk));
    std::uint64_t line = 0;
    std::uint64_t received = 0;
    bool at_line_start = true;
    std::string out;
    for (std::size_t n; (n = request.read_data(data)) > 0; received += n) {
      out.clear();
      for (const char c : std::string_view(chunk.data(), n)) {
        if (at_line_start) fmt::format_to(std::back_inserter(out), "{:6}\t", ++line);
        out += c;
        at_line_start = c == '\n';
      }
      response.write(out);
    }
    const auto announced = number_param(request, "FCGI_DATA_LENGTH");
    if (announced && received < *announced) {
      response.print("{}filter: the file ended after {} of {} bytes\n", at_line_start ? "" : "\n",
                     received, *announced);
      response.log_error(fmt::format("FCGI_DATA ended after {} of {} bytes", received, *announced));
      response.app_status(1);
    }
  }
};

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}, .roles = {fcgimux::Role::Filter}};
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (std::string_view(args[i]) != "--listen" || i + 1 == args.size()) {
      fmt::print(stderr, "usage: filter [--listen ADDRESS]...\n");
      return 2;
    }
    config.listen.emplace_back(args[i + 1]);
  }
  try {
    LineNumbers handler;
    fcgimux::Server server(config, handler);
    // local_endpoints() waits until run() has bound its listeners (empty if binding failed).
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "filter: {}\n", error.what());
    return 1;
  }
  return 0;
}
