// SPDX-License-Identifier: MIT
// Flow control: a request's unread body and a connection's unsent output stay within their
// budgets however much a client sends or refuses to read, and only that client is held back.

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <future>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "lambda_handler.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;
using namespace std::chrono_literals;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
// The most a handler's write adds to the output at once: one STDOUT record, header included.
constexpr std::size_t kOutputRecord = protocol::kHeaderSize + protocol::kMaxAlignedContentLength;
// The server's read buffer: what one read may bring in after the budget is full.
constexpr std::size_t kReadBuffer = 64 * kKiB;
// How often a test samples Server::stats() while a client is held back, a millisecond apart:
// time enough for a server without flow control to buffer megabytes.
constexpr int kSamples = 200;
// A 64 MiB transfer may take longer than one blocking step.
constexpr auto kTransferTimeout = 4 * kTimeout;

// `size` pseudo-random bytes, the same for the same `seed`, made eight at a time with
// splitmix64: bytes.hpp's pattern() takes half a second for 64 MiB.
std::string large_pattern(std::size_t size, std::uint64_t seed) {
  std::string bytes(size, '\0');
  std::uint64_t state = seed;
  for (std::size_t at = 0; at < size; at += sizeof state) {
    std::uint64_t word = state += 0x9e3779b97f4a7c15ULL;
    word = (word ^ (word >> 30)) * 0xbf58476d1ce4e5b9ULL;
    word = (word ^ (word >> 27)) * 0x94d049bb133111ebULL;
    word ^= word >> 31;
    std::memcpy(bytes.data() + at, &word, std::min(sizeof word, size - at));
  }
  return bytes;
}

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

// The answer to every request a test does not single out.
void answer_ok(fcgimux::Response& response) { response.write("ok"); }

// Sends request 1 with QUERY_STRING `query` and streams `body` one FCGI_STDIN record at a
// time, as a web server passes an upload on (no copy of a 64 MiB body is built first); then
// collects the response.
Response upload(FcgiClient& client, const std::string& query, std::string_view body) {
  client.send_begin_request(1, true);
  client.send_params(1, {{"QUERY_STRING", query}});
  std::string record;
  for (std::size_t at = 0; at < body.size(); at += protocol::kMaxAlignedContentLength) {
    const std::string_view piece = body.substr(at, protocol::kMaxAlignedContentLength);
    record.clear();
    append_record(record, RecordType::Stdin, 1, piece, protocol::padding_for(piece.size()));
    client.send_raw(record);
  }
  record.clear();
  append_record(record, RecordType::Stdin, 1, {}, 0);
  client.send_raw(record);
  const std::array ids{std::uint16_t{1}};
  return std::move(client.collect(ids).by_id.at(1));
}

// Sends a small request on `client` and checks that it is answered "ok".
void check_served(FcgiClient& client) {
  const Response response = client.request({{"QUERY_STRING", "ok"}});
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == "ok");
}

TEST_CASE("a 64 MiB upload to a handler that does not read yet is held to the body budget",
          "[integration][flow]") {
  const std::string body = large_pattern(64 * kMiB, 64);
  Gate gate;
  // Waits at the gate, then reads the whole body, compares it with what the client sent, and
  // answers how many bytes it read and how many of them matched.
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "upload") return answer_ok(response);
    gate.pass(request.stop_token());
    std::size_t size = 0;
    std::size_t intact = 0;
    std::array<char, 16 * kKiB> chunk;
    for (std::size_t n = request.read(chunk); n > 0; n = request.read(chunk)) {
      if (size + n <= body.size() && std::memcmp(chunk.data(), body.data() + size, n) == 0) {
        intact += n;
      }
      size += n;
    }
    response.print("read {} intact {}", size, intact);
  });
  Config config = test_config();
  config.request_body_budget = 256 * kKiB;
  TestServer server(handler, config);

  // The client's send blocks once the server stops reading: that is the point, so it runs on
  // a thread of its own.
  std::future<Response> uploaded = std::async(std::launch::async, [&] {
    FcgiClient client(server.endpoint());
    return upload(client, "upload", body);
  });
  REQUIRE(gate.wait_arrivals(1));
  REQUIRE(eventually(
      [&] { return server.server().stats().input_buffered >= config.request_body_budget; }));

  FcgiClient other(server.endpoint());
  std::uint64_t most_buffered = 0;
  for (int i = 0; i < kSamples; ++i) {
    most_buffered = std::max(most_buffered, server.server().stats().input_buffered);
    if (i % 20 == 0) check_served(other);
    std::this_thread::sleep_for(1ms);
  }
  CHECK(most_buffered <= config.request_body_budget + protocol::kMaxContentLength + kReadBuffer);
  CHECK(server.server().stats().bytes_in < body.size());
  CHECK(uploaded.wait_for(0s) == std::future_status::timeout);

  gate.open();
  REQUIRE(uploaded.wait_for(kTransferTimeout) == std::future_status::ready);
  const Response response = uploaded.get();
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body ==
        fmt::format("read {} intact {}", body.size(), body.size()));
  CHECK(eventually([&] { return server.server().stats().input_buffered == 0; }));
  server.stop();
}

TEST_CASE("a client that does not read a 64 MiB response holds its handler at the output budget",
          "[integration][flow]") {
  const std::string payload = large_pattern(64 * kMiB, 46);
  // The handler's stop token, handed over as it returns.
  std::promise<std::stop_token> returned;
  std::future<std::stop_token> outcome = returned.get_future();
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "download") return answer_ok(response);
    const std::string_view all = payload;
    for (std::size_t at = 0; at < all.size() && !request.stop_token().stop_requested();
         at += 64 * kKiB) {
      response.write(all.substr(at, 64 * kKiB));
    }
    returned.set_value(request.stop_token());
  });
  Config config = test_config();
  config.connection_output_budget = 256 * kKiB;
  TestServer server(handler, config);

  std::optional<FcgiClient> reader(std::in_place, server.endpoint());
  reader->send_request({{"QUERY_STRING", "download"}}, {});
  REQUIRE(eventually(
      [&] { return server.server().stats().output_buffered >= config.connection_output_budget; }));

  // Every worker may be writing, each past the budget by at most one record.
  FcgiClient other(server.endpoint());
  std::uint64_t most_buffered = 0;
  for (int i = 0; i < kSamples; ++i) {
    most_buffered = std::max(most_buffered, server.server().stats().output_buffered);
    if (i % 20 == 0) check_served(other);
    std::this_thread::sleep_for(1ms);
  }
  CHECK(most_buffered <= config.connection_output_budget + config.workers * kOutputRecord);
  CHECK(outcome.wait_for(0s) == std::future_status::timeout);

  SECTION("then the client reads the whole response, intact") {
    const std::array ids{std::uint16_t{1}};
    const Response response = std::move(reader->collect(ids).by_id.at(1));
    REQUIRE(complete(response));
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.body.size() == payload.size());
    const bool intact = cgi.body == payload;  // not in CHECK(): it would print 64 MiB twice
    CHECK(intact);
    REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
    CHECK_FALSE(outcome.get().stop_requested());
  }
  SECTION("then the client closes, the handler's stop token fires and it returns") {
    reader.reset();
    REQUIRE(outcome.wait_for(kTimeout) == std::future_status::ready);
    // The server stops the request before the closed connection releases its blocked write,
    // so the handler leaves its loop at once, with the token already fired.
    CHECK(outcome.get().stop_requested());
    CHECK(eventually([&] { return server.server().stats().requests_aborted == 1; }));
  }
  CHECK(eventually([&] { return server.server().stats().output_buffered == 0; }));
  server.stop();
}

TEST_CASE("a handler that answers without reading the body frees it and the connection goes on",
          "[integration][flow]") {
  const std::string body = large_pattern(16 * kMiB, 16);
  Gate gate;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "early") return answer_ok(response);
    gate.pass(request.stop_token());
    response.write("early");
  });
  Config config = test_config();
  config.request_body_budget = 256 * kKiB;
  TestServer server(handler, config);

  // One keep-alive connection: the early answer, then a second request after the whole body.
  std::future<std::pair<Response, Response>> exchange = std::async(std::launch::async, [&] {
    FcgiClient client(server.endpoint());
    Response early = upload(client, "early", body);
    Response next = client.request({{"QUERY_STRING", "ok"}});
    return std::pair(std::move(early), std::move(next));
  });
  // The handler answers once the server holds a full budget of the body it never reads.
  REQUIRE(gate.wait_arrivals(1));
  REQUIRE(eventually(
      [&] { return server.server().stats().input_buffered >= config.request_body_budget; }));
  gate.open();

  REQUIRE(exchange.wait_for(kTransferTimeout) == std::future_status::ready);
  const auto [early, next] = exchange.get();
  REQUIRE(complete(early));
  CHECK(parse_cgi_response(early.out).body == "early");
  REQUIRE(complete(next));
  CHECK(parse_cgi_response(next.out).body == "ok");
  CHECK(eventually([&] { return server.server().stats().input_buffered == 0; }));
  // The server read the body through to its end, and dropped it.
  CHECK(server.server().stats().bytes_in > body.size());
  CHECK(server.server().stats().connections_accepted == 1);
  server.stop();
}

TEST_CASE("responses stay whole when the socket fills, and workers wait at the output budget",
          "[integration][flow]") {
  // 200 requests at once on one connection whose client reads nothing at first: workers send
  // what the socket takes, queue the rest up to the budget, then wait; a response is cut
  // anywhere by a full socket, its rest written by the I/O thread, the next behind it.
  constexpr std::uint16_t kRequests = 200;
  constexpr std::size_t kSize = 60000;
  const auto body_for = [&](std::uint16_t n) { return large_pattern(kSize + n, n); };
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    const std::string query(request.param("QUERY_STRING").value_or(""));
    if (query == "ok") return answer_ok(response);
    response.write(body_for(static_cast<std::uint16_t>(std::stoi(query))));
  });
  Config config = test_config();
  config.max_requests_per_connection = kRequests;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());
  std::vector<std::uint16_t> ids;
  std::string requests;
  for (std::uint16_t n = 1; n <= kRequests; ++n) {
    protocol::append_begin_request(requests, n, 1, protocol::kKeepConn);
    append_stream(requests, RecordType::Params, n,
                  encode_params({{"QUERY_STRING", std::to_string(n)}}));
    append_stream(requests, RecordType::Stdin, n, "");
    ids.push_back(n);
  }
  client.send_raw(requests);
  // The socket's buffers fill up and the rest waits within the budget: what workers hold
  // back is at most one record each past it.
  REQUIRE(eventually(
      [&] { return server.server().stats().output_buffered >= config.connection_output_budget; }));
  CHECK(server.server().stats().output_buffered <=
        config.connection_output_budget + config.workers * (kSize + kRequests + 64));
  const Responses responses = client.collect(ids);
  for (const std::uint16_t n : ids) {
    const Response& response = responses.by_id.at(n);
    REQUIRE(complete(response));
    CHECK(parse_cgi_response(response.out).body == body_for(n));
  }
  check_served(client);
  CHECK(server.server().stats().connections_accepted == 1);
  CHECK(eventually([&] { return server.server().stats().output_buffered == 0; }));
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
