// SPDX-License-Identifier: MIT
// Through a real nginx: fastcgi_pass to the Server over a kept-alive upstream connection, the
// way most deployments will run it. nginx runs in the foreground with a generated config whose
// every path is inside a temporary directory.

#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "bytes.hpp"
#include "child_process.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "lambda_handler.hpp"
#include "socket.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kNginx = "/usr/sbin/nginx";

// Whether nginx is installed. In CI (CI=true) its absence fails the test, since the set-up
// script installs it; elsewhere the test is skipped with a warning.
bool nginx_available() {
  if (std::filesystem::exists(kNginx)) return true;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string_view(ci) == "true") {
    FAIL(kNginx << " is missing: scripts/dev installs it (Debian package nginx-light or nginx)");
  }
  WARN("skipped: " << kNginx << " is missing (install nginx-light or nginx)");
  return false;
}

// A loopback port that was free a moment ago.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), size) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  ::close(fd);
  if (!bound) throw TestError("cannot find a free loopback port");
  return ntohs(address.sin_port);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An nginx in the foreground that passes every request to `upstream` ("tcp:HOST:PORT") over
// FastCGI, keeping up to 8 upstream connections alive. Killed and reaped on destruction.
class Nginx {
 public:
  explicit Nginx(std::string_view upstream) : port_(free_port()) {
    const std::filesystem::path conf = dir_.path() / "nginx.conf";
    std::ofstream(conf) << config(upstream);
    process_.emplace(std::vector<std::string>{std::string(kNginx), "-p", dir_.path().string(), "-c",
                                              conf.string()});
    wait_ready();
  }

  std::string address() const { return fmt::format("tcp:127.0.0.1:{}", port_); }

  // nginx's error log so far, for failure messages.
  std::string error_log() const { return read_file(dir_.path() / "error.log"); }

 private:
  std::string config(std::string_view upstream) const {
    const std::string dir = dir_.path().string();
    // Every module compiled in wants its own temporary directory; nginx-light leaves some out.
    std::string temp_paths;
    ChildProcess version({std::string(kNginx), "-V"});
    std::string build;
    while (const auto line = version.read_line()) build += *line;
    for (const std::string_view module : {"proxy", "uwsgi", "scgi"}) {
      if (build.find(fmt::format("--without-http_{}_module", module)) == std::string::npos) {
        temp_paths += fmt::format("  {0}_temp_path {1}/{0};\n", module, dir);
      }
    }
    return fmt::format(R"(daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/client_body;
  fastcgi_temp_path {dir}/fastcgi;
{temp_paths}  client_max_body_size 4m;
  upstream fcgimux {{
    server {upstream};
    keepalive 8;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      fastcgi_pass fcgimux;
      fastcgi_keep_conn on;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
    }}
  }}
}}
)",
                       fmt::arg("dir", dir), fmt::arg("temp_paths", temp_paths),
                       fmt::arg("upstream", upstream.substr(upstream.find(':') + 1)),
                       fmt::arg("port", port_));
  }

  // Polls connect() until nginx accepts, within kTimeout.
  void wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    for (;;) {
      try {
        Socket::connect(address());
        return;
      } catch (const TestError&) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw TestError("nginx did not start listening; its error log:\n" + error_log());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  TempDir dir_;
  int port_;
  std::optional<ChildProcess> process_;
};

struct HttpResponse {
  int status = 0;
  CgiResponse message;  // headers and body; its status field is unused
};

// Sends `request` over a new connection and reads the response up to the close (HTTP/1.0).
HttpResponse http_exchange(const std::string& address, std::string_view request) {
  Socket socket = Socket::connect(address);
  std::string received;
  socket.send_all(request, received);
  while (socket.receive(received)) {
  }
  const std::size_t line_end = received.find("\r\n");
  if (!received.starts_with("HTTP/1.") || line_end == std::string::npos || line_end < 12) {
    throw TestError("not an HTTP response: " + received.substr(0, 200));
  }
  HttpResponse response;
  response.status = std::stoi(received.substr(9, 3));
  response.message = parse_cgi_response(std::string_view(received).substr(line_end + 2));
  return response;
}

TEST_CASE("nginx passes GET requests with a query string through to the handler",
          "[integration][nginx]") {
  if (!nginx_available()) return;
  echo::EchoHandler handler;
  TestServer server(handler);
  const Nginx nginx(server.endpoint());

  const std::string expected = expected_listing({{"CONTENT_LENGTH", ""},
                                                 {"CONTENT_TYPE", ""},
                                                 {"GATEWAY_INTERFACE", "CGI/1.1"},
                                                 {"HTTP_HOST", "localhost"},
                                                 {"QUERY_STRING", "alpha=1&beta=two"},
                                                 {"REQUEST_METHOD", "GET"},
                                                 {"REQUEST_URI", "/echo?alpha=1&beta=two"},
                                                 {"SCRIPT_NAME", "/echo"},
                                                 {"SERVER_PROTOCOL", "HTTP/1.0"}});
  // Three in a row, so that nginx reuses its kept-alive upstream connection.
  for (int i = 0; i < 3; ++i) {
    const HttpResponse response = http_exchange(
        nginx.address(), "GET /echo?alpha=1&beta=two HTTP/1.0\r\nHost: localhost\r\n\r\n");
    INFO("nginx error log:\n" << nginx.error_log());
    REQUIRE(response.status == 200);
    CHECK(response.message.header("Content-Type") == "text/plain");
    CHECK(response.message.body == expected);
  }
  CHECK(server.server().stats().connections_accepted == 1);
  server.stop();
}

TEST_CASE("nginx passes a 1 MiB POST body through intact", "[integration][nginx]") {
  if (!nginx_available()) return;
  echo::EchoHandler handler;
  TestServer server(handler);
  const Nginx nginx(server.endpoint());

  const std::string body = pattern(1024 * 1024, 7);
  const HttpResponse response = http_exchange(
      nginx.address(),
      fmt::format("POST /upload HTTP/1.0\r\nHost: localhost\r\n"
                  "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{}",
                  body.size(), body));
  INFO("nginx error log:\n" << nginx.error_log());
  REQUIRE(response.status == 200);
  CHECK(response.message.body.size() == body.size());
  CHECK(first_mismatch(response.message.body, body) == std::string::npos);
  server.stop();
}

TEST_CASE("nginx reaches the status and ping pages while the only worker is busy",
          "[integration][nginx][status]") {
  if (!nginx_available()) return;
  Gate gate;
  echo::EchoHandler echo;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("SCRIPT_NAME") == "/busy") {
      gate.pass(request.stop_token());
      response.write("done");
      return;
    }
    echo.handle(request, response);
  });
  Config config = test_config();
  config.workers = 1;
  config.status_path = "/status";
  config.ping_path = "/ping";
  TestServer server(handler, config);
  const Nginx nginx(server.endpoint());

  auto busy = std::async(std::launch::async, [&] {
    return http_exchange(nginx.address(), "GET /busy HTTP/1.0\r\nHost: localhost\r\n\r\n");
  });
  REQUIRE(gate.wait_arrivals(1));
  INFO("nginx error log:\n" << nginx.error_log());

  const HttpResponse status =
      http_exchange(nginx.address(), "GET /status?json&full HTTP/1.0\r\nHost: localhost\r\n\r\n");
  REQUIRE(status.status == 200);
  CHECK(status.message.header("Content-Type") == "application/json");
  CHECK_THAT(status.message.body, Catch::Contains("\"active processes\":1,"));
  CHECK_THAT(status.message.body, Catch::Contains("\"idle processes\":0,"));
  CHECK_THAT(status.message.body, Catch::Contains("\"request uri\":\"/busy\""));

  const HttpResponse ping =
      http_exchange(nginx.address(), "GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n");
  CHECK(ping.status == 200);
  CHECK(ping.message.body == "pong");

  gate.open();
  const HttpResponse done = busy.get();
  CHECK(done.status == 200);
  CHECK(done.message.body == "done");
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
