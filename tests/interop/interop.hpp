// SPDX-License-Identifier: MIT
#pragma once

// The interop suite's tools: config templates filled with free ports and temporary paths (the
// same templates docs/deploy.md is generated from), a real client program running in a
// temporary directory, and the checks every client in front of the echo handler must pass.

#include <fmt/core.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bytes.hpp"
#include "child_process.hpp"
#include "echo_handler.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "socket.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {

using Values = std::map<std::string, std::string, std::less<>>;

// How long a step may make no progress: longer than kTimeout, since a web server, a Perl
// process and the server under a sanitizer share two loaded cores.
inline constexpr std::chrono::milliseconds kInteropTimeout{30'000};

// One HTTP/1.0 exchange (see http_exchange()) bounded by kInteropTimeout.
inline HttpResponse fetch(const std::string& endpoint, std::string_view request) {
  return http_exchange(endpoint, request, kInteropTimeout);
}

inline std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The template tests/interop/configs/`name` with every "{{key}}" replaced by values[key].
// Throws TestError when the template is missing or names a key `values` lacks.
inline std::string filled_config(std::string_view name, const Values& values) {
  const std::filesystem::path path = std::filesystem::path(FCGIMUX_INTEROP_CONFIGS) / name;
  if (!std::filesystem::exists(path)) throw TestError(fmt::format("no template {}", name));
  const std::string text = file_text(path);
  std::string filled;
  std::size_t from = 0;
  for (std::size_t open; (open = text.find("{{", from)) != std::string::npos;) {
    const std::size_t close = text.find("}}", open);
    if (close == std::string::npos) throw TestError(fmt::format("{}: an unclosed {{{{", name));
    const std::string_view key = std::string_view(text).substr(open + 2, close - open - 2);
    const auto value = values.find(key);
    if (value == values.end()) throw TestError(fmt::format("{}: no value for {}", name, key));
    filled.append(text, from, open - from).append(value->second);
    from = close + 2;
  }
  return filled.append(text, from);
}

// "127.0.0.1" and "40123" from "tcp:127.0.0.1:40123".
inline std::pair<std::string, std::string> host_and_port(std::string_view endpoint) {
  const std::size_t colon = endpoint.rfind(':');
  return {std::string(endpoint.substr(4, colon - 4)), std::string(endpoint.substr(colon + 1))};
}

// The values every web-server template takes: where the application listens (`fcgi`, an
// endpoint such as "tcp:127.0.0.1:40123") and where the web server listens (a free loopback
// port).
inline Values front_values(std::string_view fcgi, int http_port) {
  const auto [fcgi_host, fcgi_port] = host_and_port(fcgi);
  return Values{{"fcgi_host", fcgi_host},
                {"fcgi_port", fcgi_port},
                {"http_host", "127.0.0.1"},
                {"http_port", std::to_string(http_port)}};
}

// A real client program (a web server) in the foreground, its output going to a log file in
// its own temporary directory. On destruction it gets SIGTERM and a bounded wait, then SIGKILL.
// Threading: one thread at a time.
class Peer {
 public:
  Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (!process_) return;
    try {
      process_->signal(SIGTERM);
      process_->wait();
    } catch (const TestError&) {
      // ChildProcess's destructor kills it.
    }
  }

  const std::filesystem::path& dir() const { return dir_.path(); }
  void write(std::string_view file, std::string_view text) const {
    std::ofstream(dir_.path() / file, std::ios::binary) << text;
  }
  // Starts `argv` with `extra_environment` ("NAME=VALUE"), output to dir()/output.log.
  void start(const std::vector<std::string>& argv,
             const std::vector<std::string>& extra_environment = {}) {
    std::vector<std::string> command{"/usr/bin/env"};
    command.insert(command.end(), extra_environment.begin(), extra_environment.end());
    command.insert(command.end(),
                   {"/bin/sh", "-c", "exec \"$0\" \"$@\" >>\"$FCGIMUX_PEER_LOG\" 2>&1"});
    command.insert(command.end(), argv.begin(), argv.end());
    command.insert(command.begin() + 1,
                   "FCGIMUX_PEER_LOG=" + (dir_.path() / "output.log").string());
    process_.emplace(command, kInteropTimeout);
  }
  // Waits until the peer accepts on `http_port`; throws TestError with its logs if it does
  // not.
  void wait_accepting(int http_port) {
    http_ = fmt::format("tcp:127.0.0.1:{}", http_port);
    try {
      fcgimux::test::wait_accepting(http_, "the web server", kInteropTimeout);
    } catch (const TestError& error) {
      throw TestError(fmt::format("{}; its logs:\n{}", error.what(), logs()));
    }
  }
  // "tcp:127.0.0.1:PORT" where it serves HTTP.
  const std::string& http() const { return http_; }
  // Every *.log file in its directory, for failure messages.
  std::string logs() const {
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      if (entry.path().extension() == ".log") {
        all += fmt::format("--- {}\n{}", entry.path().filename().string(), file_text(entry));
      }
    }
    return all;
  }

 private:
  TempDir dir_;
  std::string http_;
  std::optional<ChildProcess> process_;
};

// `values` with where the web server listens: a free loopback port, returned in `port`.
inline Values with_http(Values values, int& port) {
  port = free_port();
  values["http_host"] = "127.0.0.1";
  values["http_port"] = std::to_string(port);
  return values;
}

inline constexpr std::string_view kNginx = "/usr/sbin/nginx";

// nginx (one worker, in the foreground) around the site template `site`, holding
// `worker_connections` connections at most (clients and upstream together).
inline void start_nginx(Peer& peer, std::string_view site, const Values& values,
                        int worker_connections = 1024) {
  int port = 0;
  const std::string dir = peer.dir().string();
  peer.write("site.conf", filled_config(site, with_http(values, port)));
  // Debian's fastcgi_params, next to the config as in /etc/nginx.
  peer.write("fastcgi_params", file_text("/etc/nginx/fastcgi_params"));
  // Every module compiled in wants its own temporary directory; nginx-light leaves some out.
  ChildProcess version({std::string(kNginx), "-V"});
  std::string build;
  while (const auto line = version.read_line()) build += *line;
  std::string temp_paths;
  for (const std::string_view module : {"proxy", "uwsgi", "scgi"}) {
    if (build.find(fmt::format("--without-http_{}_module", module)) == std::string::npos) {
      temp_paths += fmt::format("  {0}_temp_path {1}/{0};\n", module, dir);
    }
  }
  peer.write("nginx.conf", fmt::format(R"(daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {dir}/client_body;
  fastcgi_temp_path {dir}/fastcgi;
{temp_paths}  include {dir}/site.conf;
}}
)",
                                       fmt::arg("dir", dir), fmt::arg("temp_paths", temp_paths),
                                       fmt::arg("worker_connections", worker_connections)));
  peer.start({std::string(kNginx), "-p", dir, "-c", dir + "/nginx.conf"});
  peer.wait_accepting(port);
}

inline void start_nginx(Peer& peer, std::string_view site, const std::string& fcgi,
                        int worker_connections = 1024) {
  const auto [fcgi_host, fcgi_port] = host_and_port(fcgi);
  start_nginx(peer, site, Values{{"fcgi_host", fcgi_host}, {"fcgi_port", fcgi_port}},
              worker_connections);
}

// A Config for a server behind a real client: workers enough for the parallel checks.
inline Config interop_config() {
  Config config = test_config();
  config.workers = 32;
  return config;
}

// The echo handler's params listing, parsed.
inline std::multimap<std::string, std::string> parsed_listing(std::string_view listing) {
  std::multimap<std::string, std::string> params;
  while (!listing.empty()) {
    const std::string_view line = listing.substr(0, listing.find('\n'));
    listing.remove_prefix(std::min(listing.size(), line.size() + 1));
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) throw TestError("a listing line without '='");
    params.emplace(line.substr(0, equals), line.substr(equals + 1));
  }
  return params;
}

inline std::string http_get(std::string_view target) {
  return fmt::format("GET {} HTTP/1.0\r\nHost: localhost\r\nX-Interop: yes\r\n\r\n", target);
}

constexpr std::string_view kQuery = "alpha=1&beta=two%20three";

// GET /echo/path?kQuery: status 200, and the params the handler saw are `expected` (each
// name once, with that value; "*" stands for any value) and nothing else.
inline void check_get_params(const Peer& peer, const Values& expected) {
  const HttpResponse response = fetch(peer.http(), http_get(fmt::format("/echo/path?{}", kQuery)));
  INFO("logs:\n" << peer.logs());
  REQUIRE(response.status == 200);
  CHECK(response.message.header("Content-Type") == "text/plain");
  const auto params = parsed_listing(response.message.body);
  INFO("the params the handler saw:\n" << response.message.body);
  for (const auto& [name, value] : expected) {
    CAPTURE(name);
    CHECK(params.count(name) == 1);
    const auto found = params.find(name);
    if (found != params.end() && value != "*") CHECK(found->second == value);
  }
  for (const auto& [name, value] : params) {
    CAPTURE(name, value);
    CHECK(expected.contains(name));
  }
}

// A 1 MiB POST comes back intact.
inline void check_post(const std::string& http) {
  const std::string body = pattern(1024 * 1024, 11);
  const HttpResponse response = fetch(
      http, fmt::format("POST /echo/upload HTTP/1.0\r\nHost: localhost\r\n"
                        "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{}",
                        body.size(), body));
  REQUIRE(response.status == 200);
  CHECK(response.message.body.size() == body.size());
  CHECK(first_mismatch(response.message.body, body) == std::string::npos);
}

// A 64 MiB download arrives intact.
inline void check_download(const std::string& http) {
  constexpr std::size_t kSize = 64 * 1024 * 1024;
  const HttpResponse response = fetch(http, http_get(fmt::format("/echo?size={}", kSize)));
  REQUIRE(response.status == 200);
  CHECK(response.message.body.size() == kSize);
  CHECK(first_mismatch(response.message.body, std::string(kSize, 'x')) == std::string::npos);
}

// `count` requests one after the other; returns how many connections the server accepted for
// them.
inline std::uint64_t sequential_connections(const std::string& http, TestServer& server,
                                            int count) {
  const std::uint64_t before = server.server().stats().connections_accepted;
  for (int i = 0; i < count; ++i) {
    const HttpResponse response = fetch(http, http_get(fmt::format("/seq?i={}", i)));
    CHECK(response.status == 200);
    CHECK_THAT(response.message.body, Catch::Contains(fmt::format("QUERY_STRING=i={}\n", i)));
  }
  return server.server().stats().connections_accepted - before;
}

// `count` HTTP clients at once, each with its own query and a pause of `sleep_ms` in the
// handler so that they overlap; each must get its own answer. Returns how many connections
// the server accepted meanwhile.
inline std::uint64_t check_parallel(const Peer& peer, TestServer& server, int count, int sleep_ms) {
  const std::string& http = peer.http();
  const std::uint64_t before = server.server().stats().connections_accepted;
  std::vector<std::string> failures(static_cast<std::size_t>(count));
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < count; ++i) {
      clients.emplace_back([&, i] {
        const std::string query = fmt::format("client={}&sleep_ms={}", i, sleep_ms);
        auto& failure = failures[static_cast<std::size_t>(i)];
        try {
          const HttpResponse response = fetch(http, http_get("/parallel?" + query));
          if (response.status != 200) failure = fmt::format("status {}", response.status);
          if (response.message.body.find(fmt::format("QUERY_STRING={}\n", query)) ==
              std::string::npos) {
            failure += " wrong body: " + response.message.body.substr(0, 200);
          }
        } catch (const TestError& error) {
          failure = error.what();
        }
      });
    }
  }
  std::size_t failed = 0;
  std::string first;
  for (std::size_t i = 0; i < failures.size(); ++i) {
    if (!failures[i].empty() && failed++ == 0) first = fmt::format("client {}: {}", i, failures[i]);
  }
  INFO("the first failure: " << first << "\nlogs:\n" << (failed > 0 ? peer.logs() : ""));
  CHECK(failed == 0);
  return server.server().stats().connections_accepted - before;
}

// A client that goes away in the middle of a long download: the server cancels that request,
// counts it aborted, and serves the next one.
inline void check_abort(const std::string& http, TestServer& server) {
  REQUIRE(server.server().stats().requests_aborted == 0);
  {
    Socket socket = Socket::connect(http, kInteropTimeout);
    std::string received;
    socket.send_all(http_get("/echo?size=4294967296"), received);
    while (received.size() < 1024 * 1024 && socket.receive(received)) {
    }
    REQUIRE(received.substr(0, 12).ends_with(" 200"));
  }
  CHECK(eventually([&] { return server.server().stats().requests_aborted == 1; },
                   std::chrono::seconds(30)));
  const HttpResponse after = fetch(http, http_get("/after?abort"));
  CHECK(after.status == 200);
  CHECK_THAT(after.message.body, Catch::Contains("QUERY_STRING=abort\n"));
  CHECK(server.server().stats().requests_aborted == 1);
}

}  // namespace fcgimux::test
