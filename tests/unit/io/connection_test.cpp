// SPDX-License-Identifier: MIT
// The connection state machine over a transport in memory, with the test's thread playing the
// I/O thread and the worker in turn, so each case is deterministic. (The whole-connection fuzz
// target, tests/fuzz/connection_fuzz.cpp, drives the same machine with arbitrary input.)

#include "io/connection.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/server_core.hpp"
#include "wire.hpp"

namespace fcgimux::io {
namespace {

using protocol::RecordType;

// A transport whose socket takes what `takes` says of each send; its asynchronous writes wait
// until the test completes them.
class MemoryConnection final : public Connection {
 public:
  MemoryConnection(ServerCore& server, bool& alive)
      : Connection(server, server.next_connection_id()), alive_(alive) {
    alive_ = true;
  }
  ~MemoryConnection() override { alive_ = false; }

  bool peer_address(sockaddr_storage&) const noexcept override { return false; }

  bool takes = true;               // whether sends take anything
  bool paused = false;             // reading paused
  bool closing = false;            // close_transport() was called
  std::string wire;                // every byte the peer received
  std::vector<std::string> async;  // an asynchronous write under way, its pieces

  // The socket had room again: the asynchronous write ends.
  void complete_write() {
    REQUIRE(!async.empty());
    for (const std::string& piece : async) wire += piece;
    async.clear();
    written(0);
  }
  void finish_close() {
    REQUIRE(closing);
    transport_closed();
  }

 private:
  std::ptrdiff_t send(std::span<const std::string_view> pieces) noexcept override {
    if (!takes) return 0;
    std::size_t total = 0;
    for (const std::string_view piece : pieces) {
      wire += piece;
      total += piece.size();
    }
    return static_cast<std::ptrdiff_t>(total);
  }
  int write(std::span<const std::string_view> pieces) noexcept override {
    for (const std::string_view piece : pieces) async.emplace_back(piece);
    return 0;
  }
  void pause_reading() noexcept override { paused = true; }
  int resume_reading() noexcept override {
    paused = false;
    return 0;
  }
  std::size_t unread_bytes() const noexcept override { return 0; }
  void close_transport() noexcept override { closing = true; }

  bool& alive_;
};

// Runs whatever the handler function says, on the test's thread.
class FunctionHandler : public Handler {
 public:
  std::function<void(Request&, fcgimux::Response&)> fn;
  void handle(Request& request, fcgimux::Response& response) override { fn(request, response); }
};

// A server that never runs its loop, and one connection to it.
struct Fixture {
  explicit Fixture(Config config = quiet()) : server(std::move(config), handler) {
    auto made = std::make_unique<MemoryConnection>(server, alive);
    connection = made.get();
    server.adopt(std::move(made));
  }
  static Config quiet() {
    Config config;
    config.listen = {"tcp:127.0.0.1:0"};
    config.handle_signals = false;
    config.log = [](LogLevel, std::string_view) {};
    return config;
  }
  void feed(std::string_view bytes) { connection->received(test::bytes_of(bytes)); }
  // Runs every admitted request, as a worker would.
  void run_workers() {
    while (dispatch::Exchange* exchange = server.queue.try_pop()) exchange->run(handler);
  }
  // The records on the wire, decoded.
  std::vector<protocol::Record> records() {
    std::vector<protocol::Record> out;
    protocol::Decoder decoder;
    std::span<const std::byte> input = test::bytes_of(connection->wire);
    protocol::Record record;
    while (decoder.next(input, record) == protocol::DecodeStatus::Record) out.push_back(record);
    REQUIRE(decoder.at_record_boundary());
    return out;
  }

  FunctionHandler handler;
  ServerCore server;
  bool alive = false;
  MemoryConnection* connection = nullptr;
};

std::string request(std::uint16_t id, std::string_view query) {
  std::string out;
  protocol::append_begin_request(out, id, 1, protocol::kKeepConn);
  std::string params;
  protocol::append_name_value(params, "QUERY_STRING", query);
  protocol::append_records(out, RecordType::Params, id, params);
  protocol::append_records(out, RecordType::Params, id, std::string_view());
  protocol::append_records(out, RecordType::Stdin, id, std::string_view());
  return out;
}

std::size_t count(const std::vector<protocol::Record>& records, RecordType type) {
  std::size_t n = 0;
  for (const protocol::Record& record : records) n += record.header.type == type ? 1 : 0;
  return n;
}

TEST_CASE("an id whose END_REQUEST is out is free again before the worker's notice arrives",
          "[io][connection]") {
  Fixture f;
  f.handler.fn = [](Request&, fcgimux::Response& response) { response.write("hello"); };
  f.feed(request(1, "first"));
  f.run_workers();
  // The worker sent its response itself; its notice waits, undelivered, as when the loop is
  // busy elsewhere. The client already reuses id 1.
  REQUIRE(count(f.records(), RecordType::EndRequest) == 1);
  f.feed(request(1, "second"));
  REQUIRE_FALSE(f.connection->closing);
  f.run_workers();
  f.server.deliver_notices();
  const std::vector<protocol::Record> records = f.records();
  CHECK(count(records, RecordType::EndRequest) == 2);
  CHECK_FALSE(f.connection->closing);
  CHECK(f.server.stats().requests_completed == 2);
}

TEST_CASE("while its output is over budget a connection reads no further record, then reads on",
          "[io][connection]") {
  Config config = Fixture::quiet();
  config.connection_output_budget = 64;
  Fixture f(config);
  f.connection->takes = false;
  std::string flood;
  for (int i = 0; i < 100; ++i) flood += test::hex("01 2a 00 00 00 00 00 00");
  f.feed(flood);
  // Four answers of 16 bytes fill the budget: the rest waits, and so does the socket.
  CHECK(f.connection->paused);
  CHECK(f.server.stats().output_buffered <= 64 + 16);
  // The peer reads: each finished write lets the connection answer a few more.
  for (int round = 0; round < 100 && f.connection->paused; ++round) f.connection->complete_write();
  CHECK_FALSE(f.connection->paused);
  if (!f.connection->async.empty()) f.connection->complete_write();
  CHECK(count(f.records(), RecordType::UnknownType) == 100);
  CHECK(f.server.stats().output_buffered == 0);
}

TEST_CASE(
    "a response cut short by the shutdown deadline closes its connection without "
    "END_REQUEST",
    "[io][connection]") {
  Fixture f;
  f.handler.fn = [&](Request&, fcgimux::Response& response) {
    response.write("partial");
    response.flush();
    // The shutdown deadline passes while the handler runs.
    f.connection->cancel_requests();
  };
  f.feed(request(1, ""));
  f.run_workers();
  f.server.deliver_notices();
  CHECK(f.connection->closing);
  const std::vector<protocol::Record> records = f.records();
  CHECK(count(records, RecordType::Stdout) == 1);
  CHECK(count(records, RecordType::EndRequest) == 0);
  f.connection->finish_close();
  CHECK_FALSE(f.alive);
}

}  // namespace
}  // namespace fcgimux::io
