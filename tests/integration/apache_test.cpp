// SPDX-License-Identifier: MIT
// Through a real Apache httpd: mod_authnz_fcgi asks the authorizer example (FastCGI 1.0 §6.3)
// whether a request may go on, in its "authnz" check_user_id mode; then a static file is served,
// or echo answers through mod_proxy_fcgi and shows the AUTH_USER the authorizer handed on with
// Variable-AUTH_USER. httpd runs as one foreground process (-X) with a generated config whose
// every path is inside a temporary directory (docs/roles.md shows the same config).

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
#include "echo_handler.hpp"
#include "fcgi_client.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kApache = "/usr/sbin/apache2";
constexpr std::string_view kModules = "/usr/lib/apache2/modules";
constexpr std::string_view kSecret = "the Apache-protected file\n";

// "127.0.0.1:PORT" from "tcp:127.0.0.1:PORT".
std::string_view host_port(std::string_view endpoint) { return endpoint.substr(4); }

// The authorizer example on an ephemeral port, and an httpd on a free loopback port that asks
// it about every request: /secret.txt is a static file, /app/ goes to `responder` (an endpoint)
// over FastCGI. Both are killed and reaped on destruction.
class ApacheWithAuthorizer {
 public:
  explicit ApacheWithAuthorizer(const std::string& responder) : port_(free_port()) {
    const std::filesystem::path& dir = dir_.path();
    // httpd started as root serves files as User, which must be able to read them.
    std::filesystem::permissions(
        dir, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                 std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                 std::filesystem::perms::others_exec);
    std::filesystem::create_directory(dir / "www");
    std::ofstream(dir / "www" / "secret.txt") << kSecret;
    std::ofstream(dir / "users") << "basic:alice:wonder land:1\nbearer:robot:t0ken-of-the-robot\n";
    authorizer_.emplace(std::vector<std::string>{FCGIMUX_AUTHORIZER_BINARY, "--users",
                                                 (dir / "users").string(), "--listen",
                                                 "tcp:127.0.0.1:0"});
    const std::string authorizer = announced_address(*authorizer_);

    std::ofstream(dir / "httpd.conf") << fmt::format(
        R"(ServerRoot "{dir}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {dir}/httpd.pid
DefaultRuntimeDir {dir}
Mutex file:{dir} default
ErrorLog {dir}/error.log
LogLevel warn
User nobody
Group nogroup
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authnz_fcgi_module {modules}/mod_authnz_fcgi.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_fcgi_module {modules}/mod_proxy_fcgi.so
DocumentRoot {dir}/www

AuthnzFcgiDefineProvider authnz FcgimuxAuthorizer fcgi://{authorizer}/
<Location "/">
  AuthType Basic
  AuthName "fcgimux"
  # Hand the Authorization header to the authorizer as HTTP_AUTHORIZATION.
  CGIPassAuth On
  AuthnzFcgiCheckAuthnProvider FcgimuxAuthorizer Authoritative On RequireBasicAuth Off UserExpr "%{{reqenv:AUTH_USER}}"
  Require FcgimuxAuthorizer
</Location>
ProxyPass "/app/" "fcgi://{responder}/"
)",
        fmt::arg("dir", dir.string()), fmt::arg("port", port_), fmt::arg("modules", kModules),
        fmt::arg("authorizer", host_port(authorizer)), fmt::arg("responder", host_port(responder)));
    apache_.emplace(
        std::vector<std::string>{std::string(kApache), "-X", "-f", (dir / "httpd.conf").string()});
    wait_accepting(address(), "Apache httpd");
  }

  std::string address() const { return fmt::format("tcp:127.0.0.1:{}", port_); }

  // httpd's error log so far, for failure messages.
  std::string error_log() const {
    std::ifstream in(dir_.path() / "error.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  HttpResponse get(std::string_view target, std::string_view authorization) const {
    std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: localhost\r\n", target);
    if (!authorization.empty()) request += fmt::format("Authorization: {}\r\n", authorization);
    return http_exchange(address(), request + "\r\n");
  }

 private:
  TempDir dir_;
  int port_;
  std::optional<ChildProcess> authorizer_;
  std::optional<ChildProcess> apache_;  // last: killed before the authorizer
};

TEST_CASE("Apache httpd serves a file once the authorizer example lets the request through",
          "[integration][apache]") {
  if (!installed(kApache, "apache2")) return;
  echo::EchoHandler handler;
  TestServer responder(handler);
  const ApacheWithAuthorizer apache(responder.endpoint());
  for (const std::string_view authorization :
       {"Basic YWxpY2U6d29uZGVyIGxhbmQ6MQ==", "Bearer t0ken-of-the-robot"}) {
    CAPTURE(authorization);
    const HttpResponse response = apache.get("/secret.txt", authorization);
    INFO("httpd error log:\n" << apache.error_log());
    CHECK(response.status == 200);
    CHECK(response.message.body == kSecret);
  }
  responder.stop();
}

TEST_CASE("Apache httpd passes the authorizer example's 401 on to the client",
          "[integration][apache]") {
  if (!installed(kApache, "apache2")) return;
  echo::EchoHandler handler;
  TestServer responder(handler);
  const ApacheWithAuthorizer apache(responder.endpoint());
  for (const std::string_view authorization :
       {"", "Basic YWxpY2U6d29uZGVyIGxhbmQ6Mg==", "Bearer t0ken-of-the-robo"}) {
    CAPTURE(authorization);
    for (const std::string_view target : {"/secret.txt", "/app/anything"}) {
      const HttpResponse response = apache.get(target, authorization);
      INFO("httpd error log:\n" << apache.error_log());
      CHECK(response.status == 401);
      CHECK(response.message.header("WWW-Authenticate").value_or("").starts_with("Basic realm="));
      CHECK(response.message.body.find(kSecret) == std::string::npos);
    }
  }
  CHECK(responder.server().stats().requests_admitted == 0);
  responder.stop();
}

TEST_CASE("Apache httpd hands the authorizer's Variable-AUTH_USER on to the responder behind it",
          "[integration][apache]") {
  if (!installed(kApache, "apache2")) return;
  echo::EchoHandler handler;
  TestServer responder(handler);
  const ApacheWithAuthorizer apache(responder.endpoint());
  const HttpResponse response = apache.get("/app/report?year=1996", "Bearer t0ken-of-the-robot");
  INFO("httpd error log:\n" << apache.error_log());
  REQUIRE(response.status == 200);
  // echo lists its params: the authorizer's variable, and the user Apache took from it.
  CHECK_THAT(response.message.body,
             Catch::Contains("\nAUTH_USER=robot\n") || Catch::StartsWith("AUTH_USER=robot\n"));
  CHECK_THAT(response.message.body, Catch::Contains("\nREMOTE_USER=robot\n"));
  CHECK_THAT(response.message.body, Catch::Contains("\nQUERY_STRING=year=1996\n"));
  responder.stop();
}

}  // namespace
}  // namespace fcgimux::test
