// SPDX-License-Identifier: MIT
// Limits: every Config limit holds at its value, refuses one past it without harming anything
// else, and the timeouts close or cancel what they should and nothing more.

#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bytes.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;
using namespace std::chrono_literals;

// Runs the echo contract and counts the requests that reached it; a request whose
// QUERY_STRING is "wait" first waits at the gate (until it opens or the request is stopped).
// Threading: Thread-safe.
class CountingHandler : public Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    ++calls;
    if (request.param("QUERY_STRING") == "wait") {
      stopped = !gate.pass(request.stop_token()) && request.stop_token().stop_requested();
      response.write("done");
      return;
    }
    echo_.handle(request, response);
  }

  Gate gate;
  std::atomic<std::size_t> calls{0};
  std::atomic<bool> stopped{false};  // a "wait" request was stopped at the gate

 private:
  echo::EchoHandler echo_;
};

Response collect_one(FcgiClient& client, std::uint16_t id) {
  const std::vector<std::uint16_t> ids{id};
  return std::move(client.collect(ids).by_id.at(id));
}

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

// Sends request `id` without a body and checks the echo of its params.
void check_served(FcgiClient& client, std::uint16_t id = 1) {
  CAPTURE(id);
  const Params params{{"QUERY_STRING", ""}, {"REQUEST_ID", std::to_string(id)}};
  RequestOptions options;
  options.id = id;
  const Response response = client.request(params, {}, options);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

// END_REQUEST with FCGI_CANT_MPX_CONN, and no output.
bool cant_mpx_conn(const Response& response) {
  return response.out.empty() && response.end &&
         response.end->protocol_status == ProtocolStatus::CantMpxConn;
}

// Params whose FastCGI 1.0 §3.4 encoding takes exactly `size` bytes: QUERY_STRING and a filler
// long enough for a 4-byte length.
Params params_of_size(std::size_t size) {
  Params params{{"QUERY_STRING", ""}, {"FILLER", ""}};
  const std::size_t fixed = encode_params(params).size() + 3;  // + the 4-byte value length
  REQUIRE(size >= fixed + 128);
  params[1].second = std::string(size - fixed, 'f');
  REQUIRE(encode_params(params).size() == size);
  return params;
}

TEST_CASE("one connection past max_connections is closed at once and counted",
          "[integration][limits]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_connections = 4;
  config.log = log.sink();
  TestServer server(handler, config);

  std::vector<FcgiClient> clients;
  for (int i = 0; i < 4; ++i) check_served(clients.emplace_back(server.endpoint()));
  FcgiClient extra(server.endpoint());
  CHECK_FALSE(extra.read_record().has_value());
  CHECK(server.server().stats().connections_refused == 1);
  CHECK(log.contains(LogLevel::Warning, "conn 5: closed: refused: max_connections reached"));
  CHECK(eventually([&] { return server.server().stats().connections_open == 4; }));
  for (FcgiClient& client : clients) check_served(client);

  // A place freed is taken again.
  clients.pop_back();
  REQUIRE(eventually([&] { return server.server().stats().connections_open == 3; }));
  FcgiClient again(server.endpoint());
  check_served(again);
  CHECK(server.server().stats().connections_refused == 1);
  server.stop();
}

TEST_CASE("params of exactly max_params_bytes are served, one byte more is answered 431",
          "[integration][limits]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_params_bytes = 1024;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());
  // Small records, so that the block grows across many of them.
  RequestOptions options;
  options.params = {.record_sizes = {100}, .padding = std::nullopt};

  const Params at_limit = params_of_size(1024);
  const Response served = client.request(at_limit, {}, options);
  REQUIRE(complete(served));
  CHECK(parse_cgi_response(served.out).body == expected_listing(at_limit));

  const Response refused = client.request(params_of_size(1025), {}, options);
  REQUIRE(complete(refused));
  CHECK(parse_cgi_response(refused.out).status == 431);
  CHECK(handler.calls.load() == 1);
  CHECK(log.contains(LogLevel::Warning, "params larger than max_params_bytes"));

  check_served(client);
  CHECK(handler.calls.load() == 2);
  CHECK(server.server().stats().requests_refused == 1);
  CHECK(server.server().stats().requests_refused_params == 1);
  server.stop();
}

TEST_CASE(
    "issue 16: a request just under the default max_params_bytes, with a 64 KiB "
    "Authorization header, is answered by the handler",
    "[integration][limits][regression]") {
  CountingHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  // What nginx sends for a single sign-on client once its header buffers are raised: a
  // Kerberos ticket of 64 KiB, then the rest, up to just under the limit.
  const std::size_t size = Config{}.max_params_bytes - 1;
  REQUIRE(size >= 1024 * 1024 - 1);
  Params params{{"QUERY_STRING", ""},
                {"HTTP_AUTHORIZATION", "Negotiate " + std::string(64 * 1024, 'k')},
                {"FILLER", ""}};
  const std::size_t fixed = encode_params(params).size() + 3;  // + the 4-byte value length
  params[2].second = std::string(size - fixed, 'f');
  REQUIRE(encode_params(params).size() == size);

  const Response served = client.request(params);
  REQUIRE(complete(served));
  const CgiResponse cgi = parse_cgi_response(served.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body == expected_listing(params));
  CHECK(handler.calls.load() == 1);
  CHECK(server.server().stats().requests_refused_params == 0);
  server.stop();
}

TEST_CASE("a params block of many tiny pairs counts their views against max_params_bytes",
          "[integration][limits]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_params_bytes = 4096;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  // 3 bytes a pair on the wire, 32 once parsed: 4096 / 32 = 128 pairs at most.
  Params at_limit{{"QUERY_STRING", ""}};
  while (at_limit.size() < 128) at_limit.emplace_back("p", "");
  const Response served = client.request(at_limit);
  REQUIRE(complete(served));
  CHECK(parse_cgi_response(served.out).body == expected_listing(at_limit));

  Params past = at_limit;
  past.emplace_back("p", "");
  REQUIRE(encode_params(past).size() < 1024);
  const Response refused = client.request(past);
  REQUIRE(complete(refused));
  CHECK(parse_cgi_response(refused.out).status == 431);
  CHECK(log.contains(LogLevel::Warning, "counting the memory its many pairs take"));
  CHECK(handler.calls.load() == 1);
  CHECK(server.server().stats().requests_refused_params == 1);

  check_served(client);
  server.stop();
}

TEST_CASE(
    "requests answered without a worker after their params ended keep a connection from "
    "counting as idle",
    "[integration][limits]") {
  CountingHandler handler;
  Config config = test_config();
  config.max_body_bytes = 1024;
  config.idle_timeout = std::chrono::milliseconds(300);
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  // Every request is answered 413 by the I/O thread once its params end: progress, as much as
  // a request a worker runs. For four idle timeouts the connection must stay open between
  // them rather than close in the middle of one. (Refusals before the params end do not count:
  // see hostile_peer_test.cpp.)
  const auto until = std::chrono::steady_clock::now() + 4 * config.idle_timeout;
  int answered = 0;
  for (int i = 0; i < 100000 && std::chrono::steady_clock::now() < until; ++i) {
    const Response refused = client.request({{"CONTENT_LENGTH", "2048"}}, {});
    REQUIRE(complete(refused));
    REQUIRE(parse_cgi_response(refused.out).status == 413);
    ++answered;
  }
  CHECK(answered > 1);
  check_served(client);
  CHECK(server.server().stats().connections_accepted == 1);
  server.stop();
}

TEST_CASE("a CONTENT_LENGTH past max_body_bytes is answered 413 before the handler runs",
          "[integration][limits]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_body_bytes = 1000;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  const Response refused =
      client.request({{"QUERY_STRING", ""}, {"CONTENT_LENGTH", "1001"}}, pattern(1001, 1));
  REQUIRE(complete(refused));
  CHECK(parse_cgi_response(refused.out).status == 413);
  CHECK(handler.calls.load() == 0);
  CHECK(log.contains(LogLevel::Warning, "past max_body_bytes"));
  CHECK(server.server().stats().requests_refused_body == 1);

  // Exactly at the limit, on the same connection: the refused body left nothing behind.
  const std::string body = pattern(1000, 2);
  const Response served = client.request({{"QUERY_STRING", ""}, {"CONTENT_LENGTH", "1000"}}, body);
  REQUIRE(complete(served));
  const CgiResponse cgi = parse_cgi_response(served.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body == body);
  CHECK(handler.calls.load() == 1);
  server.stop();
}

TEST_CASE("a request past max_requests_per_connection is answered FCGI_CANT_MPX_CONN",
          "[integration][limits]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_requests_per_connection = 2;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  for (std::uint16_t id = 1; id <= 2; ++id) {
    RequestOptions options;
    options.id = id;
    client.send_request({{"QUERY_STRING", "wait"}}, {}, options);
  }
  REQUIRE(handler.gate.wait_arrivals(2));
  RequestOptions third;
  third.id = 3;
  client.send_request({{"QUERY_STRING", ""}}, {}, third);
  CHECK(cant_mpx_conn(collect_one(client, 3)));
  CHECK(log.contains(LogLevel::Warning, "req 3: refused: 2 requests in flight"));

  handler.gate.open();
  const std::vector<std::uint16_t> ids{1, 2};
  const Responses responses = client.collect(ids);
  CHECK(complete(responses.by_id.at(1)));
  CHECK(complete(responses.by_id.at(2)));
  check_served(client, 4);
  CHECK(handler.calls.load() == 3);
  CHECK(server.server().stats().requests_refused == 1);
  server.stop();
}

TEST_CASE("with multiplex off, a second request in flight is answered FCGI_CANT_MPX_CONN",
          "[integration][limits]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.multiplex = false;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  client.send_request({{"QUERY_STRING", "wait"}}, {});
  REQUIRE(handler.gate.wait_arrivals(1));
  RequestOptions second;
  second.id = 2;
  client.send_request({{"QUERY_STRING", ""}}, {}, second);
  CHECK(cant_mpx_conn(collect_one(client, 2)));
  CHECK(log.contains(LogLevel::Warning, "req 2: refused: 1 requests in flight"));

  handler.gate.open();
  CHECK(complete(collect_one(client, 1)));
  check_served(client, 3);
  CHECK(handler.calls.load() == 2);
  CHECK(server.server().stats().requests_refused == 1);
  server.stop();
}

TEST_CASE("idle_timeout closes a connection with half a request, not one with a request running",
          "[integration][limits]") {
  CountingHandler handler;
  Config config = test_config();
  config.idle_timeout = 200ms;
  TestServer server(handler, config);

  FcgiClient busy(server.endpoint());
  busy.send_request({{"QUERY_STRING", "wait"}}, {});
  REQUIRE(handler.gate.wait_arrivals(1));
  FcgiClient half(server.endpoint());
  half.send_begin_request(1, true);
  std::string params;
  append_record(params, RecordType::Params, 1, encode_params({{"QUERY_STRING", ""}}), 2);
  half.send_raw(params);
  FcgiClient silent(server.endpoint());

  CHECK_FALSE(half.read_record().has_value());
  CHECK_FALSE(silent.read_record().has_value());
  // Both were idle for longer than the busy connection has been running its request.
  handler.gate.open();
  const Response response = collect_one(busy, 1);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == "done");
  CHECK(handler.calls.load() == 1);
  server.stop();
}

TEST_CASE("request_timeout stops a running handler, and the connection goes on",
          "[integration][limits]") {
  CountingHandler handler;  // its gate never opens
  LogCapture log;
  Config config = test_config();
  config.request_timeout = 200ms;
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  const Response stopped = client.request({{"QUERY_STRING", "wait"}});
  REQUIRE(stopped.end.has_value());
  CHECK(stopped.end->protocol_status == ProtocolStatus::RequestComplete);
  // The handler's write after the stop is discarded: nothing of its response went out, so the
  // client gets the server's whole 503 instead.
  CHECK(parse_cgi_response(stopped.out).status == 503);
  CHECK(handler.stopped.load());
  CHECK(server.server().stats().requests_aborted == 1);
  CHECK(log.contains(LogLevel::Warning, "past request_timeout"));

  check_served(client);
  CHECK(server.server().stats().requests_completed == 1);
  server.stop();
}

TEST_CASE("2,000 idle connections are held open while requests keep being served",
          "[integration][limits]") {
  constexpr std::size_t kIdle = 2000;
  // Each connection takes a descriptor in the test and one in the server.
  constexpr rlim_t kDescriptors = 2 * kIdle + 256;
  rlimit limit{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur < kDescriptors) {
    if (limit.rlim_max < kDescriptors) {
      WARN("skipped: RLIMIT_NOFILE allows " << limit.rlim_max << " descriptors, not "
                                            << kDescriptors);
      return;
    }
    limit.rlim_cur = kDescriptors;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
  }
  echo::EchoHandler handler;
  TestServer server(handler);

  std::vector<FcgiClient> idle;
  idle.reserve(kIdle);
  for (std::size_t i = 1; i <= kIdle; ++i) {
    idle.emplace_back(server.endpoint());
    // Let the server keep up, so that the listen backlog never overflows.
    if (i % 250 == 0) {
      REQUIRE(eventually([&] { return server.server().stats().connections_open == i; }));
    }
  }
  FcgiClient active(server.endpoint());
  for (std::uint16_t id = 1; id <= 20; ++id) check_served(active, id);
  CHECK(server.server().stats().connections_open == kIdle + 1);
  CHECK(server.server().stats().connections_refused == 0);
  // The first and the last of them are still open and can be used.
  check_served(idle.front());
  check_served(idle.back());

  idle.clear();
  CHECK(eventually([&] { return server.server().stats().connections_open == 1; }));
  check_served(active);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
