// SPDX-License-Identifier: MIT
// FastCGI clients that are no web servers in front of the echo handler: libfcgi's cgi-fcgi
// (which passes its whole environment as the params) and Perl's FCGI::Client (driven by
// fcgi_client.pl next to this file). Each runs from a shell with its input and output in
// files of a temporary directory; neither keeps its connection (FCGI_KEEP_CONN off).

#include <fmt/core.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "interop.hpp"
#include "lambda_handler.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kCgiFcgi = "/usr/bin/cgi-fcgi";
constexpr std::string_view kPerl = "/usr/bin/perl";
constexpr std::string_view kPerlModule = "/usr/share/perl5/FCGI/Client.pm";
constexpr std::chrono::seconds kCommandTimeout{120};

// Runs `script` with /bin/sh in `dir` and returns its exit code; when that is not 0, what it
// printed is attached to the next assertion. Throws TestError when it runs longer than
// kCommandTimeout.
int run_shell(const std::filesystem::path& dir, const std::string& script) {
  ChildProcess shell(
      {"/bin/sh", "-c", fmt::format("cd '{}' && ({}) >output.log 2>&1", dir.string(), script)},
      kCommandTimeout);
  const int code = shell.wait();
  if (code != 0) {
    UNSCOPED_INFO(script << " exited " << code << ":\n" << file_text(dir / "output.log"));
  }
  return code;
}

// "127.0.0.1:PORT" from "tcp:127.0.0.1:PORT".
std::string host_port(const std::string& endpoint) { return endpoint.substr(4); }

CgiResponse response_in(const std::filesystem::path& file) {
  return parse_cgi_response(file_text(file));
}

// --- cgi-fcgi ------------------------------------------------------------------------------------

// cgi-fcgi with only `environment` as its environment, hence as the request's params.
std::string cgi_fcgi(const std::string& endpoint, std::string_view environment) {
  return fmt::format("env -i {} {} -bind -connect {}", environment, kCgiFcgi, host_port(endpoint));
}

// cgi-fcgi misreads a record header that reaches it in two reads: AppServerReadHandler in
// libfcgi 2.4.2 copies the rest of the header to `&header + headerLen`, which counts in whole
// headers, so the header keeps stale bytes and cgi-fcgi exits 253 (FCGX_PROTOCOL_ERROR) while
// the bytes on the wire are right. A response of many records reaches it in reads that end
// wherever a TCP segment ends, so large responses go to the clients below that read a byte
// stream as one (Perl's FCGI::Client here, the web servers elsewhere), and cgi-fcgi gets
// responses that fit in one record: its own environment, and what the server read of a
// 1 MiB POST.
TEST_CASE("cgi-fcgi: params, and a 1 MiB POST read to its last byte, with a connection each",
          "[interop][cgi-fcgi]") {
  if (!installed(kCgiFcgi, "libfcgi-bin")) return;
  const std::string body = pattern(1024 * 1024, 5);
  echo::EchoHandler echo;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("REQUEST_METHOD") != "POST") return echo.handle(request, response);
    const std::string received = request.read_all(2 * body.size());
    response.header("Content-Type", "text/plain");
    response.write(fmt::format("bytes={} first_mismatch={}", received.size(),
                               first_mismatch(received, body)));
  });
  TestServer server(handler, interop_config());
  const TempDir dir;

  REQUIRE(run_shell(dir.path(),
                    cgi_fcgi(server.endpoint(), fmt::format("REQUEST_METHOD=GET QUERY_STRING='{}' "
                                                            "SCRIPT_NAME=/cgi-fcgi",
                                                            kQuery)) +
                        " >get.out") == 0);
  const CgiResponse get = response_in(dir.path() / "get.out");
  CHECK(get.header("Content-Type") == "text/plain");
  // Its environment, exactly.
  CHECK(get.body ==
        fmt::format("QUERY_STRING={}\nREQUEST_METHOD=GET\nSCRIPT_NAME=/cgi-fcgi\n", kQuery));

  std::ofstream(dir.path() / "body", std::ios::binary) << body;
  REQUIRE(run_shell(dir.path(), cgi_fcgi(server.endpoint(), fmt::format("REQUEST_METHOD=POST "
                                                                        "CONTENT_LENGTH={}",
                                                                        body.size())) +
                                    " <body >post.out") == 0);
  CHECK(response_in(dir.path() / "post.out").body ==
        fmt::format("bytes={} first_mismatch={}", body.size(), std::string::npos));

  CHECK(server.server().stats().connections_accepted == 2);
  server.stop();
}

TEST_CASE("cgi-fcgi: 100 concurrent clients and one that disconnects mid-download",
          "[interop][cgi-fcgi]") {
  if (!installed(kCgiFcgi, "libfcgi-bin")) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  const TempDir dir;

  REQUIRE(run_shell(dir.path(),
                    fmt::format(
                        "for i in $(seq 0 99); do {} >parallel.$i & done; wait",
                        cgi_fcgi(server.endpoint(),
                                 "REQUEST_METHOD=GET QUERY_STRING=\"client=$i&sleep_ms=100\""))) ==
          0);
  for (int i = 0; i < 100; ++i) {
    CAPTURE(i);
    CHECK_THAT(response_in(dir.path() / fmt::format("parallel.{}", i)).body,
               Catch::Contains(fmt::format("QUERY_STRING=client={}&sleep_ms=100\n", i)));
  }
  CHECK(server.server().stats().connections_accepted == 100);

  // head exits after 1 MiB; cgi-fcgi's next write gets SIGPIPE and its connection closes.
  run_shell(dir.path(),
            cgi_fcgi(server.endpoint(), "REQUEST_METHOD=GET QUERY_STRING=size=4294967296") +
                " | head -c 1048576 >/dev/null");
  CHECK(eventually([&] { return server.server().stats().requests_aborted == 1; },
                   std::chrono::seconds(30)));
  REQUIRE(
      run_shell(dir.path(), cgi_fcgi(server.endpoint(), "REQUEST_METHOD=GET QUERY_STRING=after") +
                                " >after.out") == 0);
  CHECK(response_in(dir.path() / "after.out").body == "QUERY_STRING=after\nREQUEST_METHOD=GET\n");
  CHECK(server.server().stats().requests_aborted == 1);
  server.stop();
}

// --- Perl's FCGI::Client -------------------------------------------------------------------------

bool perl_client_installed() {
  return installed(kPerl, "perl") && installed(kPerlModule, "libfcgi-client-perl");
}

std::string perl_client(const std::string& endpoint, std::string_view arguments) {
  return fmt::format("{} {}/fcgi_client.pl {} {}", kPerl, FCGIMUX_INTEROP_DIR, host_port(endpoint),
                     arguments);
}

TEST_CASE(
    "Perl FCGI::Client: params plus a 1 MiB POST and a 64 MiB download with a connection each",
    "[interop][perl]") {
  if (!perl_client_installed()) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  const TempDir dir;

  REQUIRE(run_shell(dir.path(), perl_client(server.endpoint(),
                                            fmt::format("request get.out '{}'", kQuery))) == 0);
  const CgiResponse get = response_in(dir.path() / "get.out");
  CHECK(get.header("Content-Type") == "text/plain");
  CHECK(get.body ==
        fmt::format("QUERY_STRING={}\nREQUEST_METHOD=GET\nSCRIPT_NAME=/perl\n", kQuery));

  const std::string body = pattern(1024 * 1024, 9);
  std::ofstream(dir.path() / "body", std::ios::binary) << body;
  REQUIRE(run_shell(dir.path(), perl_client(server.endpoint(), "request post.out '' body")) == 0);
  CHECK(first_mismatch(response_in(dir.path() / "post.out").body, body) == std::string::npos);

  constexpr std::size_t kSize = 64 * 1024 * 1024;
  REQUIRE(run_shell(dir.path(), perl_client(server.endpoint(),
                                            fmt::format("request download.out size={}", kSize))) ==
          0);
  const std::string download = response_in(dir.path() / "download.out").body;
  CHECK(download.size() == kSize);
  CHECK(first_mismatch(download, std::string(kSize, 'x')) == std::string::npos);

  CHECK(server.server().stats().connections_accepted == 3);
  server.stop();
}

TEST_CASE("Perl FCGI::Client: 100 concurrent clients and one that disconnects mid-download",
          "[interop][perl]") {
  if (!perl_client_installed()) return;
  echo::EchoHandler handler;
  TestServer server(handler, interop_config());
  const TempDir dir;

  REQUIRE(run_shell(dir.path(),
                    perl_client(server.endpoint(), "parallel 100 parallel sleep_ms=100")) == 0);
  for (int i = 0; i < 100; ++i) {
    CAPTURE(i);
    CHECK_THAT(response_in(dir.path() / fmt::format("parallel.{}", i)).body,
               Catch::Contains(fmt::format("QUERY_STRING=client={}&sleep_ms=100\n", i)));
  }
  CHECK(server.server().stats().connections_accepted == 100);

  REQUIRE(run_shell(dir.path(), perl_client(server.endpoint(), "abort 1048576 size=4294967296")) ==
          0);
  CHECK(eventually([&] { return server.server().stats().requests_aborted == 1; },
                   std::chrono::seconds(30)));
  REQUIRE(run_shell(dir.path(), perl_client(server.endpoint(), "request after.out after")) == 0);
  CHECK_THAT(response_in(dir.path() / "after.out").body, Catch::Contains("QUERY_STRING=after\n"));
  CHECK(server.server().stats().requests_aborted == 1);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
