// SPDX-License-Identifier: MIT
// Bad input ends one request (with the answer the specification asks for) or one connection,
// cleanly; another connection of the same server keeps working throughout. Management records
// are answered from the live Config.

#include <atomic>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"
#include "wire.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;

// The echo contract, counting the requests that reach it.
// Threading: Thread-safe.
class CountingEcho : public Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    ++calls;
    echo_.handle(request, response);
  }

  std::atomic<std::size_t> calls{0};

 private:
  echo::EchoHandler echo_;
};

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

// Sends request `id` without a body and checks the echo of its params. collect() fails on a
// record for any other id, so this also proves that nothing else came on the connection.
void check_served(FcgiClient& client, std::uint16_t id = 1) {
  CAPTURE(id);
  const Params params{{"QUERY_STRING", ""}, {"REQUEST_ID", std::to_string(id)}};
  RequestOptions options;
  options.id = id;
  const Response response = client.request(params, {}, options);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

// A test Config whose log goes to `log`: the warnings these tests provoke are expected.
Config quiet_config(LogCapture& log) {
  Config config = test_config();
  config.log = log.sink();
  return config;
}

std::string begin_request(std::uint16_t id, std::uint16_t role = 1) {
  std::string out;
  protocol::append_begin_request(out, id, role, protocol::kKeepConn);
  return out;
}

std::string record(RecordType type, std::uint16_t id, std::string_view content) {
  std::string out;
  append_record(out, type, id, content, protocol::padding_for(content.size()));
  return out;
}

std::string record(std::uint8_t type, std::uint16_t id, std::string_view content) {
  return record(static_cast<RecordType>(type), id, content);
}

TEST_CASE("input that breaks the protocol closes its own connection and no other",
          "[integration][bad-input]") {
  const auto [what, bytes] = GENERATE(table<std::string, std::string>({
      {"a header of version 2", hex("02 01 00 01 00 08 00 00  00 01 01 00 00 00 00 00")},
      {"an unknown record type on an active request", begin_request(1) + record(42, 1, "abc")},
      {"FCGI_STDOUT sent by the client", begin_request(1) + record(RecordType::Stdout, 1, "x")},
      {"FCGI_END_REQUEST sent by the client",
       begin_request(1) + record(RecordType::EndRequest, 1, std::string(8, '\0'))},
      {"FCGI_BEGIN_REQUEST with 7 content bytes",
       record(RecordType::BeginRequest, 1, hex("00 01 01 00 00 00 00"))},
      {"FCGI_BEGIN_REQUEST with 9 content bytes",
       record(RecordType::BeginRequest, 1, hex("00 01 01 00 00 00 00 00 00"))},
      {"a second FCGI_BEGIN_REQUEST for an active id", begin_request(1) + begin_request(1)},
      {"FCGI_STDIN before the end of FCGI_PARAMS",
       begin_request(1) + record(RecordType::Params, 1, hex("01 01") + "AB") +
           record(RecordType::Stdin, 1, "body")},
      {"FCGI_GET_VALUES with a name that runs past the record",
       record(RecordType::GetValues, 0, hex("0e 00") + "FCGI_MAX")},
  }));
  CAPTURE(what);
  CountingEcho handler;
  LogCapture log;
  TestServer server(handler, quiet_config(log));
  FcgiClient bystander(server.endpoint());
  check_served(bystander);

  FcgiClient client(server.endpoint());
  client.send_raw(bytes);
  CHECK_FALSE(client.read_record().has_value());
  // The bystander is connection 1; a warning says why connection 2 was closed.
  CHECK(log.contains(LogLevel::Warning, "conn 2: closed: "));
  CHECK(eventually([&] { return server.server().stats().connections_open == 1; }));
  check_served(bystander, 2);
  CHECK(handler.calls.load() == 2);
  server.stop();
}

TEST_CASE("records for request ids that are not active are ignored and the connection goes on",
          "[integration][bad-input]") {
  CountingEcho handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  // Request 9 never began; request 1 has not begun yet.
  client.send_raw(record(RecordType::Params, 9, encode_params({{"QUERY_STRING", ""}})) +
                  record(RecordType::Params, 9, {}) + record(RecordType::Stdin, 9, "body") +
                  record(RecordType::Stdin, 9, {}) + record(RecordType::Data, 9, "data") +
                  record(RecordType::AbortRequest, 9, {}) +
                  record(RecordType::AbortRequest, 1, {}) + record(RecordType::Stdin, 1, "x"));
  check_served(client, 1);
  check_served(client, 9);
  CHECK(handler.calls.load() == 2);
  server.stop();
}

TEST_CASE("a truncated record and then a close end only that connection",
          "[integration][bad-input]") {
  // Cut inside the header of the PARAMS record, then inside its content.
  const std::size_t cut = GENERATE(as<std::size_t>{}, 5, 12);
  CAPTURE(cut);
  CountingEcho handler;
  TestServer server(handler);
  FcgiClient bystander(server.endpoint());
  check_served(bystander);

  Socket socket = Socket::connect(server.endpoint());
  std::string received;
  const std::string params =
      record(RecordType::Params, 1, encode_params({{"QUERY_STRING", "0123456789"}}));
  socket.send_all(begin_request(1) + params.substr(0, cut), received);
  socket.shutdown_write();
  CHECK_FALSE(socket.receive(received));
  CHECK(received.empty());
  CHECK(eventually([&] { return server.server().stats().connections_open == 1; }));
  check_served(bystander, 2);
  CHECK(handler.calls.load() == 2);
  server.stop();
}

TEST_CASE(
    "name-value lengths that run past their block are answered 400 and the connection "
    "goes on",
    "[integration][bad-input]") {
  const std::string block = GENERATE(hex("0a 05") + "abc",           // a name of 10 bytes
                                     hex("03 81 00 00 00") + "abc",  // a value of 16 MiB
                                     hex("0c 00") + "QUERY_STRING" + hex("80 00"));  // a cut length
  CAPTURE(block);
  CountingEcho handler;
  LogCapture log;
  TestServer server(handler, quiet_config(log));
  FcgiClient bystander(server.endpoint());
  FcgiClient client(server.endpoint());

  std::string wire = begin_request(1);
  append_stream(wire, RecordType::Params, 1, block);
  append_stream(wire, RecordType::Stdin, 1, {});
  client.send_raw(wire);
  const std::vector<std::uint16_t> ids{1};
  const Response response = client.collect(ids).by_id.at(1);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).status == 400);
  CHECK(handler.calls.load() == 0);
  CHECK(log.contains(LogLevel::Warning, "conn 2 req 1: refused: bad params"));

  check_served(client);
  check_served(bystander);
  CHECK(server.server().stats().requests_refused == 1);
  server.stop();
}

TEST_CASE("params far past max_params_bytes are answered 431 and the connection goes on",
          "[integration][bad-input]") {
  CountingEcho handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.max_params_bytes = 1024;
  TestServer server(handler, config);
  FcgiClient bystander(server.endpoint());
  FcgiClient client(server.endpoint());

  RequestOptions options;
  options.params = {.record_sizes = {1000}, .padding = std::nullopt};
  const Response response =
      client.request({{"QUERY_STRING", ""}, {"HUGE", std::string(64 * 1024, 'h')}}, {}, options);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).status == 431);
  CHECK(handler.calls.load() == 0);
  CHECK(log.contains(LogLevel::Warning, "conn 2 req 1: refused: params larger"));

  check_served(client);
  check_served(bystander);
  server.stop();
}

TEST_CASE("FCGI_GET_VALUES is answered from the live Config, unknown names left out",
          "[integration][bad-input]") {
  const bool multiplex = GENERATE(true, false);
  CAPTURE(multiplex);
  CountingEcho handler;
  Config config = test_config();
  config.max_connections = 123;
  config.max_requests = 45;
  config.max_requests_per_connection = 6;
  config.multiplex = multiplex;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  // FastCGI 1.0 §4.1: one GET_VALUES record on the null request id, names without values.
  const std::vector<std::string_view> names{protocol::kMaxConns, "FCGI_NO_SUCH_VARIABLE",
                                            protocol::kMaxReqs, protocol::kMpxsConns};
  std::string query;
  protocol::append_get_values(query, names);
  client.send_raw(query);
  const std::optional<ReceivedRecord> answer = client.read_record();
  REQUIRE(answer.has_value());
  CHECK(answer->header.type == RecordType::GetValuesResult);
  CHECK(answer->header.request_id == protocol::kNullRequestId);
  std::vector<protocol::NameValue> values;
  REQUIRE(protocol::parse_name_values(answer->content, values) == protocol::Error::None);
  // FCGI_MAX_REQS is the application's concurrent requests (§4.1): Config::max_requests, or
  // the per-connection limit when it is smaller and multiplexing is on (clients that
  // multiplex read it per connection).
  const std::vector<protocol::NameValue> expected{{protocol::kMaxConns, "123"},
                                                  {protocol::kMaxReqs, multiplex ? "6" : "45"},
                                                  {protocol::kMpxsConns, multiplex ? "1" : "0"}};
  CHECK(values == expected);

  check_served(client);
  CHECK(handler.calls.load() == 1);
  server.stop();
}

TEST_CASE("an unknown management record type is answered FCGI_UNKNOWN_TYPE naming it",
          "[integration][bad-input]") {
  const auto type = GENERATE(as<std::uint8_t>{}, 42, 255);
  CAPTURE(type);
  CountingEcho handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  client.send_raw(record(type, protocol::kNullRequestId, "what is this?"));
  const std::optional<ReceivedRecord> answer = client.read_record();
  REQUIRE(answer.has_value());
  CHECK(answer->header.type == RecordType::UnknownType);
  CHECK(answer->header.request_id == protocol::kNullRequestId);
  std::uint8_t named = 0;
  REQUIRE(protocol::parse_unknown_type(bytes_of(answer->content), named) == protocol::Error::None);
  CHECK(named == type);

  check_served(client);
  server.stop();
}

TEST_CASE("an unknown role is answered FCGI_UNKNOWN_ROLE and a keep-alive connection goes on",
          "[integration][bad-input]") {
  // Filter is a role the specification defines but this application does not play; 99 is no
  // role at all.
  const auto role = GENERATE(as<std::uint16_t>{}, 3, 99);
  CAPTURE(role);
  CountingEcho handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.roles = {Role::Responder};
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  std::string wire = begin_request(1, role);
  append_stream(wire, RecordType::Params, 1, encode_params({{"QUERY_STRING", ""}}));
  append_stream(wire, RecordType::Stdin, 1, "body");
  client.send_raw(wire);
  const std::vector<std::uint16_t> ids{1};
  const Response response = client.collect(ids).by_id.at(1);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::UnknownRole);
  CHECK(response.out.empty());
  CHECK(handler.calls.load() == 0);
  CHECK(log.contains(LogLevel::Warning, "conn 1 req 1: refused: role"));

  check_served(client);
  CHECK(handler.calls.load() == 1);
  CHECK(server.server().stats().requests_refused == 1);
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
