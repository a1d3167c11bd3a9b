// SPDX-License-Identifier: MIT
// Every kind of listener serves requests: IPv4 (the other tests), IPv6 and Unix sockets.

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <system_error>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

// Sends one request to `endpoint` and checks the echo of its params.
void check_serves(const std::string& endpoint) {
  CAPTURE(endpoint);
  FcgiClient client(endpoint);
  const Params params{{"QUERY_STRING", ""}, {"SERVER_ADDR", endpoint}};
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

TEST_CASE("an IPv6 loopback listener serves a request", "[integration]") {
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"tcp:[::1]:0"};
  std::optional<TestServer> server;
  try {
    server.emplace(handler, config);
  } catch (const std::system_error& error) {
    WARN("skipped: cannot listen on [::1] here: " << error.what());
    return;
  }
  CHECK(server->endpoint().starts_with("tcp:[::1]:"));
  check_serves(server->endpoint());
  server->stop();
}

TEST_CASE("a Unix socket listener and a TCP listener serve requests side by side",
          "[integration]") {
  const TempDir dir;
  const std::string path = (dir.path() / "echo.sock").string();
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + path, "tcp:127.0.0.1:0"};
  TestServer server(handler, config);

  REQUIRE(server.endpoints().size() == 2);
  CHECK(server.endpoints()[0] == "unix:" + path);
  CHECK(server.endpoints()[1].starts_with("tcp:127.0.0.1:"));
  check_serves(server.endpoints()[0]);
  check_serves(server.endpoints()[1]);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
