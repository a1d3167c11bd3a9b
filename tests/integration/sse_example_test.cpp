// SPDX-License-Identifier: MIT
// The server-sent events example program (FCGIMUX_SSE_BINARY, built from examples/sse.cpp):
// each event reaches the client while the handler is still running (Response::flush()), and
// the handler stops when its client goes away, or with a last event when the server stops.

#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"
#include "fcgi_client.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

Params sse_params(std::string_view query) {
  return {
      {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/events"}, {"QUERY_STRING", std::string(query)}};
}

// Reads the child's output up to the line that reports the end of a stream, and returns it.
std::string stream_report(ChildProcess& sse) {
  for (;;) {
    const std::optional<std::string> line = sse.read_line();
    if (!line) throw TestError("the output ended without an 'sse: ' line");
    if (line->starts_with("sse: ")) return *line;
  }
}

TEST_CASE("the sse example sends its events as text/event-stream and ends the stream",
          "[integration][examples]") {
  ChildProcess sse({FCGIMUX_SSE_BINARY, "--listen", "tcp:127.0.0.1:0"});
  FcgiClient client(announced_address(sse));

  const Response response = client.request(sse_params("count=3&interval_ms=1"));
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.header("Content-Type") == "text/event-stream");
  CHECK(cgi.header("Cache-Control") == "no-cache");
  CHECK(cgi.header("X-Accel-Buffering") == "no");
  CHECK(cgi.body ==
        "id: 1\nevent: tick\ndata: 1 of 3\n\n"
        "id: 2\nevent: tick\ndata: 2 of 3\n\n"
        "id: 3\nevent: tick\ndata: 3 of 3\n\n");
  CHECK(stream_report(sse) == "sse: sent 3 of 3 events");

  const Response bad = client.request(sse_params("count=many"));
  REQUIRE(bad.end.has_value());
  CHECK(parse_cgi_response(bad.out).status == 400);

  sse.signal(SIGTERM);
  CHECK(sse.wait() == 0);
}

TEST_CASE("the sse example flushes each event at once and stops when its client goes away",
          "[integration][examples]") {
  ChildProcess sse({FCGIMUX_SSE_BINARY, "--listen", "tcp:127.0.0.1:0"});
  std::optional<FcgiClient> client(std::in_place, announced_address(sse));

  // 1000 events a minute apart: the first can only arrive now if it was flushed.
  client->send_request(sse_params("count=1000&interval_ms=60000"), {});
  std::string out;
  while (out.find("data: 1 of 1000\n\n") == std::string::npos) {
    const std::optional<ReceivedRecord> record = client->read_record();
    REQUIRE(record.has_value());
    REQUIRE(record->header.type == protocol::RecordType::Stdout);
    out += record->content;
  }
  CHECK_THAT(out, Catch::StartsWith("Status: 200 OK\r\n"));
  CHECK_THAT(out, Catch::EndsWith("\r\n\r\nid: 1\nevent: tick\ndata: 1 of 1000\n\n"));

  // The client closes its connection, as nginx does when the browser goes away.
  client.reset();
  CHECK(stream_report(sse) == "sse: stopped after 1 of 1000 events");

  sse.signal(SIGTERM);
  CHECK(sse.wait() == 0);
}

TEST_CASE("the sse example ends its open streams with a last event as the server stops",
          "[integration][examples]") {
  ChildProcess sse({FCGIMUX_SSE_BINARY, "--listen", "tcp:127.0.0.1:0"});
  FcgiClient client(announced_address(sse));
  // 1000 events a minute apart: the stream is open when the stop comes.
  client.send_request(sse_params("count=1000&interval_ms=60000"), {});
  std::string out;
  while (out.find("data: 1 of 1000\n\n") == std::string::npos) {
    const std::optional<ReceivedRecord> record = client.read_record();
    REQUIRE(record.has_value());
    out += record->content;
  }

  sse.signal(SIGTERM);
  CHECK(stream_report(sse) == "sse: ended after 1 of 1000 events: server stopping");
  const std::vector<std::uint16_t> ids{1};
  const Response rest = std::move(client.collect(ids).by_id.at(1));
  REQUIRE(rest.end.has_value());
  CHECK(rest.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  CHECK(rest.out == "event: bye\ndata: server stopping\n\n");
  CHECK(sse.wait() == 0);
}

}  // namespace
}  // namespace fcgimux::test
