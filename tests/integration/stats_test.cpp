// SPDX-License-Identifier: MIT
// Server::stats(): after a run that completes, fails, aborts, overloads and refuses requests,
// every counter says what happened, and the totals add up.

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bytes.hpp"
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

// A client that counts the bytes it sends and the output bytes it receives.
class CountingClient {
 public:
  explicit CountingClient(const std::string& endpoint) : client_(endpoint) {}

  // Sends request 1 with QUERY_STRING `query` and `body`, in role `role`.
  void send(const std::string& query, const std::string& body = {}, Role role = Role::Responder) {
    std::string wire;
    protocol::append_begin_request(wire, 1, static_cast<std::uint16_t>(role), protocol::kKeepConn);
    append_stream(wire, RecordType::Params, 1, encode_params({{"QUERY_STRING", query}}));
    append_stream(wire, RecordType::Stdin, 1, body);
    send_raw(wire);
  }
  void send_raw(const std::string& wire) {
    sent += wire.size();
    client_.send_raw(wire);
  }
  Response collect() {
    const std::vector<std::uint16_t> ids{1};
    Response response = client_.collect(ids).by_id.at(1);
    received += response.out.size() + response.err.size();
    return response;
  }

  std::size_t sent = 0;      // bytes on the wire
  std::size_t received = 0;  // FCGI_STDOUT and FCGI_STDERR content

 private:
  FcgiClient client_;
};

int status_of(const Response& response) {
  if (!response.end || response.end->protocol_status != ProtocolStatus::RequestComplete) return 0;
  return parse_cgi_response(response.out).status;
}

TEST_CASE("after a mixed run the counters say what happened and add up", "[integration][stats]") {
  Gate gate;
  echo::EchoHandler echo;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    const std::string_view query = request.param("QUERY_STRING").value_or("");
    if (query == "throw") throw std::runtime_error("thrown by the test");
    if (query != "wait") return echo.handle(request, response);
    gate.pass(request.stop_token());
    response.write("done");
  });
  LogCapture log;
  Config config = test_config();
  config.workers = 2;
  config.max_requests = 2;
  config.roles = {Role::Responder};
  config.log = log.sink();
  TestServer server(handler, config);

  std::size_t sent = 0;
  std::size_t received = 0;
  {
    // 10 bodies echoed on one connection.
    CountingClient echoing(server.endpoint());
    for (std::uint32_t i = 1; i <= 10; ++i) {
      const std::string body = pattern(i * 1000, i);
      echoing.send("", body);
      const Response response = echoing.collect();
      REQUIRE(status_of(response) == 200);
      CHECK(parse_cgi_response(response.out).body == body);
    }
    // One handler throws; one request asks for a role not served.
    CountingClient throwing(server.endpoint());
    throwing.send("throw");
    CHECK(status_of(throwing.collect()) == 500);
    CountingClient filter(server.endpoint());
    filter.send("", "body", Role::Filter);
    const Response unknown_role = filter.collect();
    REQUIRE(unknown_role.end.has_value());
    CHECK(unknown_role.end->protocol_status == ProtocolStatus::UnknownRole);
    // Two held requests fill admission; a third is overloaded; one held is aborted.
    CountingClient held(server.endpoint());
    CountingClient aborted(server.endpoint());
    held.send("wait");
    aborted.send("wait");
    REQUIRE(gate.wait_arrivals(2));
    CountingClient overloaded(server.endpoint());
    overloaded.send("");
    CHECK(status_of(overloaded.collect()) == 503);
    std::string abort;
    protocol::append_abort_request(abort, 1);
    aborted.send_raw(abort);
    CHECK(aborted.collect().end.has_value());
    gate.open();
    CHECK(status_of(held.collect()) == 200);

    for (const CountingClient* client :
         {&echoing, &throwing, &filter, &held, &aborted, &overloaded}) {
      sent += client->sent;
      received += client->received;
    }
  }

  REQUIRE(eventually([&] {
    const Stats stats = server.server().stats();
    return stats.connections_open == 0 && stats.requests_running == 0 && stats.requests_queued == 0;
  }));
  const Stats stats = server.server().stats();
  CHECK(stats.connections_accepted == 6);
  CHECK(stats.connections_refused == 0);
  CHECK(stats.requests_admitted == 13);
  CHECK(stats.requests_completed == 11);
  CHECK(stats.requests_failed == 1);
  CHECK(stats.requests_aborted == 1);
  CHECK(stats.requests_body_too_large == 0);
  CHECK(stats.requests_admitted ==
        stats.requests_completed + stats.requests_failed + stats.requests_aborted);
  CHECK(stats.requests_overloaded == 1);
  CHECK(stats.requests_refused == 1);
  CHECK(stats.input_buffered == 0);
  CHECK(stats.output_buffered == 0);
  // Every byte the clients sent was read; what they received is the output plus framing
  // (record headers, padding, END_REQUEST): under 64 bytes for each of the 15 requests.
  CHECK(stats.bytes_in == sent);
  CHECK(stats.bytes_out > received);
  CHECK(stats.bytes_out < received + 15 * 64);
  CHECK(log.contains(LogLevel::Error, "thrown by the test"));
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
