// SPDX-License-Identifier: MIT
// What a handler's response, and its failures, look like to the client and in the log: a
// real Server on loopback and the FastCGI test client.

#include <catch2/catch.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "lambda_handler.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;

// One request on `client`; its CGI response, which must be complete.
CgiResponse fetch(FcgiClient& client, const Params& params, std::string_view body = {}) {
  const Response response = client.request(params, body);
  REQUIRE(response.end.has_value());
  REQUIRE(response.end->protocol_status == ProtocolStatus::RequestComplete);
  REQUIRE(response.out_ended);
  return parse_cgi_response(response.out);
}

Params request(std::string_view method, std::string_view uri) {
  return {{"REQUEST_METHOD", std::string(method)},
          {"REQUEST_URI", std::string(uri)},
          {"QUERY_STRING", std::string(uri.substr(uri.find('?') + 1))}};
}

TEST_CASE("a response the handler leaves in the buffer reaches the client with its length",
          "[integration][response]") {
  LambdaHandler handler([](fcgimux::Request& request, fcgimux::Response& response) {
    const std::string_view query = request.param("QUERY_STRING").value_or("");
    if (query == "flushed") {
      response.write("streamed ");
      response.flush();
      response.write("in two");
    } else if (query == "sized") {
      response.header("Content-Length", "2");
      response.write("ok");
    } else {
      response.header("Content-Type", "text/plain");
      response.write("hello");
    }
  });
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  const CgiResponse buffered = fetch(client, request("GET", "/?buffered"));
  CHECK(buffered.body == "hello");
  CHECK(buffered.header("Content-Length") == "5");
  // The handler streamed it: its length was not known when the header block went out.
  const CgiResponse flushed = fetch(client, request("GET", "/?flushed"));
  CHECK(flushed.body == "streamed in two");
  CHECK(flushed.header("Content-Length") == std::nullopt);
  // The handler's own is the only one.
  const CgiResponse sized = fetch(client, request("GET", "/?sized"));
  CHECK(sized.body == "ok");
  int lengths = 0;
  for (const auto& [name, value] : sized.headers) lengths += name == "Content-Length" ? 1 : 0;
  CHECK(lengths == 1);
  // An answer to HEAD gets none: its length would be that of the GET body.
  const CgiResponse head = fetch(client, request("HEAD", "/?buffered"));
  CHECK(head.header("Content-Length") == std::nullopt);
  server.stop();
}

TEST_CASE("a body past read_all()'s limit is a client error: a 413, a warning, counted apart",
          "[integration][response]") {
  LambdaHandler handler([](fcgimux::Request& request, fcgimux::Response& response) {
    response.write(request.read_all(8));
  });
  LogCapture log;
  Config config = test_config();
  config.access_log = true;
  config.log_level = LogLevel::Debug;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  const CgiResponse refused = fetch(client, request("POST", "/upload?big"), "0123456789");
  CHECK(refused.status == 413);
  CHECK(refused.header("Content-Length") == "22");  // "413 Content Too Large\n"
  CHECK(fetch(client, request("POST", "/upload?small"), "01234567").body == "01234567");

  REQUIRE(eventually([&] { return log.lines(LogLevel::Info, "access ").size() == 2; }));
  CHECK(log.contains(LogLevel::Warning,
                     "POST /upload?big: body too large for the handler: request stream longer "
                     "than 8 bytes"));
  CHECK(log.lines(LogLevel::Error, "").empty());
  CHECK(log.lines(LogLevel::Info, "uri=/upload?big status=413 ").size() == 1);
  CHECK(log.lines(LogLevel::Info, "result=too_large").size() == 1);
  const Stats stats = server.server().stats();
  CHECK(stats.requests_body_too_large == 1);
  CHECK(stats.requests_failed == 0);
  CHECK(stats.requests_completed == 1);
  CHECK(stats.requests_admitted == stats.requests_completed + stats.requests_failed +
                                       stats.requests_aborted + stats.requests_body_too_large);
  server.stop();
}

TEST_CASE("a handler that throws is logged with the method and URI of its request",
          "[integration][response]") {
  LambdaHandler handler(
      [](fcgimux::Request&, fcgimux::Response&) { throw std::runtime_error("no such item"); });
  LogCapture log;
  Config config = test_config();
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  CHECK(fetch(client, request("DELETE", "/items/7?force=1")).status == 500);
  const auto lines = log.lines(LogLevel::Error, "handler threw");
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines.front(),
             Catch::EndsWith("req 1: DELETE \"/items/7?force=1\": handler threw: no such item"));
  CHECK(server.server().stats().requests_failed == 1);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
