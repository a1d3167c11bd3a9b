// SPDX-License-Identifier: MIT
// Cancellation: FCGI_ABORT_REQUEST, the connection closing and the shutdown deadline each stop
// a running request: its stop token fires, a blocked read or write returns, and the request
// ends with exactly one END_REQUEST.

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

constexpr std::size_t kKiB = 1024;

Response collect_one(FcgiClient& client, std::uint16_t id) {
  const std::vector<std::uint16_t> ids{id};
  return std::move(client.collect(ids).by_id.at(id));
}

// Sends request `id` asking for "ok" and checks the answer. collect() fails on a record for
// any other id, so this also proves that nothing more came for the requests before it.
void check_served(FcgiClient& client, std::uint16_t id) {
  CAPTURE(id);
  RequestOptions options;
  options.id = id;
  const Response response = client.request({{"QUERY_STRING", "ok"}}, {}, options);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body == "ok");
}

// An END_REQUEST that completes the request after its empty output stream, and nothing else.
void check_ended_empty(const Response& response) {
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(response.out.empty());
  CHECK(response.err.empty());
}

// Sends BEGIN_REQUEST and the params of request 1, but no body yet.
void begin_without_body(FcgiClient& client, const std::string& query) {
  client.send_begin_request(1, true);
  client.send_params(1, {{"QUERY_STRING", query}});
}

TEST_CASE(
    "an abort while the handler waits in read returns 0, fires the stop token, and frees "
    "the id",
    "[integration][cancellation]") {
  std::promise<void> reading;
  std::promise<std::pair<std::size_t, bool>> read_outcome;  // what read() returned, stopped
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "read") return response.write("ok");
    reading.set_value();
    std::array<char, 1024> chunk;
    const std::size_t n = request.read(chunk);
    read_outcome.set_value({n, request.stop_token().stop_requested()});
  });
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  begin_without_body(client, "read");
  REQUIRE(reading.get_future().wait_for(kTimeout) == std::future_status::ready);
  client.send_abort(1);
  std::future<std::pair<std::size_t, bool>> outcome = read_outcome.get_future();
  REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
  const auto [read, stopped] = outcome.get();
  CHECK(read == 0);
  CHECK(stopped);

  check_ended_empty(collect_one(client, 1));
  check_served(client, 2);
  check_served(client, 1);
  const Stats stats = server.server().stats();
  CHECK(stats.requests_aborted == 1);
  CHECK(stats.requests_completed == 2);
  server.stop();
}

TEST_CASE(
    "an abort while the handler waits on a full output budget ends the request, and "
    "frees the id",
    "[integration][cancellation]") {
  // The handler writes up to 64 MiB, far past what the socket buffers hold, unless stopped.
  std::promise<std::pair<std::size_t, bool>> write_outcome;  // slices written, stopped
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "write") return response.write("ok");
    const std::string slice(64 * kKiB, 'x');
    std::size_t written = 0;
    for (; written < 1024 && !request.stop_token().stop_requested(); ++written) {
      response.write(slice);
    }
    write_outcome.set_value({written, request.stop_token().stop_requested()});
  });
  Config config = test_config();
  config.connection_output_budget = 256 * kKiB;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  client.send_request({{"QUERY_STRING", "write"}}, {});
  REQUIRE(eventually(
      [&] { return server.server().stats().output_buffered >= config.connection_output_budget; }));
  std::future<std::pair<std::size_t, bool>> outcome = write_outcome.get_future();
  CHECK(outcome.wait_for(0s) == std::future_status::timeout);
  client.send_abort(1);
  REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
  const auto [written, stopped] = outcome.get();
  CHECK(written < 1024);
  CHECK(stopped);

  // What went out before the abort arrives, then the end of the stream and END_REQUEST.
  const Response response = collect_one(client, 1);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(response.out_ended);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.body.size() < 1024 * 64 * kKiB);
  CHECK(cgi.body.find_first_not_of('x') == std::string::npos);
  check_served(client, 2);
  check_served(client, 1);
  CHECK(server.server().stats().requests_aborted == 1);
  CHECK(eventually([&] { return server.server().stats().output_buffered == 0; }));
  server.stop();
}

TEST_CASE("a connection that closes stops its running request, counted as aborted",
          "[integration][cancellation]") {
  Gate gate;  // never opened: the handler waits for its stop token
  std::promise<bool> stop_outcome;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response&) {
    gate.pass(request.stop_token());
    stop_outcome.set_value(request.stop_token().stop_requested());
  });
  TestServer server(handler);

  std::optional<FcgiClient> client(std::in_place, server.endpoint());
  client->send_request({{"QUERY_STRING", "wait"}}, {});
  REQUIRE(gate.wait_arrivals(1));
  client.reset();

  std::future<bool> outcome = stop_outcome.get_future();
  REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
  CHECK(outcome.get());
  CHECK(eventually([&] {
    const Stats stats = server.server().stats();
    return stats.requests_aborted == 1 && stats.requests_running == 0 &&
           stats.connections_open == 0;
  }));
  CHECK(server.server().stats().requests_completed == 0);
  server.stop();
}

TEST_CASE("the shutdown deadline stops a handler that waits on its stop token, and its client "
          "gets a 503",
          "[integration][cancellation]") {
  Gate gate;  // never opened: the handler waits for its stop token
  std::promise<bool> stop_outcome;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response&) {
    gate.pass(request.stop_token());
    stop_outcome.set_value(request.stop_token().stop_requested());
  });
  LogCapture log;
  Config config = test_config();
  config.shutdown_timeout = 200ms;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  client.send_request({{"QUERY_STRING", "wait"}}, {});
  REQUIRE(gate.wait_arrivals(1));
  server.server().stop();

  std::future<bool> outcome = stop_outcome.get_future();
  REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
  CHECK(outcome.get());
  // Nothing of the handler's response went out: the server answers for it, whole.
  const Response response = collect_one(client, 1);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).status == 503);
  // Draining: the connection closes after its last request.
  CHECK_FALSE(client.read_record().has_value());
  server.stop();  // throws unless run() returned
  CHECK(server.server().stats().requests_aborted == 1);
  CHECK(log.contains(LogLevel::Warning, "shutdown deadline passed"));
}

}  // namespace
}  // namespace fcgimux::test
