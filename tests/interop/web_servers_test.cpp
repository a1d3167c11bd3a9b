// SPDX-License-Identifier: MIT
// Real web servers in front of the echo handler, each run from the config template that
// docs/deploy.md shows (tests/interop/configs/), on free loopback ports: nginx with and without
// a keepalive pool, HAProxy's fcgi-app multiplexing, lighttpd, Apache httpd's mod_proxy_fcgi,
// Caddy. Only the lines a test harness needs (pid and log files in a temporary directory, the
// loopback port) are added around each template here.

#include <fmt/core.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "interop.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kHaproxy = "/usr/sbin/haproxy";
constexpr std::string_view kLighttpd = "/usr/sbin/lighttpd";
constexpr std::string_view kApache = "/usr/sbin/apache2";
constexpr std::string_view kApacheModules = "/usr/lib/apache2/modules";
constexpr std::string_view kCaddy = "/usr/bin/caddy";

// Where two application servers listen, as the scale-out templates name them.
Values two_apps(const std::string& app1, const std::string& app2) {
  const auto [app1_host, app1_port] = host_and_port(app1);
  const auto [app2_host, app2_port] = host_and_port(app2);
  return Values{{"app1_host", app1_host},
                {"app1_port", app1_port},
                {"app2_host", app2_host},
                {"app2_port", app2_port}};
}

// HAProxy around the template `config`, with its runtime API on dir()/admin.sock.
void start_haproxy(Peer& peer, std::string_view config, const Values& values) {
  int port = 0;
  peer.write("global.cfg",
             fmt::format("global\n    maxconn 1000\n    log stderr format raw local0 info\n"
                         "    stats socket {}/admin.sock level admin\n",
                         peer.dir().string()));
  peer.write("haproxy.cfg", filled_config(config, with_http(values, port)));
  peer.start({std::string(kHaproxy), "-db", "-f", (peer.dir() / "global.cfg").string(), "-f",
              (peer.dir() / "haproxy.cfg").string()});
  peer.wait_accepting(port);
}

void start_haproxy(Peer& peer, const std::string& fcgi) {
  const auto [fcgi_host, fcgi_port] = host_and_port(fcgi);
  start_haproxy(peer, "haproxy.cfg", Values{{"fcgi_host", fcgi_host}, {"fcgi_port", fcgi_port}});
}

void start_lighttpd(Peer& peer, const std::string& fcgi) {
  const int port = free_port();
  const std::string dir = peer.dir().string();
  peer.write("site.conf", filled_config("lighttpd.conf", front_values(fcgi, port)));
  peer.write("lighttpd.conf", fmt::format(R"(server.document-root = "{dir}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.upload-dirs = ("{dir}")
include "{dir}/site.conf"
)",
                                          fmt::arg("dir", dir), fmt::arg("port", port)));
  peer.start({std::string(kLighttpd), "-D", "-f", dir + "/lighttpd.conf"});
  peer.wait_accepting(port);
}

void start_apache(Peer& peer, const std::string& fcgi) {
  const int port = free_port();
  const std::string dir = peer.dir().string();
  // httpd's children run as User and must reach the directory.
  std::filesystem::permissions(
      peer.dir(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                      std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                      std::filesystem::perms::others_exec);
  peer.write("site.conf", filled_config("apache.conf", front_values(fcgi, port)));
  peer.write("httpd.conf", fmt::format(R"(ServerRoot "{dir}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {dir}/httpd.pid
DefaultRuntimeDir {dir}
Mutex file:{dir} default
ErrorLog {dir}/error.log
LogLevel warn
User nobody
Group nogroup
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_fcgi_module {modules}/mod_proxy_fcgi.so
ServerLimit 1
StartServers 1
ThreadLimit 128
ThreadsPerChild 128
MaxRequestWorkers 128
Include {dir}/site.conf
)",
                                       fmt::arg("dir", dir), fmt::arg("port", port),
                                       fmt::arg("modules", kApacheModules)));
  peer.start({std::string(kApache), "-DFOREGROUND", "-f", dir + "/httpd.conf"});
  peer.wait_accepting(port);
}

void start_caddy(Peer& peer, const std::string& fcgi) {
  const int port = free_port();
  const std::string dir = peer.dir().string();
  peer.write("site.caddy", filled_config("Caddyfile", front_values(fcgi, port)));
  peer.write("Caddyfile", fmt::format(R"({{
	admin off
	auto_https off
	grace_period 1s
	storage file_system {dir}/storage
}}
import {dir}/site.caddy
)",
                                      fmt::arg("dir", dir)));
  peer.start({std::string(kCaddy), "run", "--config", dir + "/Caddyfile", "--adapter", "caddyfile"},
             {"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir});
  peer.wait_accepting(port);
}

// The GET, the params, the POST and the download, then `count` requests in a row; returns the
// connections the server accepted in all.
std::uint64_t check_basics(const Peer& peer, TestServer& server, const Values& params) {
  check_get_params(peer, params);
  INFO("logs:\n" << peer.logs());
  check_post(peer.http());
  check_download(peer.http());
  sequential_connections(peer.http(), server, 5);
  return server.server().stats().connections_accepted;
}

// --- nginx ---------------------------------------------------------------------------------------

// What nginx sends with Debian's fastcgi_params.
const Values kNginxParams{{"CONTENT_LENGTH", ""},
                          {"CONTENT_TYPE", ""},
                          {"DOCUMENT_ROOT", "*"},
                          {"DOCUMENT_URI", "/echo/path"},
                          {"GATEWAY_INTERFACE", "CGI/1.1"},
                          {"HTTP_HOST", "localhost"},
                          {"HTTP_X_INTEROP", "yes"},
                          {"QUERY_STRING", std::string(kQuery)},
                          {"REDIRECT_STATUS", "200"},
                          {"REMOTE_ADDR", "127.0.0.1"},
                          {"REMOTE_PORT", "*"},
                          {"REMOTE_USER", ""},
                          {"REQUEST_METHOD", "GET"},
                          {"REQUEST_SCHEME", "http"},
                          {"REQUEST_URI", "/echo/path?" + std::string(kQuery)},
                          {"SCRIPT_NAME", "/echo/path"},
                          {"SERVER_ADDR", "127.0.0.1"},
                          {"SERVER_NAME", ""},
                          {"SERVER_PORT", "*"},
                          {"SERVER_PROTOCOL", "HTTP/1.0"},
                          {"SERVER_SOFTWARE", "*"}};

TEST_CASE(
    "nginx keepalive pool: params plus a 1 MiB POST and a 64 MiB download over one connection",
    "[interop][nginx]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-keepalive.conf", server.endpoint());
  CHECK(check_basics(nginx, server, kNginxParams) == 1);
  server.stop();
}

TEST_CASE("nginx keepalive pool: 100 concurrent clients", "[interop][nginx]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-keepalive.conf", server.endpoint());
  check_parallel(nginx, server, 100, 100);
  // The pool keeps 16 of them open: the next requests reuse them.
  CHECK(sequential_connections(nginx.http(), server, 5) == 0);
  server.stop();
}

TEST_CASE("nginx keepalive pool: a client that disconnects mid-download", "[interop][nginx]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-keepalive.conf", server.endpoint());
  INFO("logs:\n" << nginx.logs());
  check_abort(nginx.http(), server);
  server.stop();
}

TEST_CASE(
    "nginx without keepalive: params plus a 1 MiB POST and a 64 MiB download with a connection "
    "each",
    "[interop][nginx]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-plain.conf", server.endpoint());
  CHECK(check_basics(nginx, server, kNginxParams) == 8);
  server.stop();
}

TEST_CASE("nginx without keepalive: 100 concurrent clients and one that disconnects",
          "[interop][nginx]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-plain.conf", server.endpoint());
  CHECK(check_parallel(nginx, server, 100, 100) == 100);
  check_abort(nginx.http(), server);
  server.stop();
}

// --- HAProxy -------------------------------------------------------------------------------------

const Values kHaproxyParams{{"CONTENT_LENGTH", "0"},
                            {"DOCUMENT_ROOT", "/"},
                            {"GATEWAY_INTERFACE", "CGI/1.1"},
                            {"HTTP_HOST", "localhost"},
                            {"HTTP_X_INTEROP", "yes"},
                            {"QUERY_STRING", std::string(kQuery)},
                            {"REMOTE_ADDR", "127.0.0.1"},
                            {"REMOTE_PORT", "*"},
                            {"REQUEST_METHOD", "GET"},
                            {"REQUEST_URI", "/echo/path?" + std::string(kQuery)},
                            {"SCRIPT_FILENAME", "//echo/path"},
                            {"SCRIPT_NAME", "/echo/path"},
                            {"SERVER_NAME", "localhost"},
                            {"SERVER_PORT", "*"},
                            {"SERVER_PROTOCOL", "HTTP/1.0"},
                            {"SERVER_SOFTWARE", "*"}};

TEST_CASE(
    "HAProxy fcgi-app: params plus a 1 MiB POST and a 64 MiB download over reused connections",
    "[interop][haproxy]") {
  if (!installed(kHaproxy, "haproxy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer haproxy;
  start_haproxy(haproxy, server.endpoint());
  // Eight requests in a row. A request that arrives while HAProxy still holds the connection
  // of the one before (it releases it after the client has its last byte) opens another.
  const std::uint64_t connections = check_basics(haproxy, server, kHaproxyParams);
  CHECK(connections >= 1);
  CHECK(connections <= 3);
  server.stop();
}

TEST_CASE("HAProxy fcgi-app multiplexes 32 parallel slow requests over a few connections",
          "[interop][haproxy]") {
  if (!installed(kHaproxy, "haproxy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer haproxy;
  start_haproxy(haproxy, server.endpoint());
  INFO("logs:\n" << haproxy.logs());
  const std::uint64_t connections = check_parallel(haproxy, server, 32, 500);
  CHECK(connections >= 1);
  CHECK(connections <= 3);
  CHECK(server.server().stats().requests_refused == 0);
  CHECK(server.server().stats().requests_completed == 32);
  server.stop();
}

TEST_CASE("HAProxy fcgi-app: 100 concurrent clients", "[interop][haproxy]") {
  if (!installed(kHaproxy, "haproxy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer haproxy;
  start_haproxy(haproxy, server.endpoint());
  check_parallel(haproxy, server, 100, 100);
  INFO("logs:\n" << haproxy.logs());
  CHECK(server.server().stats().requests_refused == 0);
  server.stop();
}

TEST_CASE("HAProxy fcgi-app: a client that disconnects mid-download while another waits",
          "[interop][haproxy]") {
  if (!installed(kHaproxy, "haproxy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer haproxy;
  start_haproxy(haproxy, server.endpoint());
  // HAProxy 2.6 sends no FCGI_ABORT_REQUEST: it resets the connection that carried the
  // request. A request of another client in flight meanwhile is answered all the same.
  std::optional<HttpResponse> slow;
  {
    const std::jthread other([&] {
      try {
        slow = fetch(haproxy.http(), http_get("/slow?sleep_ms=2000"));
      } catch (const TestError&) {
        // slow stays empty: checked below.
      }
    });
    REQUIRE(eventually([&] { return server.server().stats().requests_running == 1; }));
    check_abort(haproxy.http(), server);
  }
  INFO("logs:\n" << haproxy.logs());
  REQUIRE(slow.has_value());
  CHECK(slow->status == 200);
  CHECK_THAT(slow->message.body, Catch::Contains("QUERY_STRING=sleep_ms=2000\n"));
  server.stop();
}

// --- scaling out ---------------------------------------------------------------------------------

// `count` GETs in a row, each answered 200.
void check_requests(const std::string& http, int count) {
  for (int i = 0; i < count; ++i) {
    const HttpResponse response = fetch(http, http_get(fmt::format("/scale?i={}", i)));
    CAPTURE(i);
    CHECK(response.status == 200);
    CHECK_THAT(response.message.body, Catch::Contains(fmt::format("QUERY_STRING=i={}\n", i)));
  }
}

std::uint64_t completed(TestServer& server) { return server.server().stats().requests_completed; }

TEST_CASE("nginx spreads requests over two servers by weight and goes on when one stops",
          "[interop][nginx][scale]") {
  if (!installed(kNginx, "nginx-light")) return;
  echo::EchoHandler handler;
  TestServer app1(handler, interop_config());
  TestServer app2(handler, interop_config());
  Peer nginx;
  start_nginx(nginx, "nginx-scale.conf", two_apps(app1.endpoint(), app2.endpoint()));
  INFO("logs:\n" << nginx.logs());
  check_requests(nginx.http(), 30);
  // Weights 2 and 1, taken in turn.
  CHECK(completed(app1) == 20);
  CHECK(completed(app2) == 10);
  // The second one stops (its kept-alive connections close): every request still succeeds.
  app2.stop();
  check_requests(nginx.http(), 10);
  CHECK(completed(app1) == 30);
  app1.stop();
}

TEST_CASE("HAProxy spreads requests over two servers by weight and drains one on the runtime API",
          "[interop][haproxy][scale]") {
  if (!installed(kHaproxy, "haproxy")) return;
  echo::EchoHandler handler;
  TestServer app1(handler, interop_config());
  TestServer app2(handler, interop_config());
  Peer haproxy;
  start_haproxy(haproxy, "haproxy-scale.cfg", two_apps(app1.endpoint(), app2.endpoint()));
  INFO("logs:\n" << haproxy.logs());
  check_requests(haproxy.http(), 30);
  CHECK(completed(app1) == 20);
  CHECK(completed(app2) == 10);

  {
    Socket admin = Socket::connect("unix:" + (haproxy.dir() / "admin.sock").string());
    std::string answer;
    admin.send_all("set server fcgimux/app2 state drain\n", answer);
    while (admin.receive(answer)) {
    }
    CHECK(answer == "\n");
  }
  check_requests(haproxy.http(), 10);
  CHECK(completed(app1) == 30);
  CHECK(completed(app2) == 10);
  app1.stop();
  app2.stop();
}

// --- lighttpd ------------------------------------------------------------------------------------

const Values kLighttpdParams{{"CONTENT_LENGTH", "0"},
                             {"DOCUMENT_ROOT", "*"},
                             {"GATEWAY_INTERFACE", "CGI/1.1"},
                             {"HTTP_HOST", "localhost"},
                             {"HTTP_X_INTEROP", "yes"},
                             {"PATH_INFO", "/path"},
                             {"PATH_TRANSLATED", "*"},
                             {"QUERY_STRING", std::string(kQuery)},
                             {"REDIRECT_STATUS", "200"},
                             {"REMOTE_ADDR", "127.0.0.1"},
                             {"REMOTE_PORT", "*"},
                             {"REQUEST_METHOD", "GET"},
                             {"REQUEST_SCHEME", "http"},
                             {"REQUEST_URI", "/echo/path?" + std::string(kQuery)},
                             {"SCRIPT_FILENAME", "*"},
                             {"SCRIPT_NAME", "/echo"},
                             {"SERVER_ADDR", "127.0.0.1"},
                             {"SERVER_NAME", "localhost"},
                             {"SERVER_PORT", "*"},
                             {"SERVER_PROTOCOL", "HTTP/1.0"},
                             {"SERVER_SOFTWARE", "*"}};

TEST_CASE(
    "lighttpd mod_fastcgi: params plus a 1 MiB POST and a 64 MiB download with a connection each",
    "[interop][lighttpd]") {
  if (!installed(kLighttpd, "lighttpd")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer lighttpd;
  start_lighttpd(lighttpd, server.endpoint());
  CHECK(check_basics(lighttpd, server, kLighttpdParams) == 8);
  server.stop();
}

TEST_CASE("lighttpd mod_fastcgi: 100 concurrent clients and one that disconnects",
          "[interop][lighttpd]") {
  if (!installed(kLighttpd, "lighttpd")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer lighttpd;
  start_lighttpd(lighttpd, server.endpoint());
  INFO("logs:\n" << lighttpd.logs());
  CHECK(check_parallel(lighttpd, server, 100, 100) == 100);
  check_abort(lighttpd.http(), server);
  server.stop();
}

// --- Apache httpd --------------------------------------------------------------------------------

const Values kApacheParams{{"CONTEXT_DOCUMENT_ROOT", "*"},
                           {"CONTEXT_PREFIX", ""},
                           {"DOCUMENT_ROOT", "*"},
                           {"GATEWAY_INTERFACE", "CGI/1.1"},
                           {"HTTP_HOST", "localhost"},
                           {"HTTP_X_INTEROP", "yes"},
                           {"PATH", "*"},
                           {"QUERY_STRING", std::string(kQuery)},
                           {"REMOTE_ADDR", "127.0.0.1"},
                           {"REMOTE_PORT", "*"},
                           {"REQUEST_METHOD", "GET"},
                           {"REQUEST_SCHEME", "http"},
                           {"REQUEST_URI", "/echo/path?" + std::string(kQuery)},
                           {"SCRIPT_FILENAME", "*"},
                           {"SCRIPT_NAME", "/echo/path"},
                           {"SERVER_ADDR", "127.0.0.1"},
                           {"SERVER_ADMIN", "*"},
                           {"SERVER_NAME", "localhost"},
                           {"SERVER_PORT", "80"},
                           {"SERVER_PROTOCOL", "HTTP/1.0"},
                           {"SERVER_SIGNATURE", ""},
                           {"SERVER_SOFTWARE", "*"}};

TEST_CASE(
    "Apache httpd mod_proxy_fcgi: params plus a 1 MiB POST and a 64 MiB download over reused "
    "connections",
    "[interop][apache]") {
  if (!installed(kApache, "apache2")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer apache;
  start_apache(apache, server.endpoint());
  CHECK(check_basics(apache, server, kApacheParams) == 1);
  server.stop();
}

TEST_CASE("Apache httpd mod_proxy_fcgi: 100 concurrent clients and one that disconnects",
          "[interop][apache]") {
  if (!installed(kApache, "apache2")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer apache;
  start_apache(apache, server.endpoint());
  INFO("logs:\n" << apache.logs());
  check_parallel(apache, server, 100, 100);
  check_abort(apache.http(), server);
  server.stop();
}

// --- Caddy ---------------------------------------------------------------------------------------

const Values kCaddyParams{{"AUTH_TYPE", ""},
                          {"CONTENT_LENGTH", "0"},
                          {"CONTENT_TYPE", ""},
                          {"DOCUMENT_ROOT", "*"},
                          {"DOCUMENT_URI", ""},
                          {"GATEWAY_INTERFACE", "CGI/1.1"},
                          {"HTTP_HOST", "localhost"},
                          {"HTTP_USER_AGENT", ""},
                          {"HTTP_X_FORWARDED_FOR", "127.0.0.1"},
                          {"HTTP_X_FORWARDED_HOST", "localhost"},
                          {"HTTP_X_FORWARDED_PROTO", "http"},
                          {"HTTP_X_INTEROP", "yes"},
                          {"PATH_INFO", "/echo/path"},
                          {"PATH_TRANSLATED", "*"},
                          {"QUERY_STRING", std::string(kQuery)},
                          {"REMOTE_ADDR", "127.0.0.1"},
                          {"REMOTE_HOST", "127.0.0.1"},
                          {"REMOTE_IDENT", ""},
                          {"REMOTE_PORT", "*"},
                          {"REMOTE_USER", ""},
                          {"REQUEST_METHOD", "GET"},
                          {"REQUEST_SCHEME", "http"},
                          {"REQUEST_URI", "/echo/path?" + std::string(kQuery)},
                          {"SCRIPT_FILENAME", "*"},
                          {"SCRIPT_NAME", ""},
                          {"SERVER_NAME", "localhost"},
                          {"SERVER_PORT", "80"},
                          {"SERVER_PROTOCOL", "HTTP/1.0"},
                          {"SERVER_SOFTWARE", "*"}};

TEST_CASE("Caddy reverse_proxy fastcgi: params plus a 1 MiB POST and a 64 MiB download",
          "[interop][caddy]") {
  if (!installed(kCaddy, "caddy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer caddy;
  start_caddy(caddy, server.endpoint());
  CHECK(check_basics(caddy, server, kCaddyParams) == 8);
  server.stop();
}

TEST_CASE("Caddy reverse_proxy fastcgi: 100 concurrent clients and one that disconnects",
          "[interop][caddy]") {
  if (!installed(kCaddy, "caddy")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  Peer caddy;
  start_caddy(caddy, server.endpoint());
  INFO("logs:\n" << caddy.logs());
  check_parallel(caddy, server, 100, 100);
  check_abort(caddy.http(), server);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
