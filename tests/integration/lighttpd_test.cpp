// SPDX-License-Identifier: MIT
// Through a real lighttpd: mod_fastcgi in authorizer mode (FastCGI 1.0 §6.3) asks the authorizer
// example whether a request may have a static file, over a Unix socket, and serves the file or
// passes the 401 on. lighttpd runs in the foreground with a generated config whose every path is
// inside a temporary directory (docs/roles.md shows the same config).

#include <fmt/core.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "fcgi_client.hpp"
#include "temp_dir.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kLighttpd = "/usr/sbin/lighttpd";
constexpr std::string_view kSecret = "the lighttpd-protected file\n";

// The authorizer example on a Unix socket, and a lighttpd on a free loopback port that asks it
// about every request for a file under www/. Both are killed and reaped on destruction.
class LighttpdWithAuthorizer {
 public:
  LighttpdWithAuthorizer() : port_(free_port()) {
    const std::filesystem::path& dir = dir_.path();
    std::filesystem::create_directory(dir / "www");
    std::ofstream(dir / "www" / "secret.txt") << kSecret;
    std::ofstream(dir / "users") << "basic:alice:wonder land:1\nbearer:robot:t0ken-of-the-robot\n";
    authorizer_.emplace(std::vector<std::string>{FCGIMUX_AUTHORIZER_BINARY, "--users",
                                                 (dir / "users").string(), "--listen",
                                                 "unix:" + (dir / "authorizer.sock").string()});
    announced_address(*authorizer_);

    std::ofstream(dir / "lighttpd.conf") << fmt::format(
        R"(server.document-root = "{dir}/www"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.modules = ("mod_fastcgi")
fastcgi.server = ("/" => ((
  "socket" => "{dir}/authorizer.sock",
  "mode" => "authorizer",
  "docroot" => "{dir}/www",
  "check-local" => "disable"
)))
)",
        fmt::arg("dir", dir.string()), fmt::arg("port", port_));
    lighttpd_.emplace(std::vector<std::string>{std::string(kLighttpd), "-D", "-f",
                                               (dir / "lighttpd.conf").string()});
    wait_accepting(address(), "lighttpd");
  }

  std::string address() const { return fmt::format("tcp:127.0.0.1:{}", port_); }

  // lighttpd's error log so far, for failure messages.
  std::string error_log() const {
    std::ifstream in(dir_.path() / "error.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  HttpResponse get_secret(std::string_view authorization) const {
    std::string request = "GET /secret.txt HTTP/1.0\r\nHost: localhost\r\n";
    if (!authorization.empty()) request += fmt::format("Authorization: {}\r\n", authorization);
    return http_exchange(address(), request + "\r\n");
  }

  ChildProcess& authorizer() { return *authorizer_; }

 private:
  TempDir dir_;
  int port_;
  std::optional<ChildProcess> authorizer_;
  std::optional<ChildProcess> lighttpd_;  // last: killed before the authorizer
};

TEST_CASE("lighttpd serves a file once the authorizer example lets the request through",
          "[integration][lighttpd]") {
  if (!installed(kLighttpd, "lighttpd")) return;
  LighttpdWithAuthorizer peers;
  for (const std::string_view authorization :
       {"Basic YWxpY2U6d29uZGVyIGxhbmQ6MQ==", "Bearer t0ken-of-the-robot"}) {
    CAPTURE(authorization);
    const HttpResponse response = peers.get_secret(authorization);
    INFO("lighttpd error log:\n" << peers.error_log());
    CHECK(response.status == 200);
    CHECK(response.message.body == kSecret);
  }
  peers.authorizer().signal(SIGTERM);
  CHECK(peers.authorizer().wait() == 0);
}

TEST_CASE("lighttpd passes the authorizer example's 401 on to the client",
          "[integration][lighttpd]") {
  if (!installed(kLighttpd, "lighttpd")) return;
  LighttpdWithAuthorizer peers;
  for (const std::string_view authorization :
       {"", "Basic YWxpY2U6d29uZGVyIGxhbmQ6Mg==", "Bearer t0ken-of-the-robo"}) {
    CAPTURE(authorization);
    const HttpResponse response = peers.get_secret(authorization);
    INFO("lighttpd error log:\n" << peers.error_log());
    CHECK(response.status == 401);
    CHECK(response.message.header("WWW-Authenticate").value_or("").starts_with("Basic realm="));
    CHECK(response.message.body.find(kSecret) == std::string::npos);
  }
}

}  // namespace
}  // namespace fcgimux::test
