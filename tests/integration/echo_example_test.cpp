// SPDX-License-Identifier: MIT
// The echo example program itself (FCGIMUX_ECHO_BINARY, built from examples/echo.cpp):
// it announces where it listens, serves, and exits 0 on SIGTERM; bad arguments fail it.

#include <signal.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"

namespace fcgimux::test {
namespace {

// Reads the child's output up to its "listening on ADDRESS" line and returns ADDRESS.
std::string listening_address(ChildProcess& echo) {
  constexpr std::string_view kPrefix = "listening on ";
  for (;;) {
    const std::optional<std::string> line = echo.read_line();
    if (!line) throw TestError("echo ended its output without a 'listening on' line");
    if (line->starts_with(kPrefix)) return line->substr(kPrefix.size());
  }
}

TEST_CASE("the echo example serves a request and exits 0 on SIGTERM", "[integration]") {
  ChildProcess echo({FCGIMUX_ECHO_BINARY, "--listen", "tcp:127.0.0.1:0", "--workers", "2"});
  const std::string address = listening_address(echo);
  CHECK(address.starts_with("tcp:127.0.0.1:"));

  FcgiClient client(address);
  const Params params{{"QUERY_STRING", ""}, {"SCRIPT_NAME", "/example"}};
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body == expected_listing(params));

  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

TEST_CASE("the echo example serves the status and ping pages and an access log when asked",
          "[integration][status]") {
  ChildProcess echo({FCGIMUX_ECHO_BINARY, "--listen", "tcp:127.0.0.1:0", "--workers", "2",
                     "--status-path", "/fpm-status", "--ping-path", "/fpm-ping", "--access-log",
                     "--slow-ms", "1000"});
  const std::string address = listening_address(echo);

  FcgiClient client(address);
  const Response pong = client.request({{"SCRIPT_NAME", "/fpm-ping"}, {"REQUEST_METHOD", "GET"}});
  REQUIRE(pong.end.has_value());
  CHECK(parse_cgi_response(pong.out).body == "pong");
  const Response status = client.request(
      {{"SCRIPT_NAME", "/fpm-status"}, {"QUERY_STRING", "json"}, {"REQUEST_METHOD", "GET"}});
  REQUIRE(status.end.has_value());
  CHECK_THAT(parse_cgi_response(status.out).body, Catch::Contains("\"total processes\":2,"));

  // The access log goes to stderr, which the test reads with stdout.
  std::vector<std::string> access;
  while (access.size() < 2) {
    const std::optional<std::string> line = echo.read_line();
    REQUIRE(line.has_value());
    if (line->find(" access ") != std::string::npos) access.push_back(*line);
  }
  CHECK_THAT(access[0], Catch::Contains("method=GET uri=/fpm-ping status=200 bytes=4 "));
  CHECK_THAT(access[1], Catch::Contains("uri=/fpm-status?json status=200 "));
  // The default sink's timestamp is the line's only time: "2026-12-02T11:17:03.394Z info access
  // method=...".
  for (const std::string& line : access) {
    CAPTURE(line);
    CHECK(line.find(" info access method=") == 24);
    CHECK(line.find('Z') == 23);
    CHECK(line.find("time=") == std::string::npos);
    CHECK(line.find(line.substr(0, 10), 1) == std::string::npos);  // the date, once
  }

  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

TEST_CASE("the echo example runs a route on a pool of its own with --pool", "[integration][pools]") {
  ChildProcess echo({FCGIMUX_ECHO_BINARY, "--listen", "tcp:127.0.0.1:0", "--workers", "2",
                     "--status-path", "/status", "--pool", "slow:/slow:3:5", "--pool",
                     "upload:/upload:1"});
  const std::string address = listening_address(echo);

  FcgiClient client(address);
  for (const char* path : {"/slow", "/slow/x", "/upload", "/other"}) {
    const Response response = client.request({{"SCRIPT_NAME", path}, {"QUERY_STRING", "size=1"}});
    REQUIRE(response.end.has_value());
    CHECK(parse_cgi_response(response.out).body == "x");
  }
  const Response status = client.request(
      {{"SCRIPT_NAME", "/status"}, {"QUERY_STRING", "json&pool=slow"}, {"REQUEST_METHOD", "GET"}});
  REQUIRE(status.end.has_value());
  const std::string body = parse_cgi_response(status.out).body;
  CHECK_THAT(body, Catch::Contains("\"pool\":\"slow\","));
  CHECK_THAT(body, Catch::Contains("\"accepted conn\":2,"));
  CHECK_THAT(body, Catch::Contains("\"listen queue len\":2,"));
  CHECK_THAT(body, Catch::Contains("\"total processes\":3,"));

  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

TEST_CASE("the echo example fails with a message on bad arguments", "[integration]") {
  const std::vector<std::string> arguments = GENERATE(
      std::vector<std::string>{"--bogus"}, std::vector<std::string>{"--listen"},
      std::vector<std::string>{"--workers", "many"}, std::vector<std::string>{"--slow-ms", "soon"},
      std::vector<std::string>{"--status-path", "status"},
      std::vector<std::string>{"--pool", "slow:/slow"},
      std::vector<std::string>{"--pool", "slow:/slow:two"},
      std::vector<std::string>{"--pool", "slow:slow:2"},
      std::vector<std::string>{"--listen", "nonsense:1"},
      std::vector<std::string>{"--listen", "unix:/nonexistent-fcgimux-dir/echo.sock"});
  CAPTURE(arguments);
  std::vector<std::string> argv{FCGIMUX_ECHO_BINARY};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  ChildProcess echo(argv);

  std::string output;
  while (const std::optional<std::string> line = echo.read_line()) output += *line + "\n";
  CAPTURE(output);
  CHECK_THAT(output, Catch::Contains("echo: "));
  CHECK(echo.wait() != 0);
}

}  // namespace
}  // namespace fcgimux::test
