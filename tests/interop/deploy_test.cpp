// SPDX-License-Identifier: MIT
// The ways docs/deploy.md starts the application, from the same templates: systemd's socket and
// service units, with one process and with several (checked by systemd-analyze verify, then run
// as systemd would with systemd-socket-activate), spawn-fcgi's command line, and lighttpd
// asking the authorizer example in its authorizer mode.

#include <fmt/core.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "interop.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kSystemdAnalyze = "/usr/bin/systemd-analyze";
constexpr std::string_view kSocketActivate = "/usr/bin/systemd-socket-activate";
constexpr std::string_view kSpawnFcgi = "/usr/bin/spawn-fcgi";
constexpr std::string_view kLighttpd = "/usr/sbin/lighttpd";

// The values of every "key=" line of a unit file, in order.
std::vector<std::string> unit_values(std::string_view unit, std::string_view key) {
  std::vector<std::string> values;
  std::istringstream lines{std::string(unit)};
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == '=') {
      values.push_back(line.substr(key.size() + 1));
    }
  }
  return values;
}

std::vector<std::string> words(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> all;
  for (std::string word; in >> word;) all.push_back(word);
  return all;
}

// One request over a new connection: the echo of its params.
void check_serves(const std::string& endpoint) {
  CAPTURE(endpoint);
  FcgiClient client(endpoint, kInteropTimeout);
  const Params params{{"QUERY_STRING", std::string(kQuery)}, {"SCRIPT_NAME", "/deployed"}};
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body ==
        fmt::format("QUERY_STRING={}\nSCRIPT_NAME=/deployed\n", kQuery));
}

// The values of the start-up templates: the echo example as the application.
Values app_values(int port) {
  return Values{{"fcgi_host", "127.0.0.1"},
                {"fcgi_port", std::to_string(port)},
                {"app", FCGIMUX_ECHO_BINARY},
                {"user", "nobody"},
                {"web_server_addrs", "127.0.0.1"}};
}

TEST_CASE("the systemd units pass systemd-analyze verify and socket-activate the application",
          "[interop][systemd]") {
  if (!installed(kSystemdAnalyze, "systemd") || !installed(kSocketActivate, "systemd")) return;
  // The service of one process, and the one of several processes under a supervisor; either
  // is installed as fcgimux.service, the service the socket unit starts.
  const std::string service =
      GENERATE(as<std::string>{}, "fcgimux.service", "fcgimux-processes.service");
  CAPTURE(service);
  const TempDir dir;
  const int port = free_port();
  const std::string socket_unit = filled_config("fcgimux.socket", app_values(port));
  const std::string service_unit = filled_config(service, app_values(port));
  std::ofstream(dir.path() / "fcgimux.socket") << socket_unit;
  std::ofstream(dir.path() / "fcgimux.service") << service_unit;
  {
    ChildProcess verify({"/bin/sh", "-c",
                         fmt::format("cd '{}' && exec {} verify ./fcgimux.socket ./fcgimux.service",
                                     dir.path().string(), kSystemdAnalyze)});
    std::string output;
    while (const auto line = verify.read_line()) output += *line + "\n";
    INFO("systemd-analyze verify:\n" << output);
    CHECK(verify.wait() == 0);
  }

  // What systemd would do with them: listen on ListenStream, and on the first connection start
  // ExecStart with the socket as LISTEN_FDS and the Environment lines set.
  const std::vector<std::string> listen = unit_values(socket_unit, "ListenStream");
  const std::vector<std::string> exec = unit_values(service_unit, "ExecStart");
  REQUIRE(listen.size() == 1);
  REQUIRE(exec.size() == 1);
  std::vector<std::string> argv{std::string(kSocketActivate), "-l", listen.front()};
  for (const std::string& environment : unit_values(service_unit, "Environment")) {
    argv.insert(argv.end(), {"-E", environment});
  }
  for (const std::string& word : words(exec.front())) argv.push_back(word);
  ChildProcess activated(argv, kInteropTimeout);
  // It says "Listening on ADDRESS as 3." once it listens.
  for (std::optional<std::string> line; (line = activated.read_line());) {
    if (line->starts_with("Listening on")) break;
  }
  const std::string endpoint = fmt::format("tcp:{}", listen.front());
  check_serves(endpoint);
  check_serves(endpoint);
  activated.signal(SIGTERM);
  CHECK(activated.wait() == 0);
}

TEST_CASE("spawn-fcgi starts the application as the deployment guide says",
          "[interop][spawn-fcgi]") {
  if (!installed(kSpawnFcgi, "spawn-fcgi")) return;
  const int port = free_port();
  // spawn-fcgi -n binds the socket, switches to the user, and execs the application with the
  // socket on descriptor 0.
  const std::vector<std::string> argv = words(filled_config("spawn-fcgi.sh", app_values(port)));
  REQUIRE(argv.front() == "spawn-fcgi");
  std::vector<std::string> command{std::string(kSpawnFcgi)};
  command.insert(command.end(), argv.begin() + 1, argv.end());
  ChildProcess echo(command, kInteropTimeout);
  const std::string endpoint = fmt::format("tcp:127.0.0.1:{}", port);
  CHECK(announced_address(echo) == endpoint);
  check_serves(endpoint);
  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

TEST_CASE("lighttpd in authorizer mode asks the authorizer example before it serves the file",
          "[interop][lighttpd]") {
  if (!installed(kLighttpd, "lighttpd")) return;
  Peer lighttpd;
  const std::filesystem::path& dir = lighttpd.dir();
  std::filesystem::create_directory(dir / "www");
  lighttpd.write("www/secret.txt", "behind the authorizer\n");
  lighttpd.write("users", "basic:alice:wonder land\n");
  const std::string socket = (dir / "authorizer.sock").string();
  ChildProcess authorizer({FCGIMUX_AUTHORIZER_BINARY, "--users", (dir / "users").string(),
                           "--listen", "unix:" + socket},
                          kInteropTimeout);
  announced_address(authorizer);

  const int port = free_port();
  lighttpd.write("site.conf", filled_config("lighttpd-authorizer.conf",
                                            Values{{"authorizer_socket", socket},
                                                   {"docroot", (dir / "www").string()}}));
  lighttpd.write("lighttpd.conf",
                 fmt::format(R"(server.document-root = "{dir}/www"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
include "{dir}/site.conf"
)",
                             fmt::arg("dir", dir.string()), fmt::arg("port", port)));
  lighttpd.start({std::string(kLighttpd), "-D", "-f", (dir / "lighttpd.conf").string()});
  lighttpd.wait_accepting(port);

  const std::string request = "GET /secret.txt HTTP/1.0\r\nHost: localhost\r\n";
  const HttpResponse allowed =
      fetch(lighttpd.http(), request + "Authorization: Basic YWxpY2U6d29uZGVyIGxhbmQ=\r\n\r\n");
  INFO("logs:\n" << lighttpd.logs());
  CHECK(allowed.status == 200);
  CHECK(allowed.message.body == "behind the authorizer\n");
  const HttpResponse denied = fetch(lighttpd.http(), request + "\r\n");
  CHECK(denied.status == 401);
  CHECK(denied.message.body.find("behind the authorizer") == std::string::npos);
}

}  // namespace
}  // namespace fcgimux::test
