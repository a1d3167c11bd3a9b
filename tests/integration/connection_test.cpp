// SPDX-License-Identifier: MIT
// One connection, many requests: keep-alive, closing without FCGI_KEEP_CONN, multiplexing,
// and a handler failure that must not cost the connection.

#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bytes.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

TEST_CASE("one keep-alive connection serves 1,000 requests in a row", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  for (int i = 0; i < 1000; ++i) {
    const Params params{{"REQUEST_NUMBER", std::to_string(i)}, {"QUERY_STRING", ""}};
    const Response response = client.request(params);
    REQUIRE(complete(response));
    const CgiResponse cgi = parse_cgi_response(response.out);
    REQUIRE(cgi.status == 200);
    REQUIRE(cgi.body == expected_listing(params));
  }
  CHECK(server.server().stats().connections_accepted == 1);
  server.stop();
}

TEST_CASE("a connection without FCGI_KEEP_CONN is closed after its END_REQUEST", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  RequestOptions options;
  options.keep_conn = false;
  const Response response = client.request({{"QUERY_STRING", "size=10"}}, {}, options);

  CHECK(complete(response));
  CHECK(parse_cgi_response(response.out).body == "xxxxxxxxxx");
  // Nothing more comes: the next read sees the server close the connection.
  CHECK_FALSE(client.read_record().has_value());
  server.stop();
}

TEST_CASE("64 requests interleaved on one connection are each answered correctly",
          "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  // Odd ids send a body of their own; even ids send none and get their params back.
  constexpr std::uint16_t kRequests = 64;
  std::vector<std::uint16_t> ids;
  std::vector<std::string> expected(kRequests + 1);
  std::vector<std::deque<std::string>> records(kRequests + 1);
  for (std::uint16_t id = 1; id <= kRequests; ++id) {
    ids.push_back(id);
    const Params params{{"QUERY_STRING", ""}, {"REQUEST_TAG", "request-" + std::to_string(id)}};
    const std::string body = id % 2 == 1 ? pattern(id * 1000U, id) : "";
    expected[id] = body.empty() ? expected_listing(params) : body;

    std::string begin;
    protocol::append_begin_request(begin, id, static_cast<std::uint16_t>(Role::Responder),
                                   protocol::kKeepConn);
    auto& queue = records[id];
    queue.push_back(begin);
    for (auto& record : stream_records(RecordType::Params, id, encode_params(params),
                                       {.record_sizes = {5, 11}, .padding = std::nullopt})) {
      queue.push_back(std::move(record));
    }
    for (auto& record :
         stream_records(RecordType::Stdin, id, body, {.record_sizes = {7, 8191}, .padding = 1})) {
      queue.push_back(std::move(record));
    }
  }
  // Round-robin, one record per request at a time: no request's records are contiguous.
  std::string wire;
  for (bool more = true; more;) {
    more = false;
    for (auto& queue : records) {
      if (queue.empty()) continue;
      wire += queue.front();
      queue.pop_front();
      more = true;
    }
  }
  client.send_raw(wire);
  const Responses responses = client.collect(ids);

  for (const std::uint16_t id : ids) {
    CAPTURE(id);
    const Response& response = responses.by_id.at(id);
    CHECK(complete(response));
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.status == 200);
    CHECK(first_mismatch(cgi.body, expected[id]) == std::string::npos);
  }
  server.stop();
}

TEST_CASE("a slow request does not hold up a fast one on the same connection", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  RequestOptions slow;
  slow.id = 1;
  RequestOptions fast;
  fast.id = 2;
  client.send_request({{"QUERY_STRING", "sleep_ms=500&size=4"}}, {}, slow);
  client.send_request({{"QUERY_STRING", "size=2"}}, {}, fast);
  const std::vector<std::uint16_t> ids{1, 2};
  const Responses responses = client.collect(ids);

  CHECK(responses.end_order == std::vector<std::uint16_t>{2, 1});
  CHECK(complete(responses.by_id.at(1)));
  CHECK(complete(responses.by_id.at(2)));
  CHECK(parse_cgi_response(responses.by_id.at(1).out).body == "xxxx");
  CHECK(parse_cgi_response(responses.by_id.at(2).out).body == "xx");
  server.stop();
}

TEST_CASE("an aborted sleep_ms request ends at once instead of sleeping on", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  // A minute is far past kTimeout: only the abort can end this request in time.
  client.send_begin_request(1, true);
  client.send_params(1, {{"QUERY_STRING", "sleep_ms=60000"}});
  client.send_stdin(1, {});
  client.send_abort(1);
  const std::vector<std::uint16_t> ids{1};
  const Responses responses = client.collect(ids);

  REQUIRE(responses.by_id.at(1).end.has_value());
  CHECK(responses.by_id.at(1).end->protocol_status == ProtocolStatus::RequestComplete);
  // The connection goes on.
  const Params params{{"QUERY_STRING", ""}};
  const Response next = client.request(params);
  CHECK(complete(next));
  CHECK(parse_cgi_response(next.out).body == expected_listing(params));
  server.stop();
}

// Throws for QUERY_STRING "throw"; echoes otherwise.
class ThrowingHandler : public Handler {
 public:
  void handle(Request& request, fcgimux::Response& response) override {
    if (request.param("QUERY_STRING") == "throw") throw std::runtime_error("thrown by the test");
    echo_.handle(request, response);
  }

 private:
  echo::EchoHandler echo_;
};

TEST_CASE("a handler that throws gets a 500 and the connection serves the next request",
          "[integration]") {
  std::mutex mutex;
  std::vector<std::string> errors;  // Guarded by mutex.
  Config config = test_config();
  config.log = [&](LogLevel level, std::string_view line) {
    const std::lock_guard lock(mutex);
    if (level == LogLevel::Error) errors.emplace_back(line);
  };
  ThrowingHandler handler;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  const Response failed = client.request({{"QUERY_STRING", "throw"}});
  CHECK(complete(failed));
  CHECK(parse_cgi_response(failed.out).status == 500);

  const Params params{{"QUERY_STRING", "next"}};
  const Response next = client.request(params);
  CHECK(complete(next));
  const CgiResponse cgi = parse_cgi_response(next.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body == expected_listing(params));

  server.stop();
  const std::lock_guard lock(mutex);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors.front(), Catch::Contains("thrown by the test"));
}

}  // namespace
}  // namespace fcgimux::test
