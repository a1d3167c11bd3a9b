// SPDX-License-Identifier: MIT
#pragma once

// A real nginx in front of a FastCGI application, configured as docs/guide.md tells a user to:
// the Debian fastcgi_params, fastcgi_pass to an upstream with kept-alive connections. It runs in
// the foreground, every path inside a temporary directory, on a free loopback port.

#include <fmt/core.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "temp_dir.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {

inline constexpr std::string_view kNginxBinary = "/usr/sbin/nginx";
inline constexpr std::string_view kNginxFastcgiParams = "/etc/nginx/fastcgi_params";

// Killed and reaped on destruction.
// Threading: one thread at a time.
class NginxFrontend {
 public:
  // Passes every request to `upstream` ("tcp:HOST:PORT" or "unix:PATH") and accepts bodies up
  // to `client_max_body_size` (nginx syntax, e.g. "64m"), holding `worker_connections`
  // connections at most (clients and upstream together). Throws TestError when nginx does not
  // start listening.
  NginxFrontend(std::string_view upstream, std::string_view client_max_body_size,
                int worker_connections = 64)
      : port_(free_port()), worker_connections_(worker_connections) {
    std::filesystem::copy_file(kNginxFastcgiParams, dir_.path() / "fastcgi_params");
    const std::filesystem::path conf = dir_.path() / "nginx.conf";
    std::ofstream(conf) << config(upstream, client_max_body_size);
    process_.emplace(std::vector<std::string>{std::string(kNginxBinary), "-p", dir_.path().string(),
                                              "-c", conf.string()});
    try {
      wait_accepting(address(), "nginx");
    } catch (const TestError& error) {
      throw TestError(std::string(error.what()) + "; its error log:\n" + error_log());
    }
  }

  // Whether nginx and its fastcgi_params are installed (see installed()).
  static bool available() {
    return installed(kNginxBinary, "nginx-light") && installed(kNginxFastcgiParams, "nginx-light");
  }

  // Where it listens: "tcp:127.0.0.1:PORT".
  std::string address() const { return fmt::format("tcp:127.0.0.1:{}", port_); }

  // Its error log so far, for failure messages.
  std::string error_log() const {
    std::ifstream in(dir_.path() / "error.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string config(std::string_view upstream, std::string_view client_max_body_size) const {
    const std::string dir = dir_.path().string();
    // Every module compiled in wants its own temporary directory; nginx-light leaves some out.
    std::string temp_paths;
    ChildProcess version({std::string(kNginxBinary), "-V"});
    std::string build;
    while (const auto line = version.read_line()) build += *line;
    for (const std::string_view module : {"proxy", "uwsgi", "scgi"}) {
      if (build.find(fmt::format("--without-http_{}_module", module)) == std::string::npos) {
        temp_paths += fmt::format("  {0}_temp_path {1}/{0};\n", module, dir);
      }
    }
    // From "upstream fcgimux" on, this is the configuration docs/guide.md shows.
    return fmt::format(R"(daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {dir}/client_body;
  fastcgi_temp_path {dir}/fastcgi;
{temp_paths}
  upstream fcgimux {{
    server {upstream};
    keepalive 8;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size {client_max_body_size};
    location / {{
      include fastcgi_params;
      fastcgi_pass fcgimux;
      fastcgi_keep_conn on;
    }}
  }}
}}
)",
                       fmt::arg("dir", dir), fmt::arg("temp_paths", temp_paths),
                       fmt::arg("upstream", nginx_address(upstream)), fmt::arg("port", port_),
                       fmt::arg("client_max_body_size", client_max_body_size),
                       fmt::arg("worker_connections", worker_connections_));
  }

  // nginx spells "tcp:HOST:PORT" as "HOST:PORT" and "unix:PATH" as it is.
  static std::string_view nginx_address(std::string_view endpoint) {
    return endpoint.starts_with("tcp:") ? endpoint.substr(4) : endpoint;
  }

  TempDir dir_;
  int port_;
  int worker_connections_;
  std::optional<ChildProcess> process_;
};

}  // namespace fcgimux::test
