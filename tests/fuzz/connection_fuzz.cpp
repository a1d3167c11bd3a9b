// SPDX-License-Identifier: MIT
// libFuzzer target for the whole connection: the state machine (io::Connection), its request
// table, admission, the exchanges and the handlers' output, without sockets. A transport in
// memory stands in for the socket; the harness plays both the peer (feeding the input in
// slices) and the worker pool (running each admitted request's handler on this thread, once
// its body has arrived or the connection stopped reading), so a run is deterministic.
//
// Input: byte 0 picks the slice size, byte 1 the harness's choices (asynchronous writes that
// complete at once or later, whether handlers read the body, how the input ends, whether the
// output's non-blocking sends take all, nothing or half); the rest is the byte stream a web
// server would send.
//
// Invariants, checked on every input (a failure aborts):
//  1. What the connection writes is a well-formed record stream.
//  2. A request id gets no record without a request open on it: never more END_REQUESTs than
//     BEGIN_REQUESTs the connection read for that id, and no STDOUT/STDERR after its END.
//  3. Nothing is written once the connection asked its transport to close.
//  4. Buffered bytes stay within their budgets: body bytes within each request's budget plus
//     one read, output within the connection's budget plus one record per request.
//  5. When the input is over and the connection closed, nothing is left: no connection, no
//     request queued or running, no buffered byte, and every admitted request is counted
//     exactly once as completed, failed or aborted.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/exchange.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"
#include "fcgimux/request.hpp"
#include "fcgimux/response.hpp"
#include "io/connection.hpp"
#include "io/server_core.hpp"

namespace {

namespace protocol = fcgimux::protocol;
using fcgimux::io::Connection;
using fcgimux::io::ServerCore;

constexpr std::size_t kBodyBudget = 4096;
constexpr std::size_t kOutputBudget = 64 * 1024;
constexpr std::size_t kReadSize = 64 * 1024;   // the most one read can bring
constexpr std::size_t kMaxOutput = 16 * 1024;  // per handler, well inside kOutputBudget

void check(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "connection_fuzz: invariant failed: %s\n", invariant);
    std::abort();
  }
}

// Whether the handler now running may read its body: only when every byte of it has arrived,
// so that no read blocks this single thread.
bool g_body_complete = false;

// Answers with a response whose size comes from the params; throws when asked to.
class FuzzHandler final : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    std::size_t size = 0;
    for (const fcgimux::Param& param : request.params()) size += param.value.size();
    if (request.param("FUZZ_THROW")) throw std::runtime_error("the handler threw");
    if (g_body_complete) {
      size += request.read_all(kMaxOutput).size();
      if (request.role() == protocol::Role::Filter)
        size += request.read_all_data(kMaxOutput).size();
    }
    response.header("Content-Type", "text/plain");
    if (request.param("FUZZ_STDERR")) response.log_error("asked for a line on stderr");
    const std::string body(std::min(size, kMaxOutput), 'x');
    // Without a flush the whole response goes out in one send with its END_REQUEST.
    response.write(body.substr(0, body.size() / 2));
    if (request.param("FUZZ_FLUSH")) response.flush();
    response.write(body.substr(body.size() / 2));
  }
};

fcgimux::Config fuzz_config() {
  fcgimux::Config config;
  config.listen = {"tcp:127.0.0.1:0"};  // resolved, never bound: the server never runs
  config.handle_signals = false;
  config.log = [](fcgimux::LogLevel, std::string_view) {};
  config.max_requests = 2;  // below the per-connection limit: overload happens
  config.max_requests_per_connection = 3;
  config.max_params_bytes = 2048;
  config.max_body_bytes = 1 << 20;
  config.request_body_budget = kBodyBudget;
  config.connection_output_budget = kOutputBudget;
  config.roles = {protocol::Role::Responder, protocol::Role::Authorizer, protocol::Role::Filter};
  return config;
}

// The peer's side of what the connection wrote, checked record by record.
struct Observer {
  std::map<std::uint16_t, int> begun;  // BEGIN_REQUESTs the connection read, by id
  std::map<std::uint16_t, int> ended;  // END_REQUESTs it wrote, by id
  protocol::Decoder output;
  std::string staged;
  bool transport_closing = false;

  void wrote(std::span<const std::string_view> pieces) {
    check(!transport_closing, "nothing is written once the transport closes");
    for (const std::string_view piece : pieces) {
      std::span<const std::byte> bytes = std::as_bytes(std::span(piece));
      protocol::Record record;
      for (;;) {
        const protocol::DecodeStatus status = output.next(bytes, record);
        check(status != protocol::DecodeStatus::Error, "the output is a well-formed record stream");
        if (status == protocol::DecodeStatus::NeedMore) break;
        const std::uint16_t id = record.header.request_id;
        if (id == protocol::kNullRequestId) continue;
        const int open = begun[id] - ended[id];
        check(open > 0, "no record for a request id without a request open on it");
        if (record.header.type == protocol::RecordType::EndRequest) ++ended[id];
      }
    }
  }
};

class MemoryConnection final : public Connection {
 public:
  // `direct`: how the output's non-blocking sends go: all taken, none (a full socket), or half.
  enum class Direct : unsigned char { All, None, Half };
  MemoryConnection(ServerCore& server, Observer& observer, bool async_writes, Direct direct,
                   bool& alive)
      : Connection(server, server.next_connection_id()),
        observer_(observer),
        async_writes_(async_writes),
        direct_(direct),
        alive_(alive) {
    alive_ = true;
  }
  ~MemoryConnection() override { alive_ = false; }
  MemoryConnection(const MemoryConnection&) = delete;
  MemoryConnection& operator=(const MemoryConnection&) = delete;

  bool peer_address(sockaddr_storage&) const noexcept override { return false; }

  bool paused = false;
  bool write_pending = false;  // a write returned 0; the harness ends it later
  bool close_pending = false;  // close_transport() was called; the harness ends it later
  std::size_t unread = 0;      // input the peer sent that the connection has not read

 private:
  int write(std::span<const std::string_view> pieces) noexcept override {
    observer_.wrote(pieces);
    if (!async_writes_) return 1;
    write_pending = true;
    return 0;
  }
  void pause_reading() noexcept override { paused = true; }
  int resume_reading() noexcept override {
    paused = false;
    return 0;
  }
  std::size_t unread_bytes() const noexcept override { return unread; }
  void close_transport() noexcept override {
    observer_.transport_closing = true;
    close_pending = true;
  }
  std::ptrdiff_t send(std::span<const std::string_view> pieces) noexcept override {
    check(!write_pending, "no send while an asynchronous write is under way");
    if (direct_ == Direct::None) return 0;
    std::size_t total = 0;
    for (const std::string_view piece : pieces) total += piece.size();
    std::size_t left = direct_ == Direct::All ? total : (total + 1) / 2;
    std::vector<std::string_view> taken;
    for (const std::string_view piece : pieces) {
      if (left == 0) break;
      taken.push_back(piece.substr(0, std::min(left, piece.size())));
      left -= taken.back().size();
    }
    observer_.wrote(taken);
    return static_cast<std::ptrdiff_t>(direct_ == Direct::All ? total : (total + 1) / 2);
  }

  Observer& observer_;
  const bool async_writes_;
  const Direct direct_;
  bool& alive_;
};

// Counts the BEGIN_REQUESTs in what the connection has read, the way it reads them.
class InputModel {
 public:
  explicit InputModel(Observer& observer) : observer_(observer) {}
  void read(std::span<const std::byte> bytes) {
    protocol::Record record;
    while (!failed_) {
      const protocol::DecodeStatus status = decoder_.next(bytes, record);
      if (status == protocol::DecodeStatus::NeedMore) return;
      if (status == protocol::DecodeStatus::Error) {
        failed_ = true;
        return;
      }
      if (record.header.type == protocol::RecordType::BeginRequest &&
          record.header.request_id != protocol::kNullRequestId) {
        ++observer_.begun[record.header.request_id];
      }
    }
  }

 private:
  Observer& observer_;
  protocol::Decoder decoder_;
  bool failed_ = false;
};

class Harness {
 public:
  Harness(std::uint8_t choices)
      : read_bodies_((choices & 2) != 0),
        end_with_eof_((choices & 4) != 0),
        server_(fuzz_config(), handler_),
        model_(observer_) {
    const auto direct = static_cast<MemoryConnection::Direct>((choices >> 3) % 3);
    auto made =
        std::make_unique<MemoryConnection>(server_, observer_, (choices & 1) != 0, direct, alive_);
    connection_ = made.get();
    server_.adopt(std::move(made));
  }

  void feed(std::span<const std::byte> input, std::size_t slice) {
    while (!input.empty() && alive_ && !connection_->closed()) {
      settle();
      if (!alive_ || connection_->closed()) return;
      if (connection_->paused) {
        // The connection pushes back: only the handlers can let it read again.
        if (!run_workers(true)) return;  // nothing can run: the peer waits, as over TCP
        continue;
      }
      const std::span<const std::byte> bytes = input.first(std::min(slice, input.size()));
      input = input.subspan(bytes.size());
      connection_->unread = input.size();
      model_.read(bytes);
      connection_->received(bytes);
      check_budgets();
    }
  }

  void finish() {
    if (!alive_ || connection_->closed()) return;
    run_workers(false);
    if (!alive_ || connection_->closed()) return;
    if (end_with_eof_) {
      connection_->read_ended(0);
      return;
    }
    // As at the shutdown deadline: every request is cancelled, then the connection closes.
    connection_->cancel_requests();
    settle();
    check_budgets();
    if (alive_ && !connection_->closed()) connection_->close(fcgimux::LogLevel::Debug, "done");
  }

  void check_end() {
    settle();
    check(!alive_, "the connection is freed once closed and its requests are over");
    const fcgimux::Stats stats = server_.stats();
    check(stats.connections_open == 0, "no connection is left open");
    check(stats.requests_queued == 0 && stats.requests_running == 0, "no request is left");
    check(stats.input_buffered == 0 && stats.output_buffered == 0, "no byte is left buffered");
    check(stats.requests_admitted == stats.requests_completed + stats.requests_failed +
                                         stats.requests_aborted + stats.requests_body_too_large,
          "admitted = completed + failed + aborted + body too large");
  }

 private:
  // Ends a pending write or close, then delivers what the handlers produced.
  void settle() {
    for (int round = 0; round < 64 && alive_; ++round) {
      server_.deliver_notices();
      if (!alive_) return;
      if (connection_->write_pending) {
        connection_->write_pending = false;
        connection_->written(0);
      } else if (connection_->close_pending) {
        connection_->close_pending = false;
        connection_->transport_closed();
      } else {
        return;
      }
    }
  }

  // Runs queued requests as workers would; `blocked`: the connection stopped reading, so a
  // request whose body is incomplete runs too, without reading it. Returns whether one ran.
  bool run_workers(bool blocked) {
    bool ran = false;
    while (fcgimux::dispatch::Exchange* exchange = server_.queue.try_pop()) {
      const bool complete =
          exchange->stopped() ||
          (exchange->stdin_ended() &&
           (exchange->role() != protocol::Role::Filter || exchange->data_ended()));
      if (!complete && !blocked) {
        // Left for later: a worker would block reading it. Queue order is not part of the
        // invariants, so it goes back at the end.
        parked_.push_back(exchange);
        continue;
      }
      g_body_complete = complete && read_bodies_;
      exchange->run(server_.handler);
      ran = true;
      settle();
      if (!alive_) break;
    }
    for (fcgimux::dispatch::Exchange* exchange : parked_) server_.queue.push(exchange);
    parked_.clear();
    return ran;
  }

  void check_budgets() {
    const fcgimux::Stats stats = server_.stats();
    const std::size_t requests = server_.config.max_requests_per_connection;
    check(stats.input_buffered <= requests * (kBodyBudget + kReadSize),
          "body bytes stay within their budgets");
    check(stats.output_buffered <= kOutputBudget + requests * protocol::kMaxContentLength,
          "output stays within the connection's budget");
  }

  const bool read_bodies_;
  const bool end_with_eof_;
  FuzzHandler handler_;
  Observer observer_;
  ServerCore server_;
  InputModel model_;
  bool alive_ = false;
  MemoryConnection* connection_ = nullptr;
  std::vector<fcgimux::dispatch::Exchange*> parked_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t slice = 1 + data[0] * 4u;
  const std::uint8_t choices = data[1];
  {
    Harness harness(choices);
    harness.feed(std::as_bytes(std::span(data + 2, size - 2)), slice);
    harness.finish();
    harness.check_end();
  }
  return 0;
}
