// SPDX-License-Identifier: MIT
// Every kind of listener serves requests: IPv4 (the other tests), IPv6 and Unix sockets; and an
// address that cannot be listened on is refused with a message that names the real problem.

#include <catch2/catch.hpp>
#include <fstream>
#include <optional>
#include <stdexcept>
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

TEST_CASE("a listen address that cannot be parsed is refused with what is wrong with it",
          "[integration]") {
  struct Case {
    std::string address;
    std::string message;
  };
  const std::string long_path = "/tmp/" + std::string(103, 'a');  // 108 bytes
  const Case c = GENERATE_COPY(
      Case{"tcp:localhost:9000",
           R"(Config::listen: "tcp:localhost:9000": the host "localhost" is a name, not an IP )"
           R"(address, and names are not resolved: write an IPv4 address (tcp:127.0.0.1:9000) or )"
           R"(an IPv6 one in brackets (tcp:[::1]:9000))"},
      Case{"tcp:::1:9000",
           R"(Config::listen: "tcp:::1:9000": an IPv6 address goes in brackets: tcp:[::1]:9000)"},
      Case{"tcp:[::1]", R"(Config::listen: "tcp:[::1]": tcp: wants a host and a port, e.g. )"
                        R"(tcp:127.0.0.1:9000)"},
      Case{"tcp:127.0.0.1:65536",
           R"(Config::listen: "tcp:127.0.0.1:65536": the port "65536" is not a number from 0 )"
           R"(to 65535 (0 picks a free one))"},
      Case{"unix:" + long_path,
           "Config::listen: \"unix:" + long_path +
               "\": the path is 108 bytes long, and a Unix socket's path holds at most 107: "
               "choose a shorter one (e.g. under /run)"},
      Case{"127.0.0.1:9000",
           R"(Config::listen: "127.0.0.1:9000": expected tcp:HOST:PORT, tcp:[V6]:PORT, )"
           R"(unix:PATH, fd:N or systemd)"});
  CAPTURE(c.address);
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {c.address};
  CHECK_THROWS_MATCHES(Server(config, handler), std::invalid_argument, Catch::Message(c.message));
}

TEST_CASE("a Unix socket path of 107 bytes, the most sun_path holds, is listened on",
          "[integration]") {
  const TempDir dir;
  std::string path = (dir.path() / "").string();
  path.append(107 - path.size(), 's');
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + path};
  TestServer server(handler, config);
  CHECK(server.endpoint() == "unix:" + path);
  check_serves(server.endpoint());
  server.stop();
}

TEST_CASE("binding a Unix socket in a missing directory says that the directory does not exist",
          "[integration]") {
  const TempDir dir;
  const std::string missing = (dir.path() / "missing").string();
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + missing + "/app.sock"};
  // libuv alone reports this as "permission denied".
  CHECK_THROWS_MATCHES(
      TestServer(handler, config), std::system_error,
      Catch::Message("the directory " + missing + " does not exist: cannot bind unix:" + missing +
                     "/app.sock: no such file or directory"));
}

TEST_CASE("binding a Unix socket under a file says that the file is not a directory",
          "[integration]") {
  const TempDir dir;
  const std::string file = (dir.path() / "file").string();
  std::ofstream(file) << "not a directory";
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + file + "/app.sock"};
  CHECK_THROWS_MATCHES(TestServer(handler, config), std::system_error,
                       Catch::Message(file + " is not a directory: cannot bind unix:" + file +
                                      "/app.sock: not a directory"));
}

}  // namespace
}  // namespace fcgimux::test
