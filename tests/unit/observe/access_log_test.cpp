// SPDX-License-Identifier: MIT
// The access log's line and the request's URI: lib/observe/access_log.cpp.

#include "observe/access_log.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace fcgimux::observe {
namespace {

using namespace std::chrono_literals;

TEST_CASE("an access line is logfmt with every field, and no time of its own", "[observe]") {
  const AccessEntry entry{.method = "GET",
                          .uri = "/echo?size=10",
                          .status = 200,
                          .bytes = 10,
                          .duration = 1'234'567ns,
                          .queue_wait = 56us,
                          .result = "ok",
                          .reason = "",
                          .connection_id = 3,
                          .request_id = 1};
  // The sink stamps each line with the time: a time here would be the second one.
  CHECK(access_line(entry) ==
        "access method=GET uri=\"/echo?size=10\" status=200 bytes=10 duration_ms=1.235 "
        "queue_ms=0.056 result=ok conn=3 req=1");
}

TEST_CASE("a refused request's access line says why after its result", "[observe]") {
  const AccessEntry entry{.method = "",
                          .uri = "",
                          .status = 431,
                          .bytes = 32,
                          .duration = 0ns,
                          .queue_wait = 0ns,
                          .result = "refused",
                          .reason = "params_too_large",
                          .connection_id = 7,
                          .request_id = 2};
  CHECK(access_line(entry) ==
        "access method=\"\" uri=\"\" status=431 bytes=32 duration_ms=0.000 queue_ms=0.000 "
        "result=refused reason=params_too_large conn=7 req=2");
}

TEST_CASE("an access line names its pool last when the server has named pools", "[observe]") {
  const AccessEntry entry{.method = "GET",
                          .uri = "/slow",
                          .status = 200,
                          .bytes = 2,
                          .duration = 0ns,
                          .queue_wait = 0ns,
                          .result = "ok",
                          .reason = "",
                          .connection_id = 5,
                          .request_id = 1,
                          .pool = "slow reports"};
  CHECK(access_line(entry) ==
        "access method=GET uri=/slow status=200 bytes=2 duration_ms=0.000 queue_ms=0.000 "
        "result=ok conn=5 req=1 pool=\"slow reports\"");
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
