// SPDX-License-Identifier: MIT
// The echo contract (examples/echo_handler.hpp) served by fcgimux, for bench/run: the same
// program as examples/echo plus the limits a load scenario needs to set. Every limit it does
// not set keeps the library's default (include/fcgimux/config.hpp).
//
// Usage: fcgimux_bench_echo_server --listen tcp:HOST:PORT [--workers N] [--max-requests N]
//                                  [--max-connections N]

#include <fmt/core.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <span>
#include <string_view>
#include <thread>

#include "echo_handler.hpp"
#include "fcgimux/server.hpp"

namespace {

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size() && out > 0;
}

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
    } else if (flag == "--max-requests") {
      ok = ok && parse_number(value, config.max_requests);
    } else if (flag == "--max-connections") {
      ok = ok && parse_number(value, config.max_connections);
    } else {
      ok = false;
    }
    if (!ok) {
      fmt::print(stderr, "echo_server: bad argument '{}' '{}'\n", flag, value);
      return 2;
    }
  }
  try {
    echo::EchoHandler handler;
    fcgimux::Server server(config, handler);
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "echo_server: {}\n", error.what());
    return 1;
  }
  return 0;
}
