// SPDX-License-Identifier: MIT
// Admission: at most Config::max_requests requests are running or queued; the rest are
// answered at once, and a queued request that waited too long or was aborted never runs.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
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
using protocol::RecordType;

// Answers "done" to QUERY_STRING "wait" once the test opens the gate, "ok" to anything else,
// and counts the requests that reached it.
// Threading: Thread-safe.
class WaitingHandler : public Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    ++calls;
    if (request.param("QUERY_STRING") == "wait") {
      gate.pass(request.stop_token());
      response.write("done");
    } else {
      response.write("ok");
    }
  }

  Gate gate;
  std::atomic<std::size_t> calls{0};
};

// The wire bytes of a request with id `id` and QUERY_STRING `query`, without a body.
std::string request_bytes(std::uint16_t id, const std::string& query) {
  std::string out;
  protocol::append_begin_request(out, id, static_cast<std::uint16_t>(Role::Responder),
                                 protocol::kKeepConn);
  append_stream(out, RecordType::Params, id, encode_params({{"QUERY_STRING", query}}));
  append_stream(out, RecordType::Stdin, id, {});
  return out;
}

Response collect_one(FcgiClient& client, std::uint16_t id) {
  const std::vector<std::uint16_t> ids{id};
  return std::move(client.collect(ids).by_id.at(id));
}

bool complete_with(const Response& response, std::string_view body) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete &&
         parse_cgi_response(response.out).body == body;
}

// END_REQUEST with FCGI_OVERLOADED, and no output.
bool overloaded(const Response& response) {
  return response.out.empty() && !response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::Overloaded;
}

// A complete "503 Service Unavailable" that tells the client when to retry.
bool http_503(const Response& response) {
  if (!response.out_ended || !response.end ||
      response.end->protocol_status != ProtocolStatus::RequestComplete) {
    return false;
  }
  const CgiResponse cgi = parse_cgi_response(response.out);
  return cgi.status == 503 && cgi.header("Retry-After").has_value();
}

TEST_CASE("1,000 requests against max_requests 8: the overflow is answered at once, the rest run",
          "[integration][admission]") {
  WaitingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_requests = 8;
  config.overload_reply = OverloadReply::Automatic;
  config.log = log.sink();
  TestServer server(handler, config);

  // A multiplexing connection fills every admission: 4 requests run, 4 wait for a worker.
  FcgiClient mux(server.endpoint());
  std::string wire;
  for (std::uint16_t id = 1; id <= 8; ++id) wire += request_bytes(id, "wait");
  mux.send_raw(wire);
  REQUIRE(eventually([&] { return server.server().stats().requests_admitted == 8; }));
  REQUIRE(handler.gate.wait_arrivals(config.workers));

  // 192 more on that connection: it carries other requests, so FCGI_OVERLOADED.
  wire.clear();
  std::vector<std::uint16_t> overflow_ids;
  for (std::uint16_t id = 9; id <= 200; ++id) {
    wire += request_bytes(id, "wait");
    overflow_ids.push_back(id);
  }
  mux.send_raw(wire);
  const Responses refused = mux.collect(overflow_ids);
  for (const std::uint16_t id : overflow_ids) {
    CAPTURE(id);
    CHECK(overloaded(refused.by_id.at(id)));
  }

  // 8 connections, each sending 100 requests one after another as a web server that does not
  // multiplex would (always id 1): each carries only that request, so an HTTP 503.
  std::size_t answered_503 = 0;
  for (int c = 0; c < 8; ++c) {
    FcgiClient client(server.endpoint());
    wire.clear();
    for (int i = 0; i < 100; ++i) wire += request_bytes(1, "wait");
    client.send_raw(wire);
    for (int i = 0; i < 100; ++i) {
      if (http_503(collect_one(client, 1))) ++answered_503;
    }
  }
  CHECK(answered_503 == 800);
  // All 992 were answered while the 8 admitted requests were still held in their handlers.
  CHECK(handler.calls.load() == config.workers);
  CHECK(server.server().stats().requests_completed == 0);
  CHECK(server.server().stats().requests_overloaded == 992);
  CHECK(log.contains(LogLevel::Warning, "refused: overloaded"));

  handler.gate.open();
  const std::vector<std::uint16_t> admitted_ids{1, 2, 3, 4, 5, 6, 7, 8};
  const Responses admitted = mux.collect(admitted_ids);
  for (const std::uint16_t id : admitted_ids) {
    CAPTURE(id);
    CHECK(complete_with(admitted.by_id.at(id), "done"));
  }
  REQUIRE(eventually([&] { return server.server().stats().requests_completed == 8; }));
  const Stats stats = server.server().stats();
  CHECK(stats.requests_admitted == 8);
  CHECK(stats.requests_overloaded == 992);
  CHECK(stats.requests_failed == 0);
  CHECK(stats.requests_aborted == 0);
  CHECK(handler.calls.load() == 8);
  server.stop();
}

TEST_CASE("OverloadReply::ProtocolStatus answers FCGI_OVERLOADED on a one-request connection",
          "[integration][admission]") {
  WaitingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_requests = 1;
  config.overload_reply = OverloadReply::ProtocolStatus;
  config.log = log.sink();
  TestServer server(handler, config);

  FcgiClient busy(server.endpoint());
  busy.send_raw(request_bytes(1, "wait"));
  REQUIRE(handler.gate.wait_arrivals(1));

  FcgiClient single(server.endpoint());
  single.send_raw(request_bytes(1, "ok"));
  CHECK(overloaded(collect_one(single, 1)));

  handler.gate.open();
  CHECK(complete_with(collect_one(busy, 1), "done"));
  // Once admission has room, the refused client's connection serves its next request.
  REQUIRE(eventually([&] { return server.server().stats().requests_completed == 1; }));
  single.send_raw(request_bytes(1, "ok"));
  CHECK(complete_with(collect_one(single, 1), "ok"));
  CHECK(server.server().stats().requests_overloaded == 1);
  server.stop();
}

TEST_CASE("OverloadReply::Http503 answers 503 with Retry-After on a multiplexed connection",
          "[integration][admission]") {
  WaitingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.max_requests = 1;
  config.overload_reply = OverloadReply::Http503;
  config.log = log.sink();
  TestServer server(handler, config);

  FcgiClient mux(server.endpoint());
  mux.send_raw(request_bytes(1, "wait"));
  REQUIRE(handler.gate.wait_arrivals(1));
  mux.send_raw(request_bytes(2, "ok"));
  CHECK(http_503(collect_one(mux, 2)));

  handler.gate.open();
  CHECK(complete_with(collect_one(mux, 1), "done"));
  CHECK(handler.calls.load() == 1);
  CHECK(server.server().stats().requests_overloaded == 1);
  server.stop();
}

TEST_CASE("a request that waited past queue_timeout is answered 503 without running",
          "[integration][admission]") {
  std::atomic<std::size_t> calls{0};
  echo::EchoHandler echo;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    ++calls;
    echo.handle(request, response);
  });
  LogCapture log;
  Config config = test_config();
  config.workers = 1;
  config.queue_timeout = std::chrono::milliseconds(100);
  config.log = log.sink();
  TestServer server(handler, config);

  // The only worker is busy for 400 ms; a request queued meanwhile waits for it that long.
  FcgiClient slow(server.endpoint());
  slow.send_request({{"QUERY_STRING", "sleep_ms=400&size=4"}}, {});
  REQUIRE(eventually([&] { return server.server().stats().requests_running == 1; }));
  FcgiClient queued(server.endpoint());
  queued.send_request({{"QUERY_STRING", "size=2"}}, {});
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));

  CHECK(http_503(collect_one(queued, 1)));
  CHECK(complete_with(collect_one(slow, 1), "xxxx"));
  CHECK(calls.load() == 1);
  CHECK(log.contains(LogLevel::Warning, "in the queue: answered 503"));

  // A request that finds the worker free runs, on the same connection.
  CHECK(complete_with(queued.request({{"QUERY_STRING", "size=2"}}), "xx"));
  CHECK(calls.load() == 2);
  const Stats stats = server.server().stats();
  CHECK(stats.requests_admitted == 3);
  CHECK(stats.requests_completed == 2);
  CHECK(stats.requests_failed == 1);
  server.stop();
}

TEST_CASE("a queued request that is aborted is discarded and gets one END_REQUEST at once",
          "[integration][admission]") {
  WaitingHandler handler;
  Config config = test_config();
  config.workers = 1;
  TestServer server(handler, config);

  FcgiClient busy(server.endpoint());
  busy.send_raw(request_bytes(1, "wait"));
  REQUIRE(handler.gate.wait_arrivals(1));
  FcgiClient client(server.endpoint());
  client.send_raw(request_bytes(1, "ok"));
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));

  // Answered while the only worker is still held: the request left the queue.
  client.send_abort(1);
  const Response aborted = collect_one(client, 1);
  REQUIRE(aborted.end.has_value());
  CHECK(aborted.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(aborted.out.empty());
  CHECK(server.server().stats().requests_completed == 0);
  CHECK(server.server().stats().requests_queued == 0);
  CHECK(server.server().stats().requests_aborted == 1);

  handler.gate.open();
  CHECK(complete_with(collect_one(busy, 1), "done"));
  // Another id on the same connection: collect() fails on any late record for id 1.
  client.send_raw(request_bytes(2, "ok"));
  CHECK(complete_with(collect_one(client, 2), "ok"));
  CHECK(handler.calls.load() == 2);
  const Stats stats = server.server().stats();
  CHECK(stats.requests_admitted == 3);
  CHECK(stats.requests_completed == 2);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
