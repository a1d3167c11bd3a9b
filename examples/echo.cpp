// SPDX-License-Identifier: MIT
// echo: a FastCGI server that answers each request with its body or its params (the contract
// is in echo_handler.hpp). Serves until SIGINT or SIGTERM, then drains and exits 0.

#include <fmt/core.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "echo_handler.hpp"
#include "fcgimux/server.hpp"

constexpr std::string_view kUsage =
    "usage: echo [--listen ADDRESS]... [--workers N] [--status-path PATH] [--ping-path PATH]\n"
    "            [--slow-ms N] [--access-log] [--pool NAME:PREFIX:WORKERS[:MAX_REQUESTS]]...\n"
    "            [--processes N] [--max-requests-per-process N] [--max-rss-mb N]\n"
    "            [--crash-at-start]\n"
    "  ADDRESS is tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:PATH, fd:N or systemd; by default the\n"
    "  socket the process was started with (descriptor 0, systemd), else tcp:127.0.0.1:9000\n"
    "  --status-path PATH  answer the status page (php-fpm's pm.status_path) at SCRIPT_NAME PATH\n"
    "  --ping-path PATH    answer \"pong\" (php-fpm's ping.path) at SCRIPT_NAME PATH\n"
    "  --slow-ms N         log requests still running after N milliseconds\n"
    "  --access-log        log one line per request (to stderr)\n"
    "  --pool NAME:PREFIX:WORKERS[:MAX_REQUESTS]\n"
    "                      run requests whose SCRIPT_NAME starts with PREFIX (at a '/') on a\n"
    "                      pool of their own of WORKERS threads, admitting MAX_REQUESTS at most\n"
    "                      (default 64); repeatable, the first match wins\n"
    "  --processes N       serve from N processes, each with the workers above, under a\n"
    "                      supervisor that restarts a process that dies (SIGHUP: replace\n"
    "                      them one by one)\n"
    "  --max-requests-per-process N, --max-rss-mb N\n"
    "                      with --processes, replace a process past N requests or N MiB\n"
    "  --crash-at-start    with --processes, every process aborts as it starts (to watch the\n"
    "                      supervisor back off); a request with crash=segv or crash=abort in\n"
    "                      its query string crashes the process that runs it\n";

// Parses a decimal number into `out`; false when `value` is not one.
template <class Number>
bool parse_number(std::string_view value, Number& out) {
  const char* end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, out);
  return error == std::errc{} && stop == end;
}

// Parses NAME:PREFIX:WORKERS[:MAX_REQUESTS] into `pool`; false when `value` is not that.
bool parse_pool(std::string_view value, fcgimux::Pool& pool) {
  std::vector<std::string_view> fields;
  for (std::size_t colon; (colon = value.find(':')) != std::string_view::npos;) {
    fields.push_back(value.substr(0, colon));
    value.remove_prefix(colon + 1);
  }
  fields.push_back(value);
  if (fields.size() < 3 || fields.size() > 4) return false;
  pool.name = fields[0];
  pool.prefix = fields[1];
  return parse_number(fields[2], pool.workers) &&
         (fields.size() == 3 || parse_number(fields[3], pool.max_requests));
}

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}};
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--access-log") {
      config.access_log = true;
      continue;
    }
    if (flag == "--crash-at-start") {
      config.on_process_start = [](unsigned) { std::abort(); };
      continue;
    }
    if (flag == "--help") {
      fmt::print("{}", kUsage);
      return 0;
    }
    const std::string_view value = i + 1 < args.size() ? args[++i] : "";
    if (flag == "--listen" && !value.empty()) {
      config.listen.emplace_back(value);
    } else if (flag == "--status-path" && !value.empty()) {
      config.status_path = value;
    } else if (flag == "--ping-path" && !value.empty()) {
      config.ping_path = value;
    } else if (flag == "--workers" && !value.empty()) {
      if (!parse_number(value, config.workers)) {
        fmt::print(stderr, "echo: --workers wants a number, not '{}'\n", value);
        return 2;
      }
    } else if (flag == "--pool" && !value.empty()) {
      fcgimux::Pool pool;
      if (!parse_pool(value, pool)) {
        fmt::print(stderr, "echo: --pool wants NAME:PREFIX:WORKERS[:MAX_REQUESTS], not '{}'\n",
                   value);
        return 2;
      }
      config.pools.push_back(std::move(pool));
    } else if (flag == "--processes" && !value.empty()) {
      if (!parse_number(value, config.processes) || config.processes == 0) {
        fmt::print(stderr, "echo: --processes wants a number from 1, not '{}'\n", value);
        return 2;
      }
    } else if (flag == "--max-requests-per-process" && !value.empty()) {
      if (!parse_number(value, config.max_requests_per_process)) {
        fmt::print(stderr, "echo: --max-requests-per-process wants a number, not '{}'\n", value);
        return 2;
      }
    } else if (flag == "--max-rss-mb" && !value.empty()) {
      if (!parse_number(value, config.max_rss_per_process)) {
        fmt::print(stderr, "echo: --max-rss-mb wants a number, not '{}'\n", value);
        return 2;
      }
      config.max_rss_per_process *= 1024 * 1024;
    } else if (flag == "--slow-ms" && !value.empty()) {
      std::uint32_t ms = 0;
      if (!parse_number(value, ms)) {
        fmt::print(stderr, "echo: --slow-ms wants a number, not '{}'\n", value);
        return 2;
      }
      config.slow_request_threshold = std::chrono::milliseconds(ms);
    } else {
      fmt::print(stderr, "echo: bad argument '{}'\n{}", flag, kUsage);
      return 2;
    }
  }

  try {
    echo::EchoHandler handler;
    // Announced from run() itself: no thread of ours is alive when --processes forks.
    config.on_listening = [](const std::vector<std::string>& endpoints) {
      for (const auto& address : endpoints) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    };
    fcgimux::Server server(config, handler);
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "echo: {}\n", error.what());
    return 1;
  }
  return 0;
}
