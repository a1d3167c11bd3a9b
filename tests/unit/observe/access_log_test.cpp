// SPDX-License-Identifier: MIT
// The access log's line and the request's URI: lib/observe/access_log.cpp.

#include "observe/access_log.hpp"

#include <stdlib.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace fcgimux::observe {
namespace {

using namespace std::chrono_literals;

TEST_CASE("an access line is logfmt with every field", "[observe]") {
  const AccessEntry entry{
      .time = std::chrono::system_clock::time_point(std::chrono::seconds(1'764'230'400) + 123ms),
      .method = "GET",
      .uri = "/echo?size=10",
      .status = 200,
      .bytes = 10,
      .duration = 1'234'567ns,
      .queue_wait = 56us,
      .result = "ok",
      .connection_id = 3,
      .request_id = 1};
  CHECK(access_line(entry) ==
        "access time=2025-11-27T08:00:00.123Z method=GET uri=\"/echo?size=10\" status=200 "
        "bytes=10 duration_ms=1.235 queue_ms=0.056 result=ok conn=3 req=1");
}

TEST_CASE("an access line's time is UTC whatever the local time zone", "[observe]") {
  const char* saved = std::getenv("TZ");
  const std::string previous = saved != nullptr ? saved : "";
  ::setenv("TZ", "XST-5", 1);  // five hours east of UTC, a POSIX rule that needs no tzdata
  ::tzset();
  const std::string line = access_line(AccessEntry{
      .time = std::chrono::system_clock::time_point(std::chrono::seconds(1'764'230'400)),
      .method = "GET",
      .uri = "/",
      .status = 200,
      .bytes = 0,
      .duration = 0ns,
      .queue_wait = 0ns,
      .result = "ok",
      .connection_id = 1,
      .request_id = 1});
  if (saved != nullptr) {
    ::setenv("TZ", previous.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  CHECK_THAT(line, Catch::StartsWith("access time=2025-11-27T08:00:00.000Z "));
}

TEST_CASE("a logfmt value is quoted and escaped when it must be", "[observe]") {
  CHECK(logfmt_value("/plain/path") == "/plain/path");
  CHECK(logfmt_value("") == "\"\"");
  CHECK(logfmt_value("a b") == "\"a b\"");
  CHECK(logfmt_value("k=v") == "\"k=v\"");
  CHECK(logfmt_value("say \"hi\" \\o/") == "\"say \\\"hi\\\" \\\\o/\"");
  // A line break or any byte outside printable ASCII never reaches the log as itself.
  CHECK(logfmt_value("a\r\nb\x01\xff") == "\"a\\x0d\\x0ab\\x01\\xff\"");
}

std::vector<protocol::NameValue> params(std::initializer_list<protocol::NameValue> pairs) {
  return pairs;
}

TEST_CASE("the request URI is REQUEST_URI, else rebuilt from the CGI params", "[observe]") {
  CHECK(request_uri(params({{"SCRIPT_NAME", "/s"}, {"REQUEST_URI", "/orig?q=1"}})) == "/orig?q=1");
  CHECK(request_uri(
            params({{"SCRIPT_NAME", "/app"}, {"PATH_INFO", "/more"}, {"QUERY_STRING", "a=1"}})) ==
        "/app/more?a=1");
  CHECK(request_uri(params({{"SCRIPT_NAME", "/app"}, {"QUERY_STRING", ""}})) == "/app");
  CHECK(request_uri(params({})).empty());
  CHECK(param(params({{"A", "1"}, {"B", "2"}}), "B") == "2");
  CHECK(param(params({{"A", "1"}}), "C").empty());
}

}  // namespace
}  // namespace fcgimux::observe
