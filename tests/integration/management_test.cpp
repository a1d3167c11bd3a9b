// SPDX-License-Identifier: MIT
// Management records (FastCGI 1.0 §4) are the I/O thread's business: they are answered at once
// even while every worker is busy and more requests wait in the queue. And request ids
// (§3.3) are any number from 1 to 65535, in any order.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "test_server.hpp"
#include "wire.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;

constexpr unsigned kWorkers = 2;

// The echo contract behind a gate: every request waits there until the test opens it.
// Threading: Thread-safe.
class GatedEcho : public Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    gate.pass(request.stop_token());
    echo_.handle(request, response);
  }

  Gate gate;

 private:
  echo::EchoHandler echo_;
};

Params params_for(std::uint16_t id) {
  return {{"QUERY_STRING", ""}, {"REQUEST_ID", std::to_string(id)}};
}

// Sends request `id` (no body, FCGI_KEEP_CONN) without waiting for its answer.
void send_request(FcgiClient& client, std::uint16_t id) {
  RequestOptions options;
  options.id = id;
  client.send_request(params_for(id), {}, options);
}

// Holds every worker of `server` in `handler` and queues one more request, all on `client`.
// Returns their ids.
std::vector<std::uint16_t> occupy_workers(FcgiClient& client, GatedEcho& handler,
                                          TestServer& server) {
  std::vector<std::uint16_t> ids;
  for (std::uint16_t id = 1; id <= kWorkers + 1; ++id) {
    send_request(client, id);
    ids.push_back(id);
  }
  REQUIRE(handler.gate.wait_arrivals(kWorkers));
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));
  return ids;
}

// Opens the gate and checks that each request in `ids` was answered with its own params.
void release_and_check(FcgiClient& client, GatedEcho& handler,
                       const std::vector<std::uint16_t>& ids) {
  handler.gate.open();
  const Responses responses = client.collect(ids);
  for (const std::uint16_t id : ids) {
    CAPTURE(id);
    const Response& response = responses.by_id.at(id);
    REQUIRE(response.end.has_value());
    CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
    CHECK(parse_cgi_response(response.out).body == expected_listing(params_for(id)));
  }
}

// Reads the next record, which must be a management record of `type`, and returns its content.
std::string read_management_record(FcgiClient& client, RecordType type) {
  const std::optional<ReceivedRecord> record = client.read_record();
  REQUIRE(record.has_value());
  CHECK(record->header.type == type);
  CHECK(record->header.request_id == protocol::kNullRequestId);
  return record->content;
}

TEST_CASE("FCGI_GET_VALUES is answered from the live Config while every worker is busy",
          "[integration][management]") {
  const bool multiplex = GENERATE(true, false);
  CAPTURE(multiplex);
  GatedEcho handler;
  Config config = test_config();
  config.workers = kWorkers;
  config.max_connections = 321;
  config.max_requests = 54;
  config.multiplex = multiplex;
  TestServer server(handler, config);

  // Without multiplexing each held request needs a connection of its own.
  std::vector<FcgiClient> busy;
  busy.reserve(kWorkers + 1);
  std::vector<std::vector<std::uint16_t>> busy_ids;
  if (multiplex) {
    busy.emplace_back(server.endpoint());
    busy_ids.push_back(occupy_workers(busy.back(), handler, server));
  } else {
    for (unsigned i = 0; i <= kWorkers; ++i) {
      busy.emplace_back(server.endpoint());
      send_request(busy.back(), 1);
      busy_ids.push_back({1});
    }
    REQUIRE(handler.gate.wait_arrivals(kWorkers));
    REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));
  }

  // FastCGI 1.0 §4.1: the names asked, in any order, unknown ones among them; the answer holds
  // the known ones only, with the values the application uses.
  const std::vector<std::string_view> names{"FCGI_NO_SUCH_VARIABLE", protocol::kMpxsConns,
                                            protocol::kMaxReqs, "fcgi_max_conns",
                                            protocol::kMaxConns};
  std::string query;
  protocol::append_get_values(query, names);
  std::vector<protocol::NameValue> expected{{protocol::kMaxConns, "321"},
                                            {protocol::kMaxReqs, "54"},
                                            {protocol::kMpxsConns, multiplex ? "1" : "0"}};
  std::sort(expected.begin(), expected.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });

  // On the busy connection and on a new one: both are answered at once.
  FcgiClient fresh(server.endpoint());
  for (FcgiClient* client : {&busy.front(), &fresh}) {
    client->send_raw(query);
    const std::string content = read_management_record(*client, RecordType::GetValuesResult);
    std::vector<protocol::NameValue> values;
    REQUIRE(protocol::parse_name_values(content, values) == protocol::Error::None);
    std::sort(values.begin(), values.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    CHECK(values == expected);
  }
  CHECK(server.server().stats().requests_running == kWorkers);

  for (std::size_t i = 0; i < busy.size(); ++i) release_and_check(busy[i], handler, busy_ids[i]);
  server.stop();
}

TEST_CASE("FCGI_GET_VALUES asking for nothing known is answered with an empty result",
          "[integration][management]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  const std::vector<std::string_view> names{"FCGI_NO_SUCH_VARIABLE"};
  for (const std::vector<std::string_view>& asked : {std::vector<std::string_view>{}, names}) {
    std::string query;
    protocol::append_get_values(query, asked);
    client.send_raw(query);
    CHECK(read_management_record(client, RecordType::GetValuesResult).empty());
  }
  server.stop();
}

TEST_CASE("any other management record type is answered FCGI_UNKNOWN_TYPE while workers are busy",
          "[integration][management]") {
  // Every type but FCGI_GET_VALUES: the defined ones mean nothing on the null request id
  // (§3.3: management records use it), and the undefined ones mean nothing anywhere.
  const auto type = GENERATE(as<std::uint8_t>{}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 128, 255);
  CAPTURE(type);
  GatedEcho handler;
  Config config = test_config();
  config.workers = kWorkers;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());
  const std::vector<std::uint16_t> ids = occupy_workers(client, handler, server);

  // A BEGIN_REQUEST-sized body, so that a server reading it as one would find it well formed.
  std::string record;
  append_record(record, static_cast<RecordType>(type), protocol::kNullRequestId,
                hex("00 01 01 00 00 00 00 00"), 0);
  client.send_raw(record);
  const std::string content = read_management_record(client, RecordType::UnknownType);
  std::uint8_t named = 0;
  REQUIRE(protocol::parse_unknown_type(bytes_of(content), named) == protocol::Error::None);
  CHECK(named == type);
  // §4.2: the body is the type and seven reserved zero bytes.
  CHECK(content == hex("00 00 00 00 00 00 00 00").replace(0, 1, 1, static_cast<char>(type)));

  release_and_check(client, handler, ids);
  server.stop();
}

TEST_CASE("request ids anywhere in 1..65535 are served interleaved in any order",
          "[integration][management]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  const std::vector<std::uint16_t> ids{65535, 1, 40000, 2, 32768, 256, 65534, 255};

  // Every BEGIN_REQUEST first, then the PARAMS records of all requests in turn, a few bytes
  // each, then the STDIN ends, last id first.
  std::string wire;
  for (const std::uint16_t id : ids) {
    protocol::append_begin_request(wire, id, static_cast<std::uint16_t>(Role::Responder),
                                   protocol::kKeepConn);
  }
  std::vector<std::vector<std::string>> params_records;
  for (const std::uint16_t id : ids) {
    params_records.push_back(stream_records(RecordType::Params, id, encode_params(params_for(id)),
                                            {.record_sizes = {3, 5}, .padding = std::nullopt}));
  }
  for (std::size_t turn = 0;; ++turn) {
    bool sent = false;
    for (const std::vector<std::string>& records : params_records) {
      if (turn < records.size()) {
        wire += records[turn];
        sent = true;
      }
    }
    if (!sent) break;
  }
  for (auto id = ids.rbegin(); id != ids.rend(); ++id) {
    append_stream(wire, RecordType::Stdin, *id, {});
  }
  client.send_raw(wire);

  const Responses responses = client.collect(ids);
  for (const std::uint16_t id : ids) {
    CAPTURE(id);
    const Response& response = responses.by_id.at(id);
    REQUIRE(response.end.has_value());
    CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
    CHECK(parse_cgi_response(response.out).body == expected_listing(params_for(id)));
  }

  // §3.3: an id is inactive again after its END_REQUEST, and may be used again.
  for (const std::uint16_t id : {std::uint16_t{65535}, std::uint16_t{1}}) {
    RequestOptions options;
    options.id = id;
    const Response response = client.request(params_for(id), {}, options);
    REQUIRE(response.end.has_value());
    CHECK(parse_cgi_response(response.out).body == expected_listing(params_for(id)));
  }
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
