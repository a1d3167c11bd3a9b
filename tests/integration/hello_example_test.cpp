// SPDX-License-Identifier: MIT
// The hello example (FCGIMUX_HELLO_BINARY, built from examples/hello.cpp), and with it
// fcgimux::serve(): it says where it listens and serves; when it cannot listen it says why and
// exits 1, rather than dying of an uncaught exception.

#include <signal.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "child_process.hpp"
#include "echo_handler.hpp"
#include "fcgi_client.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

TEST_CASE("hello says where it listens, answers there, and exits 0 on SIGTERM", "[integration]") {
  ChildProcess hello({FCGIMUX_HELLO_BINARY, "tcp:127.0.0.1:0"});
  const std::optional<std::string> line = hello.read_line();
  REQUIRE(line.has_value());
  constexpr std::string_view kPrefix = "hello: listening on tcp:127.0.0.1:";
  REQUIRE(line->starts_with(kPrefix));
  const std::string address = line->substr(std::string_view("hello: listening on ").size());

  FcgiClient client(address);
  const Response response = client.request({{"REMOTE_ADDR", "192.0.2.7"}});
  REQUIRE(response.end.has_value());
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body == "Hello from fcgimux, 192.0.2.7!\n");

  hello.signal(SIGTERM);
  CHECK(hello.wait() == 0);
}

TEST_CASE("hello on a port another server holds says so and exits 1", "[integration]") {
  echo::EchoHandler handler;
  TestServer holder(handler);
  ChildProcess hello({FCGIMUX_HELLO_BINARY, holder.endpoint()});
  CHECK(hello.read_line() == "hello: bind " + holder.endpoint() + ": address already in use");
  CHECK(hello.read_line() == std::nullopt);
  CHECK(hello.wait() == 1);
  holder.stop();
}

TEST_CASE("hello given an address it cannot parse says why and exits 1", "[integration]") {
  ChildProcess hello({FCGIMUX_HELLO_BINARY, "tcp:localhost:9000"});
  const std::optional<std::string> line = hello.read_line();
  REQUIRE(line.has_value());
  CHECK(line->starts_with(R"(hello: Config::listen: "tcp:localhost:9000": the host "localhost")"));
  CHECK(hello.wait() == 1);
}

}  // namespace
}  // namespace fcgimux::test
