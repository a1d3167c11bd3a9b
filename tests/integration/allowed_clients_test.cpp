// SPDX-License-Identifier: MIT
// FastCGI 1.0 §3.2: with a list of web server addresses in force (Config::allowed_clients, or
// the environment variable FCGI_WEB_SERVER_ADDRS), a connection from any other address,
// "including the possibility that the connection didn't use TCP/IP", is closed at once.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

constexpr const char* kVariable = "FCGI_WEB_SERVER_ADDRS";

// Sets an environment variable for the life of this object, then restores what was there.
// The server reads FCGI_WEB_SERVER_ADDRS when it is constructed.
// Threading: construct and destroy on the test's thread while no server is being constructed.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = ::getenv(name)) saved_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    if (saved_) {
      ::setenv(name_, saved_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

// Where the list of allowed addresses comes from in a test.
enum class ListIn { Config, Environment };

// A test Config listening on `listen`, with `addresses` in force from `source`, logging to
// `log`: the refusals these tests provoke are warnings.
Config config_allowing(const std::string& listen, const std::vector<std::string>& addresses,
                       ListIn source, LogCapture& log) {
  Config config = test_config();
  config.listen = {listen};
  if (source == ListIn::Config) config.allowed_clients = addresses;
  config.log = log.sink();
  return config;
}

std::optional<std::string> environment_value(const std::vector<std::string>& addresses,
                                             ListIn source) {
  if (source == ListIn::Config) return std::nullopt;
  std::string joined;
  for (const std::string& address : addresses) joined += (joined.empty() ? "" : ", ") + address;
  return joined;
}

// Checks that a connection to `endpoint` is closed before anything is sent: the read sees the
// end of the stream, not a response.
void check_refused(TestServer& server, LogCapture& log) {
  const std::uint64_t refused_before = server.server().stats().connections_refused;
  FcgiClient client(server.endpoint());
  CHECK_FALSE(client.read_record().has_value());
  CHECK(eventually(
      [&] { return server.server().stats().connections_refused == refused_before + 1; }));
  CHECK(log.contains(LogLevel::Warning, "not in the allowed clients"));
}

void check_served(TestServer& server) {
  FcgiClient client(server.endpoint());
  const Params params{{"QUERY_STRING", ""}, {"REMOTE_ADDR", "127.0.0.1"}};
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
  CHECK(server.server().stats().connections_refused == 0);
}

TEST_CASE("a TCP connection from an address not in the list is closed at once and counted",
          "[integration][allowed-clients]") {
  const ListIn source = GENERATE(ListIn::Config, ListIn::Environment);
  CAPTURE(source);
  const std::vector<std::string> addresses{"127.0.0.2", "::1"};
  const ScopedEnvironment environment(kVariable, environment_value(addresses, source));
  echo::EchoHandler handler;
  LogCapture log;
  TestServer server(handler, config_allowing("tcp:127.0.0.1:0", addresses, source, log));
  check_refused(server, log);
  check_refused(server, log);
  CHECK(server.server().stats().requests_admitted == 0);
  server.stop();
}

TEST_CASE("a TCP connection from an address in the list is served",
          "[integration][allowed-clients]") {
  const ListIn source = GENERATE(ListIn::Config, ListIn::Environment);
  CAPTURE(source);
  const std::vector<std::string> addresses{"127.0.0.2", "127.0.0.1"};
  const ScopedEnvironment environment(kVariable, environment_value(addresses, source));
  echo::EchoHandler handler;
  LogCapture log;
  TestServer server(handler, config_allowing("tcp:127.0.0.1:0", addresses, source, log));
  check_served(server);
  server.stop();
}

TEST_CASE("Config::allowed_clients takes precedence over FCGI_WEB_SERVER_ADDRS",
          "[integration][allowed-clients]") {
  const ScopedEnvironment environment(kVariable, "127.0.0.2");
  echo::EchoHandler handler;
  LogCapture log;
  TestServer server(handler,
                    config_allowing("tcp:127.0.0.1:0", {"127.0.0.1"}, ListIn::Config, log));
  check_served(server);
  server.stop();
}

TEST_CASE("an IPv6 connection is judged by its IPv6 address", "[integration][allowed-clients]") {
  const auto [addresses, allowed] =
      GENERATE(table<std::vector<std::string>, bool>({{{"::1"}, true},
                                                      {{"0:0:0:0:0:0:0:1"}, true},
                                                      {{"127.0.0.1"}, false},
                                                      {{"::2", "127.0.0.1"}, false}}));
  CAPTURE(addresses, allowed);
  const ScopedEnvironment environment(kVariable, std::nullopt);
  echo::EchoHandler handler;
  LogCapture log;
  std::optional<TestServer> server;
  try {
    server.emplace(handler, config_allowing("tcp:[::1]:0", addresses, ListIn::Config, log));
  } catch (const std::system_error& error) {
    WARN("skipped: cannot listen on [::1] here: " << error.what());
    return;
  }
  if (allowed) {
    check_served(*server);
  } else {
    check_refused(*server, log);
  }
  server->stop();
}

TEST_CASE("a Unix socket connection is refused while a list is in force",
          "[integration][allowed-clients]") {
  const ListIn source = GENERATE(ListIn::Config, ListIn::Environment);
  CAPTURE(source);
  const std::vector<std::string> addresses{"127.0.0.1", "::1"};
  const ScopedEnvironment environment(kVariable, environment_value(addresses, source));
  const TempDir dir;
  echo::EchoHandler handler;
  LogCapture log;
  TestServer server(handler, config_allowing("unix:" + (dir.path() / "app.sock").string(),
                                             addresses, source, log));
  check_refused(server, log);
  server.stop();
}

TEST_CASE("an entry that is not an IP address is refused when the Server is constructed",
          "[integration][allowed-clients]") {
  const std::string entry = GENERATE(as<std::string>{}, "localhost", "127.0.0.1/8", "127.0.0.256",
                                     "[::1]", "127.0.0.1:9000");
  CAPTURE(entry);
  const ListIn source = GENERATE(ListIn::Config, ListIn::Environment);
  CAPTURE(source);
  const std::vector<std::string> addresses{"127.0.0.1", entry};
  const ScopedEnvironment environment(kVariable, environment_value(addresses, source));
  echo::EchoHandler handler;
  LogCapture log;
  CHECK_THROWS_AS(Server(config_allowing("tcp:127.0.0.1:0", addresses, source, log), handler),
                  std::invalid_argument);
}

}  // namespace
}  // namespace fcgimux::test
