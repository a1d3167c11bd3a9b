// SPDX-License-Identifier: MIT
// The built-in pages (Config::status_path, ping_path), the slow-request log and the access
// log, through a real Server and the FastCGI test client.

#include <fmt/core.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo_handler.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "lambda_handler.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using namespace std::chrono_literals;

// Holds a request whose QUERY_STRING starts with "wait" at the gate, throws for "throw", and
// answers the echo contract otherwise.
class HoldingHandler : public Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    const std::string_view query = request.param("QUERY_STRING").value_or("");
    if (query.starts_with("wait")) {
      gate.pass(request.stop_token());
      response.write("done");
    } else if (query == "throw") {
      throw std::runtime_error("thrown by the test");
    } else {
      echo.handle(request, response);
    }
  }

  Gate gate;
  echo::EchoHandler echo;
};

Params get(std::string_view script_name, std::string_view query) {
  const std::string uri =
      std::string(script_name) + (query.empty() ? "" : "?") + std::string(query);
  return {{"REQUEST_METHOD", "GET"},
          {"SCRIPT_NAME", std::string(script_name)},
          {"QUERY_STRING", std::string(query)},
          {"REQUEST_URI", uri}};
}

// One request on a new connection; its CGI response, which must be complete.
CgiResponse fetch(const std::string& endpoint, const Params& params) {
  FcgiClient client(endpoint);
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  REQUIRE(response.end->protocol_status == ProtocolStatus::RequestComplete);
  REQUIRE(response.out_ended);
  return parse_cgi_response(response.out);
}

CgiResponse status_page(const std::string& endpoint, std::string_view query) {
  return fetch(endpoint, get("/status", query));
}

TEST_CASE(
    "the status page answers in every format while every worker is held and the queue "
    "is full",
    "[integration][status]") {
  HoldingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.workers = 2;
  config.max_requests = 3;
  config.status_path = "/status";
  config.ping_path = "/ping";
  config.log = log.sink();
  TestServer server(handler, config);

  // Two requests run (held), a third waits in the queue: admission is full.
  std::vector<std::unique_ptr<FcgiClient>> held;
  for (int i = 1; i <= 3; ++i) {
    held.push_back(std::make_unique<FcgiClient>(server.endpoint()));
    held.back()->send_request(get("/held", "wait&n=" + std::to_string(i)), {});
  }
  REQUIRE(handler.gate.wait_arrivals(2));
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));
  // The next request is refused: php-fpm's "max children reached".
  CHECK(fetch(server.endpoint(), get("/other", "")).status == 503);

  const CgiResponse text = status_page(server.endpoint(), "");
  CHECK(text.status == 200);
  CHECK(text.header("Content-Type") == "text/plain");
  CHECK(text.header("Cache-Control") == "no-cache, no-store, must-revalidate, max-age=0");
  CHECK(text.header("Expires") == "Thu, 01 Jan 1970 00:00:00 GMT");
  for (const char* line :
       {"pool:                 www\n", "process manager:      static\n",
        "accepted conn:        3\n", "listen queue:         1\n", "listen queue len:     1\n",
        "idle processes:       0\n", "active processes:     2\n", "total processes:      2\n",
        "max active processes: 2\n", "max children reached: 1\n", "slow requests:        0\n"}) {
    CHECK_THAT(text.body, Catch::Contains(line));
  }
  // Up to all three waited at once, before the workers took two of them.
  const std::uint64_t queued_max = server.server().stats().requests_queued_max;
  CHECK(queued_max >= 1);
  CHECK(queued_max <= 3);
  CHECK_THAT(text.body, Catch::Contains(fmt::format("max listen queue:     {}\n", queued_max)));

  const CgiResponse json = status_page(server.endpoint(), "json");
  CHECK(json.header("Content-Type") == "application/json");
  CHECK_THAT(json.body, Catch::StartsWith("{\"pool\":\"www\",\"process manager\":\"static\","));
  CHECK_THAT(json.body, Catch::Contains("\"active processes\":2,"));
  CHECK_THAT(json.body, Catch::EndsWith("}"));

  const CgiResponse full = status_page(server.endpoint(), "full&json");
  CHECK_THAT(full.body, Catch::Contains(", \"processes\":[{\"pid\":"));
  CHECK_THAT(full.body, Catch::Contains("\"state\":\"Running\""));
  CHECK_THAT(full.body, !Catch::Contains("\"state\":\"Idle\""));
  CHECK_THAT(full.body, !Catch::Contains("\"pid\":0,"));
  CHECK_THAT(full.body, Catch::Contains("\"request method\":\"GET\""));
  CHECK_THAT(full.body, Catch::Contains("\"request uri\":\"/held?wait&n="));

  const CgiResponse xml = status_page(server.endpoint(), "xml");
  CHECK(xml.header("Content-Type") == "text/xml");
  CHECK_THAT(xml.body, Catch::Contains("<active-processes>2</active-processes>"));

  const CgiResponse html = status_page(server.endpoint(), "html&full");
  CHECK(html.header("Content-Type") == "text/html");
  CHECK_THAT(html.body, Catch::Contains("<meta http-equiv=\"refresh\" content=\"5\" />"));
  CHECK_THAT(html.body, Catch::Contains("<tr><th>listen queue</th><td>1</td></tr>"));
  CHECK_THAT(html.body, Catch::Contains("<td>Running</td>"));

  const CgiResponse openmetrics = status_page(server.endpoint(), "openmetrics");
  CHECK(openmetrics.header("Content-Type") ==
        "application/openmetrics-text; version=1.0.0; charset=utf-8");
  CHECK_THAT(openmetrics.body, Catch::Contains("\nphpfpm_active_processes 2\n"));
  CHECK_THAT(openmetrics.body, Catch::EndsWith("\n# EOF\n"));

  const CgiResponse prometheus = status_page(server.endpoint(), "prometheus");
  CHECK(prometheus.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK_THAT(prometheus.body, Catch::Contains("\nfcgimux_requests_queued 1\n"));
  CHECK_THAT(prometheus.body, Catch::Contains("\nfcgimux_requests_overloaded_total 1\n"));

  const CgiResponse ping = fetch(server.endpoint(), get("/ping", ""));
  CHECK(ping.status == 200);
  CHECK(ping.header("Content-Type") == "text/plain");
  CHECK(ping.body == "pong");

  handler.gate.open();
  for (const auto& client : held) {
    const std::vector<std::uint16_t> ids{1};
    CHECK(parse_cgi_response(client->collect(ids).by_id.at(1).out).body == "done");
  }
  // Once the workers are back, each shows Idle with its last request.
  CHECK(eventually([&] {
    const std::string body = status_page(server.endpoint(), "full").body;
    return body.find("state:                Running") == std::string::npos &&
           body.find("active processes:     0\n") != std::string::npos;
  }));
  const std::string after = status_page(server.endpoint(), "full").body;
  CHECK_THAT(after, Catch::Contains("state:                Idle\n"));
  CHECK_THAT(after, Catch::Contains("request URI:          /held?wait&n="));
  const Stats stats = server.server().stats();
  CHECK(stats.requests_running_max == 2);
  CHECK(stats.requests_queued_max == queued_max);
  // The pages never took a worker nor an admission.
  CHECK(stats.requests_admitted == 3);
  server.stop();
}

TEST_CASE("ping answers HEAD with headers alone, and only its exact SCRIPT_NAME for a Responder",
          "[integration][status]") {
  HoldingHandler handler;
  Config config = test_config();
  config.ping_path = "/ping";
  config.ping_response = "alive";
  TestServer server(handler, config);

  Params head = get("/ping", "x=1");
  head[0].second = "HEAD";
  const CgiResponse headers_only = fetch(server.endpoint(), head);
  CHECK(headers_only.status == 200);
  CHECK(headers_only.header("Content-Type") == "text/plain");
  CHECK(headers_only.body.empty());
  CHECK(fetch(server.endpoint(), get("/ping", "x=1")).body == "alive");

  // Any other path reaches the handler, which lists the params (the echo contract).
  CHECK_THAT(fetch(server.endpoint(), get("/ping/more", "")).body,
             Catch::Contains("SCRIPT_NAME=/ping/more\n"));
  CHECK_THAT(fetch(server.endpoint(), get("/pin", "")).body, Catch::Contains("SCRIPT_NAME=/pin\n"));
  // So does an Authorizer request, whatever its SCRIPT_NAME.
  FcgiClient client(server.endpoint());
  client.send_begin_request(1, false, Role::Authorizer);
  client.send_params(1, get("/ping", ""));
  const std::vector<std::uint16_t> ids{1};
  CHECK_THAT(client.collect(ids).by_id.at(1).out, Catch::Contains("SCRIPT_NAME=/ping\n"));
  // The status page is off: its usual path is just another request.
  CHECK_THAT(fetch(server.endpoint(), get("/status", "")).body,
             Catch::Contains("SCRIPT_NAME=/status\n"));
  // Without FCGI_KEEP_CONN the connection closes after the ping, as after any request.
  FcgiClient once(server.endpoint());
  RequestOptions close_after;
  close_after.keep_conn = false;
  const Response pong = once.request(get("/ping", ""), {}, close_after);
  REQUIRE(pong.end.has_value());
  CHECK(!once.read_record().has_value());
  server.stop();
}

TEST_CASE("a status or ping path not starting with '/', or both the same, is a bad Config",
          "[integration][status]") {
  HoldingHandler handler;
  Config config = test_config();
  SECTION("status path") { config.status_path = "status"; }
  SECTION("ping path") { config.ping_path = "ping"; }
  SECTION("the same path") {
    config.status_path = "/fpm";
    config.ping_path = "/fpm";
  }
  CHECK_THROWS_AS(Server(config, handler), std::invalid_argument);
}

TEST_CASE("a request running past slow_request_threshold is logged once with its URI and worker",
          "[integration][status]") {
  HoldingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.workers = 2;
  config.slow_request_threshold = 50ms;
  config.status_path = "/status";
  config.log = log.sink();
  TestServer server(handler, config);

  FcgiClient first(server.endpoint());
  first.send_request(get("/slow/first", "wait"), {});
  REQUIRE(eventually([&] { return !log.lines(LogLevel::Warning, "/slow/first").empty(); }));
  // A second slow request is reported only after the sweep has passed the first many times.
  FcgiClient second(server.endpoint());
  second.send_request(get("/slow/second", "wait"), {});
  REQUIRE(eventually([&] { return !log.lines(LogLevel::Warning, "/slow/second").empty(); }));

  const std::vector<std::string> lines = log.lines(LogLevel::Warning, "/slow/first");
  CHECK(lines.size() == 1);
  CAPTURE(lines);
  CHECK_THAT(lines.front(), Catch::Contains("slow: running for "));
  CHECK_THAT(lines.front(), Catch::Contains(" ms on worker "));
  CHECK_THAT(lines.front(), Catch::Contains("GET /slow/first?wait"));
  CHECK(server.server().stats().slow_requests == 2);
  CHECK_THAT(status_page(server.endpoint(), "").body, Catch::Contains("slow requests:        2\n"));

  handler.gate.open();
  const std::vector<std::uint16_t> ids{1};
  CHECK(parse_cgi_response(first.collect(ids).by_id.at(1).out).body == "done");
  CHECK(parse_cgi_response(second.collect(ids).by_id.at(1).out).body == "done");
  CHECK(log.lines(LogLevel::Warning, "slow: ").size() == 2);
  server.stop();
}

TEST_CASE("a slow request is logged with its worker's stack at the moment it was found slow",
          "[integration][status]") {
  LambdaHandler handler([](fcgimux::Request&, fcgimux::Response& response) {
    std::this_thread::sleep_for(300ms);
    response.write("slept");
  });
  LogCapture log;
  Config config = test_config();
  config.workers = 1;
  config.slow_request_threshold = 50ms;
  config.log = log.sink();
  TestServer server(handler, config);

  FcgiClient client(server.endpoint());
  const Response response = client.request(get("/sleepy", ""));
  REQUIRE(response.end.has_value());
  // The signal that took the stack did not cut the handler's sleep short of its output.
  CHECK(parse_cgi_response(response.out).body == "slept");

  CHECK(log.lines(LogLevel::Warning, "slow: running for ").size() == 1);
  const std::vector<std::string> frames = log.lines(LogLevel::Warning, ": stack of worker 0: #");
  CAPTURE(frames);
  REQUIRE_FALSE(frames.empty());
  CHECK_THAT(frames.front(), Catch::Contains(" req 1: stack of worker 0: #0 "));
  // The worker was asleep when the signal came: the sleep is on its stack.
  CHECK(std::any_of(frames.begin(), frames.end(), [](const std::string& frame) {
    return frame.find("nanosleep") != std::string::npos;
  }));
  server.stop();
}

TEST_CASE("the access log has one line per request, whatever the log level",
          "[integration][status]") {
  HoldingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.access_log = true;
  config.ping_path = "/ping";
  config.log_level = LogLevel::Error;
  config.log = log.sink();
  TestServer server(handler, config);

  CHECK(fetch(server.endpoint(), get("/a", "size=10")).body == "xxxxxxxxxx");
  CHECK(fetch(server.endpoint(), get("/missing", "status=404&size=3")).status == 404);
  CHECK(fetch(server.endpoint(), get("/boom", "throw")).status == 500);
  CHECK(fetch(server.endpoint(), get("/ping", "")).body == "pong");
  FcgiClient posting(server.endpoint());
  Params post = get("/echo", "");
  post[0].second = "POST";
  CHECK(parse_cgi_response(posting.request(post, "0123456789abcdef").out).body ==
        "0123456789abcdef");

  // Each line is written once its response is on its way: wait for the last ones.
  REQUIRE(eventually([&] { return log.lines(LogLevel::Info, "access ").size() == 5; }));
  CHECK(log.lines(LogLevel::Info, "method=GET uri=\"/a?size=10\" status=200 bytes=10 ").size() ==
        1);
  CHECK(
      log.lines(LogLevel::Info, "uri=\"/missing?status=404&size=3\" status=404 bytes=3 ").size() ==
      1);
  CHECK(log.lines(LogLevel::Info, "uri=/boom?throw status=500 ").size() == 1);
  CHECK(log.lines(LogLevel::Info, "result=error").size() == 1);
  CHECK(log.contains(LogLevel::Error, "GET /boom?throw: handler threw: thrown by the test"));
  CHECK(log.lines(LogLevel::Info, "method=GET uri=/ping status=200 bytes=4 ").size() == 1);
  CHECK(log.lines(LogLevel::Info, "method=POST uri=/echo status=200 bytes=16 ").size() == 1);
  for (const std::string& line : log.lines(LogLevel::Info, "access ")) {
    CAPTURE(line);
    // The sink stamps the time; the line itself has none, so a log shows it once.
    CHECK_THAT(line, Catch::StartsWith("access method="));
    CHECK_THAT(line, !Catch::Contains("time="));
    CHECK_THAT(line, Catch::Contains(" duration_ms="));
    CHECK_THAT(line, Catch::Contains(" queue_ms="));
    CHECK_THAT(line, Catch::Contains(" conn="));
    CHECK_THAT(line, Catch::EndsWith(" req=1"));
  }
  server.stop();
}

TEST_CASE(
    "requests refused before a handler runs get an access line with the reason, and "
    "a counter each",
    "[integration][status]") {
  HoldingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.workers = 1;
  config.max_requests = 1;
  config.max_body_bytes = 100;
  config.max_params_bytes = 1024;
  config.status_path = "/status";
  config.access_log = true;
  config.log = log.sink();
  TestServer server(handler, config);

  Params too_long = get("/upload", "");
  too_long.emplace_back("CONTENT_LENGTH", "101");
  CHECK(fetch(server.endpoint(), too_long).status == 413);
  Params too_many = get("/big-headers", "");
  too_many.emplace_back("HTTP_AUTHORIZATION", std::string(1024, 'a'));
  CHECK(fetch(server.endpoint(), too_many).status == 431);
  // The only admission slot is taken: the next request is refused as overload.
  FcgiClient held(server.endpoint());
  held.send_request(get("/held", "wait"), {});
  REQUIRE(handler.gate.wait_arrivals(1));
  CHECK(fetch(server.endpoint(), get("/turned-away", "")).status == 503);

  CHECK(log.lines(LogLevel::Info,
                  "access method=GET uri=/upload status=413 bytes=22 "
                  "duration_ms=0.000 queue_ms=0.000 result=refused "
                  "reason=body_too_large conn=")
            .size() == 1);
  // Params past the limit were never read whole: the line cannot name the request.
  CHECK(log.lines(LogLevel::Info,
                  "access method=\"\" uri=\"\" status=431 bytes=36 "
                  "duration_ms=0.000 queue_ms=0.000 result=refused "
                  "reason=params_too_large conn=")
            .size() == 1);
  CHECK(log.lines(LogLevel::Info,
                  "access method=GET uri=/turned-away status=503 bytes=24 "
                  "duration_ms=0.000 queue_ms=0.000 result=refused "
                  "reason=overload conn=")
            .size() == 1);
  const Stats stats = server.server().stats();
  CHECK(stats.requests_refused_body == 1);
  CHECK(stats.requests_refused_params == 1);
  CHECK(stats.requests_overloaded == 1);
  CHECK(stats.requests_refused == 2);
  const std::string metrics = status_page(server.endpoint(), "prometheus").body;
  CHECK_THAT(metrics, Catch::Contains("\nfcgimux_requests_refused_body_total 1\n"));
  CHECK_THAT(metrics, Catch::Contains("\nfcgimux_requests_refused_params_total 1\n"));
  CHECK_THAT(metrics, Catch::Contains("\nfcgimux_requests_overloaded_total 1\n"));

  handler.gate.open();
  const std::vector<std::uint16_t> ids{1};
  CHECK(parse_cgi_response(held.collect(ids).by_id.at(1).out).body == "done");
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
