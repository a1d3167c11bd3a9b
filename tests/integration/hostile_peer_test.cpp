// SPDX-License-Identifier: MIT
// Issue 14: what a hostile peer tried against the memory bounds and the promise that every
// response is either whole or reported as failed. Each test is the attack, with the number it
// asserts.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"
#include "wire.hpp"

namespace fcgimux::test {
namespace {

using namespace std::chrono_literals;
using protocol::ProtocolStatus;
using protocol::RecordType;

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

Config quiet_config(LogCapture& log) {
  Config config = test_config();
  config.log = log.sink();
  return config;
}

std::string record(RecordType type, std::uint16_t id, std::string_view content) {
  std::string out;
  append_record(out, type, id, content, protocol::padding_for(content.size()));
  return out;
}

std::string begin_request(std::uint16_t id, std::uint16_t role = 1) {
  std::string out;
  protocol::append_begin_request(out, id, role, protocol::kKeepConn);
  return out;
}

void check_served(FcgiClient& client, std::uint16_t id) {
  CAPTURE(id);
  const Params params{{"QUERY_STRING", ""}, {"REQUEST_ID", std::to_string(id)}};
  RequestOptions options;
  options.id = id;
  const Response response = client.request(params, {}, options);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

// Every record in `bytes`, which must be a whole record stream.
std::vector<protocol::Record> decode_all(std::string_view bytes, protocol::Decoder& decoder) {
  std::vector<protocol::Record> records;
  std::span<const std::byte> input = bytes_of(bytes);
  protocol::Record record;
  for (;;) {
    const protocol::DecodeStatus status = decoder.next(input, record);
    REQUIRE(status != protocol::DecodeStatus::Error);
    if (status == protocol::DecodeStatus::NeedMore) break;
    records.push_back(record);
  }
  return records;
}

TEST_CASE(
    "issue 14: FCGI_GET_VALUES naming one variable 4,095 times is answered once, in one "
    "record",
    "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.max_connections = 777;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  std::string query;
  for (int i = 0; i < 4095; ++i) protocol::append_name_value(query, protocol::kMaxConns, "");
  REQUIRE(query.size() == 65520);
  client.send_raw(record(RecordType::GetValues, 0, query));

  const std::optional<ReceivedRecord> answer = client.read_record();
  REQUIRE(answer.has_value());
  CHECK(answer->header.type == RecordType::GetValuesResult);
  std::vector<protocol::NameValue> pairs;
  REQUIRE(protocol::parse_name_values(answer->content, pairs) == protocol::Error::None);
  REQUIRE(pairs.size() == 1);
  CHECK(pairs[0].name == protocol::kMaxConns);
  CHECK(pairs[0].value == "777");
  // What follows the answer is still a record stream the client can read.
  check_served(client, 1);
  server.stop();
}

TEST_CASE("issue 14: a peer that floods replies and never reads is held to the output budget",
          "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = quiet_config(log);
  constexpr std::size_t kBudget = 16 * 1024;
  config.connection_output_budget = kBudget;
  TestServer server(handler, config);

  // Records the server answers itself, 56 bytes in and 56 bytes out: an unknown management
  // type, an empty FCGI_GET_VALUES, a request aborted before its params, an unknown role.
  std::string flood;
  std::vector<std::size_t> record_ends;  // where each record of `flood` ends
  const auto add = [&](const std::string& bytes) {
    flood += bytes;
    record_ends.push_back(flood.size());
  };
  while (flood.size() < 64 * 1024) {
    add(record(static_cast<RecordType>(42), 0, ""));
    add(record(RecordType::GetValues, 0, ""));
    add(begin_request(1));
    add(record(RecordType::AbortRequest, 1, ""));
    add(begin_request(2, 9));
  }
  Socket peer = Socket::connect(server.endpoint());
  // A small send buffer, so that the peer feels the server stop reading soon; a receive
  // buffer of normal size, which the answers fill before the budget is reached. (Answers read
  // through a small one crawl: the kernel keeps the window small when the segments are, and
  // the 16-byte answers came back in 6-byte reads over two minutes.)
  peer.shrink_buffers(4096);
  peer.set_receive_buffer(1024 * 1024);
  std::string sent;
  bool stalled = false;
  constexpr std::size_t kMostSent = 64 * 1024 * 1024;
  std::uint64_t most_buffered = 0;
  while (sent.size() < kMostSent) {
    const std::size_t offset = sent.size() % flood.size();
    const std::size_t taken = peer.send_some(std::string_view(flood).substr(offset));
    sent.append(flood, offset, taken);
    most_buffered = std::max(most_buffered, server.server().stats().output_buffered);
    if (taken == 0 && !peer.wait_writable(1s)) {
      stalled = true;
      break;
    }
  }
  // The server stopped reading once its replies filled the budget (and the kernel's socket
  // buffers): the peer's sending stalled long before 64 MiB, and what waited in the server
  // was the budget plus one reply at most.
  const Stats held = server.server().stats();
  CAPTURE(sent.size(), most_buffered, held.output_buffered, held.bytes_in);
  CHECK(stalled);
  CHECK(sent.size() < kMostSent);
  CHECK(std::max(most_buffered, held.output_buffered) <= kBudget + 64);

  // The flood may end in the middle of a record: the peer completes it, then starts reading.
  const std::size_t offset = sent.size() % flood.size();
  const std::size_t record_end = *std::lower_bound(record_ends.begin(), record_ends.end(), offset);
  std::string received;
  peer.send_all(std::string_view(flood).substr(offset, record_end - offset), received);
  sent.append(flood, offset, record_end - offset);
  // Every record sent is answered, in order, once the peer reads; then one ordinary request.
  std::map<RecordType, std::size_t> expected;
  {
    protocol::Decoder decoder;
    for (const protocol::Record& r : decode_all(sent, decoder)) {
      if (r.header.type == static_cast<RecordType>(42)) ++expected[RecordType::UnknownType];
      if (r.header.type == RecordType::GetValues) ++expected[RecordType::GetValuesResult];
      if (r.header.type == RecordType::AbortRequest) ++expected[RecordType::EndRequest];
      if (r.header.type == RecordType::BeginRequest && r.header.request_id == 2) {
        ++expected[RecordType::EndRequest];
      }
    }
  }
  std::string request = begin_request(3);
  append_stream(request, RecordType::Params, 3, encode_params({{"QUERY_STRING", ""}}));
  append_stream(request, RecordType::Stdin, 3, "");
  peer.send_all(request, received);

  std::map<RecordType, std::size_t> answered;
  protocol::Decoder decoder;
  std::size_t decoded = 0;
  bool ended = false;
  while (!ended) {
    REQUIRE(peer.receive(received));
    for (const protocol::Record& r :
         decode_all(std::string_view(received).substr(decoded), decoder)) {
      if (r.header.request_id == 3) {
        ended = r.header.type == RecordType::EndRequest;
      } else {
        ++answered[r.header.type];
      }
    }
    decoded = received.size();
  }
  CHECK(answered == expected);
  CHECK(eventually([&] { return server.server().stats().output_buffered == 0; }));
  // The flood may have left a request begun and unfinished, which a stopping server would wait
  // for until its shutdown deadline: the peer leaves first.
  { const Socket leaving = std::move(peer); }
  server.stop();
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// This process's resident memory now (VmRSS), in bytes.
std::size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6)) * 1024;  // in kB
  }
  throw TestError("no VmRSS in /proc/self/status");
}

// (Sanitizers keep freed memory in quarantine and shadow every byte: left out under them.)
TEST_CASE(
    "issue 14: the smallest replies to a peer that never reads hold memory in proportion to "
    "their bytes",
    "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = quiet_config(log);
  TestServer server(handler, config);
  const std::size_t before = resident_bytes();

  // 8-byte management records of an unknown type, each answered with a 16-byte
  // FCGI_UNKNOWN_TYPE: the budget (256 KiB) holds 16,384 answers.
  std::string flood;
  while (flood.size() < 64 * 1024) flood += record(static_cast<RecordType>(42), 0, "");
  Socket peer = Socket::connect(server.endpoint());
  peer.shrink_buffers(4096);
  std::size_t sent = 0;
  bool stalled = false;
  while (sent < 64 * 1024 * 1024) {
    const std::size_t offset = sent % flood.size();
    const std::size_t taken = peer.send_some(std::string_view(flood).substr(offset));
    sent += taken;
    if (taken == 0 && !peer.wait_writable(1s)) {
      stalled = true;
      break;
    }
  }
  const std::size_t grown = resident_bytes() - before;
  const Stats held = server.server().stats();
  CAPTURE(sent, held.output_buffered, grown);
  REQUIRE(stalled);
  // The queue is full: what it holds is what is measured.
  CHECK(held.output_buffered >= config.connection_output_budget);
  // The answers queued take about their 256 KiB; a piece of 4 KiB for each took 64 MiB.
  CHECK(grown < 16 * 1024 * 1024);
  { const Socket leaving = std::move(peer); }
  server.stop();
}
#endif

// Reads the answers to requests refused at once, by id, until request `last` has its
// END_REQUEST; returns each one's HTTP status.
std::map<std::uint16_t, int> refusals_until(FcgiClient& client, std::uint16_t last) {
  std::map<std::uint16_t, std::string> out;
  std::map<std::uint16_t, int> statuses;
  while (!statuses.contains(last)) {
    const std::optional<ReceivedRecord> r = client.read_record();
    REQUIRE(r.has_value());
    const std::uint16_t id = r->header.request_id;
    if (r->header.type == RecordType::Stdout) out[id] += r->content;
    if (r->header.type == RecordType::EndRequest) statuses[id] = parse_cgi_response(out[id]).status;
  }
  return statuses;
}

TEST_CASE(
    "issue 14: requests whose params never end are held to max_params_bytes a connection "
    "and pending_params_budget in all",
    "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = quiet_config(log);
  constexpr std::size_t kMaxParams = 4096;
  constexpr std::size_t kBudget = 40 * 1024;
  constexpr std::size_t kConnections = 20;
  constexpr std::uint16_t kRequests = 100;
  config.max_params_bytes = kMaxParams;
  config.pending_params_budget = kBudget;
  config.max_requests_per_connection = kRequests;
  config.overload_reply = OverloadReply::Http503;
  TestServer server(handler, config);

  // Each connection opens 100 requests, each with 1,000 bytes of params that never end.
  const std::string piece(1000, 'p');
  std::vector<std::unique_ptr<FcgiClient>> peers;
  std::size_t refused_431 = 0;
  std::size_t refused_503 = 0;
  for (std::size_t c = 0; c < kConnections; ++c) {
    peers.push_back(std::make_unique<FcgiClient>(server.endpoint()));
    std::string bytes;
    for (std::uint16_t id = 1; id <= kRequests; ++id) {
      bytes += begin_request(id);
      bytes += record(RecordType::Params, id, piece);
    }
    peers.back()->send_raw(bytes);
    // A request past a bound is answered at once, in order; requests 5 to 100 always are.
    for (const auto& [id, status] : refusals_until(*peers.back(), kRequests)) {
      CHECK((status == 431 || status == 503));
      CHECK((id >= 5 || status == 503));
      (status == 431 ? refused_431 : refused_503) += 1;
    }
  }
  const Stats stats = server.server().stats();
  CAPTURE(stats.params_pending, refused_431, refused_503);
  // Four requests a connection fit in max_params_bytes; the total stops at the budget.
  CHECK(stats.params_pending <= kBudget);
  CHECK(stats.params_pending <= kConnections * kMaxParams);
  CHECK(stats.params_pending >= kBudget - 4 * piece.size());
  CHECK(refused_503 > 0);
  CHECK(log.contains(LogLevel::Warning, "pending_params_budget"));

  // Their connections gone, nothing stays held, and a request is served.
  peers.clear();
  CHECK(eventually([&] { return server.server().stats().params_pending == 0; }));
  FcgiClient client(server.endpoint());
  check_served(client, 1);
  server.stop();
}

TEST_CASE("issue 14: refusals do not keep a connection with half a request from its idle timeout",
          "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.idle_timeout = 300ms;
  config.multiplex = false;
  config.log_level = LogLevel::Info;
  TestServer server(handler, config);

  FcgiClient peer(server.endpoint());
  peer.send_raw(begin_request(1) + record(RecordType::Params, 1,
                                          "\x03\x01"
                                          "ABCx"));
  // A second request every 100 ms, each refused with FCGI_CANT_MPX_CONN, for at most 50 idle
  // timeouts: the connection must close anyway.
  bool closed = false;
  for (int i = 0; i < 150 && !closed; ++i) {
    try {
      peer.send_raw(begin_request(2));
    } catch (const TestError&) {
      closed = true;  // the server had closed it: the send failed
      break;
    }
    const std::optional<ReceivedRecord> answer = peer.read_record();
    if (!answer) {
      closed = true;
      break;
    }
    REQUIRE(answer->header.type == RecordType::EndRequest);
    std::this_thread::sleep_for(100ms);
  }
  CHECK(closed);
  CHECK(log.contains(LogLevel::Info, "idle timeout with a request incomplete"));
  server.stop();
}

// Sends its header block and a first piece of body at once, then waits for its stop token.
// Threading: Thread-safe.
// Any other request is answered as EchoHandler does.
class PartialThenWait : public Handler {
 public:
  void handle(Request& request, fcgimux::Response& response) override {
    const std::optional<std::string_view> query = request.param("QUERY_STRING");
    if (query != "write" && query != "silent") return echo_.handle(request, response);
    if (query == "write") {
      response.write("partial body");
      response.flush();
    }
    gate.pass(request.stop_token());
  }
  Gate gate;

 private:
  echo::EchoHandler echo_;
};

// Reads the connection to its end; returns what came for request 1 and whether the server then
// closed the connection.
Response read_to_close(FcgiClient& client) {
  Response response;
  while (const std::optional<ReceivedRecord> r = client.read_record()) {
    if (r->header.type == RecordType::Stdout) response.out += r->content;
    if (r->header.type == RecordType::EndRequest) {
      protocol::EndRequestBody body;
      REQUIRE(protocol::parse_end_request(bytes_of(r->content), body) == protocol::Error::None);
      response.end = body;
    }
  }
  return response;
}

TEST_CASE(
    "issue 14: params of queued and running requests count against pending_params_budget "
    "until they end",
    "[integration][hostile][regression]") {
  PartialThenWait handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.workers = 2;
  config.max_params_bytes = 16 * 1024;
  config.pending_params_budget = 32 * 1024;
  config.overload_reply = OverloadReply::Http503;
  TestServer server(handler, config);

  // Each request brings 10 KB of params: two run (and wait), a third queues; 30 KB are held.
  const Params params{{"QUERY_STRING", "silent"}, {"X", std::string(10'000, 'x')}};
  RequestOptions one_request;
  one_request.keep_conn = false;
  std::vector<std::unique_ptr<FcgiClient>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<FcgiClient>(server.endpoint()));
    held.back()->send_request(params, {}, one_request);
  }
  REQUIRE(handler.gate.wait_arrivals(2));
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));
  CHECK(server.server().stats().params_pending >= 30'000);

  // A fourth would take them past the budget: it is refused at once, though only three
  // requests are admitted, far from max_requests.
  FcgiClient fourth(server.endpoint());
  fourth.send_request(params, {});
  CHECK(refusals_until(fourth, 1).at(1) == 503);
  CHECK(log.contains(LogLevel::Warning, "pending_params_budget"));

  // Once they end, their params are let go and a request is served.
  handler.gate.open();
  for (const std::unique_ptr<FcgiClient>& client : held) CHECK(read_to_close(*client).end);
  CHECK(eventually([&] { return server.server().stats().params_pending == 0; }));
  FcgiClient client(server.endpoint());
  check_served(client, 1);
  server.stop();
}

TEST_CASE("issue 14: a response cut short by the shutdown deadline gets no END_REQUEST",
          "[integration][hostile][regression]") {
  PartialThenWait handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.shutdown_timeout = 200ms;
  config.workers = 1;
  config.log_level = LogLevel::Info;
  TestServer server(handler, config);

  FcgiClient cut(server.endpoint());
  cut.send_request({{"QUERY_STRING", "write"}}, {});
  REQUIRE(handler.gate.wait_arrivals(1));
  FcgiClient queued(server.endpoint());
  queued.send_request({{"QUERY_STRING", "never runs"}}, {});
  REQUIRE(eventually([&] { return server.server().stats().requests_queued == 1; }));

  server.server().stop();
  // The running response is cut: its connection closes without an END_REQUEST.
  const Response partial = read_to_close(cut);
  CHECK(partial.out.find("partial body") != std::string::npos);
  CHECK_FALSE(partial.end.has_value());
  // The queued request never ran: it gets the overload answer, whole.
  const Response unavailable = queued.collect(std::vector<std::uint16_t>{1}).by_id.at(1);
  REQUIRE(complete(unavailable));
  CHECK(parse_cgi_response(unavailable.out).status == 503);
  // One warning counts what the deadline cancels; each cut response is a line at Info.
  CHECK(log.contains(LogLevel::Warning, "shutdown deadline passed: cancelling 2 requests"));
  CHECK(log.contains(LogLevel::Info, "cut short by the server's stop"));
  CHECK_FALSE(log.contains(LogLevel::Warning, "cut short"));
  server.stop();
}

TEST_CASE(
    "issue 14: a request stopped by its deadline before it wrote gets a whole 503, one "
    "that wrote is cut",
    "[integration][hostile][regression]") {
  PartialThenWait handler;
  LogCapture log;
  Config config = quiet_config(log);
  config.request_timeout = 200ms;
  TestServer server(handler, config);

  FcgiClient silent(server.endpoint());
  const Response unavailable = silent.request({{"QUERY_STRING", "silent"}}, {});
  REQUIRE(complete(unavailable));
  CHECK(parse_cgi_response(unavailable.out).status == 503);
  check_served(silent, 2);

  FcgiClient cut(server.endpoint());
  cut.send_request({{"QUERY_STRING", "write"}}, {});
  const Response partial = read_to_close(cut);
  CHECK(partial.out.find("partial body") != std::string::npos);
  CHECK_FALSE(partial.end.has_value());
  CHECK(log.contains(LogLevel::Warning, "cut short by its request_timeout"));
  server.stop();
}

TEST_CASE("issue 14: a status outside 100-999 is refused with a log line and answered 500",
          "[integration][hostile][regression]") {
  echo::EchoHandler handler;
  LogCapture log;
  TestServer server(handler, quiet_config(log));
  FcgiClient client(server.endpoint());
  const auto status_of = [&](std::string_view asked) {
    const Response response = client.request({{"QUERY_STRING", "status=" + std::string(asked)}});
    REQUIRE(complete(response));
    return parse_cgi_response(response.out).status;
  };
  CHECK(status_of("0") == 500);
  CHECK(status_of("99") == 500);
  CHECK(status_of("1000") == 500);
  CHECK(status_of("18446744073709551615") == 500);
  CHECK(status_of("100") == 100);
  CHECK(status_of("999") == 999);
  CHECK(log.contains(LogLevel::Warning, "status 0 refused"));
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
