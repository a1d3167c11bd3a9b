// SPDX-License-Identifier: MIT
// Detached responses (Response::detach(), ResponseStream): the worker is free once the handler
// returns, any thread writes, the stream is stopped when its client goes away, the deadline or
// the shutdown passes, and its request ends exactly once, by end() or by dropping the handle.

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "lambda_handler.hpp"
#include "stream_box.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using Written = ResponseStream::Written;
using namespace std::chrono_literals;

Response collect_one(FcgiClient& client) {
  const std::vector<std::uint16_t> ids{1};
  return std::move(client.collect(ids).by_id.at(1));
}

void check_ok(std::string_view endpoint) {
  FcgiClient client(endpoint);
  const Response response = client.request({{"QUERY_STRING", "ok"}});
  REQUIRE(response.end.has_value());
  CHECK(parse_cgi_response(response.out).body == "ok");
}

// Reads records until the connection closes; returns them. Throws on a timeout.
std::vector<ReceivedRecord> read_until_closed(FcgiClient& client) {
  std::vector<ReceivedRecord> records;
  while (std::optional<ReceivedRecord> record = client.read_record()) {
    records.push_back(std::move(*record));
  }
  return records;
}

bool has_end_request(const std::vector<ReceivedRecord>& records) {
  for (const ReceivedRecord& record : records) {
    if (record.header.type == protocol::RecordType::EndRequest) return true;
  }
  return false;
}

// `count` clients, each on a connection of its own with a request for a stream sent.
std::vector<FcgiClient> stream_clients(std::string_view endpoint, std::size_t count) {
  std::vector<FcgiClient> clients;
  clients.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    clients.emplace_back(endpoint);
    clients.back().send_request(stream_params(), {});
  }
  return clients;
}

TEST_CASE("a detached response goes on after its handler returned, without its worker",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.workers = 1;
  TestServer server(handler, config);

  FcgiClient client(server.endpoint());
  client.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  CHECK(server.server().stats().streams_open == 1);
  // The only worker is free: an ordinary request is served while the stream is open.
  check_ok(server.endpoint());

  CHECK(stream.open());
  CHECK(stream.write("first ") == Written::Queued);
  CHECK(stream.print("{} {}", "second", 2) == Written::Queued);
  stream.end(7);
  CHECK(stream.write("late") == Written::Closed);
  stream.end(8);  // only the first end() counts

  const Response response = collect_one(client);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(response.end->app_status == 7);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.header("Content-Type") == "text/plain");
  CHECK_FALSE(cgi.header("Content-Length").has_value());
  CHECK(cgi.body == "first second 2");
  CHECK(eventually([&] { return server.server().stats().streams_open == 0; }));
  CHECK(server.server().stats().stream_writes_dropped == 1);
  CHECK(server.server().stats().requests_completed == 2);
  // The connection takes the next request.
  CHECK(parse_cgi_response(client.request({{"QUERY_STRING", "ok"}}).out).body == "ok");
}

TEST_CASE("a detached response dropped without end() ends its request once",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  client.send_request(stream_params(), {});
  {
    ResponseStream stream = box.take_one();
    CHECK(stream.flush() == Written::Queued);
    CHECK(stream.write("partial") == Written::Queued);
    ResponseStream moved = std::move(stream);
    CHECK(stream.write("to nowhere") == Written::Closed);  // NOLINT(bugprone-use-after-move)
  }
  const Response response = collect_one(client);
  REQUIRE(response.end.has_value());
  CHECK(response.end->app_status == 0);
  CHECK(parse_cgi_response(response.out).body == "partial");
  // collect() fails on any record after END_REQUEST: the next request's answer is alone.
  CHECK(parse_cgi_response(client.request({{"QUERY_STRING", "ok"}}).out).body == "ok");
  CHECK(server.server().stats().streams_open == 0);
}

// The callback fires, writes drop, no END_REQUEST goes out, and the stream count returns to 0.
TEST_CASE("a client closing its connection stops its stream",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  TestServer server(handler);
  std::optional<FcgiClient> client(std::in_place, server.endpoint());
  client->send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  CHECK(stream.write("hello") == Written::Queued);

  std::promise<void> stopped;
  stream.on_stop([&stopped] { stopped.set_value(); });
  client.reset();
  REQUIRE(stopped.get_future().wait_for(kTimeout) == std::future_status::ready);
  CHECK(stream.stop_token().stop_requested());
  CHECK(stream.stop_reason() == StopReason::ClientGone);
  CHECK_FALSE(stream.open());
  CHECK(stream.write("gone") == Written::Closed);
  CHECK(stream.flush() == Written::Closed);
  CHECK(server.server().stats().stream_writes_dropped == 2);
  // The connection waits for its stream to end, then goes.
  stream.end();
  CHECK(stream.stop_reason() == StopReason::ClientGone);
  CHECK(eventually([&] {
    const Stats stats = server.server().stats();
    return stats.streams_open == 0 && stats.connections_open == 0;
  }));
  CHECK(server.server().stats().requests_aborted == 1);
}

TEST_CASE("an aborted stream is stopped and answered with END_REQUEST once ended",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  client.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  CHECK(stream.write("before") == Written::Queued);
  client.send_abort(1);
  REQUIRE(eventually([&] { return stream.stop_token().stop_requested(); }));
  CHECK(stream.stop_reason() == StopReason::ClientAbort);
  CHECK(stream.write("after") == Written::Closed);
  // Set after the stop: called at once.
  bool called = false;
  stream.on_stop([&called] { called = true; });
  CHECK(called);
  stream.end(3);
  const Response response = collect_one(client);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body == "before");
}

TEST_CASE("a stream written from several threads keeps each thread's writes whole and in order",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.connection_output_budget = 4 * 1024;  // small: writers meet WouldBlock and wait
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());
  client.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();

  constexpr int kThreads = 4;
  constexpr int kLines = 300;
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&stream, t] {
        for (int i = 0; i < kLines; ++i) {
          const std::string line = fmt::format("{} {:04}\n", t, i);
          for (int attempt = 0; attempt < 1000; ++attempt) {
            const Written written = stream.write(line);
            if (written != Written::WouldBlock) break;
            stream.wait_writable(std::chrono::steady_clock::now() + 100ms);
          }
          (void)stream.open();
          (void)stream.stop_reason();
        }
      });
    }
    // The client reads meanwhile: collect() below would only start after the writers.
    std::string out;
    const std::size_t line_size = std::string("0 0000\n").size();
    while (out.size() < kThreads * kLines * line_size) {
      const std::optional<ReceivedRecord> record = client.read_record();
      REQUIRE(record.has_value());
      REQUIRE(record->header.type == protocol::RecordType::Stdout);
      out += record->content;
      if (const auto blank = out.find("\r\n\r\n"); out.starts_with("Status:") && blank != out.npos) {
        out.erase(0, blank + 4);
      }
    }
    writers.clear();
    std::vector<int> next(kThreads, 0);
    for (std::size_t at = 0; at + line_size <= out.size(); at += line_size) {
      const int thread = out[at] - '0';
      REQUIRE(thread >= 0);
      REQUIRE(thread < kThreads);
      CHECK(out.substr(at, line_size) ==
            fmt::format("{} {:04}\n", thread, next[static_cast<std::size_t>(thread)]++));
    }
    CHECK(next == std::vector<int>(kThreads, kLines));
  }
  stream.end();
  const Response response = collect_one(client);
  REQUIRE(response.end.has_value());
  CHECK(response.out.empty());
}

TEST_CASE("streams whose clients never read stay within their output budgets",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  constexpr std::size_t kBudget = 16 * 1024;
  constexpr std::size_t kWrite = 1024;
  constexpr std::size_t kStreams = 8;
  config.connection_output_budget = kBudget;
  TestServer server(handler, config);
  std::vector<FcgiClient> clients;
  for (std::size_t i = 0; i < kStreams; ++i) {
    clients.emplace_back(server.endpoint());
    clients.back().send_request(stream_params(), {});
  }
  std::vector<ResponseStream> streams = box.take(kStreams);
  const std::string chunk(kWrite, 'x');
  for (ResponseStream& stream : streams) {
    // The socket takes what the kernel buffers first (loopback grows its buffers as they
    // fill); then the budget fills, and stays full.
    bool full = false;
    for (int i = 0; i < 100'000 && !full; ++i) {
      const Written written = stream.write(chunk);
      REQUIRE(written != Written::Closed);
      full = written == Written::WouldBlock &&
             !stream.wait_writable(std::chrono::steady_clock::now() + 10ms);
    }
    REQUIRE(full);
  }
  const Stats stats = server.server().stats();
  CAPTURE(stats.output_buffered);
  CHECK(stats.output_buffered > 0);
  CHECK(stats.output_buffered <= kStreams * (kBudget + kWrite + 64));
  // Closing the clients stops the streams; the memory goes with the connections.
  clients.clear();
  for (ResponseStream& stream : streams) {
    CHECK(eventually([&] { return !stream.open(); }));
  }
  streams.clear();
  CHECK(eventually([&] {
    const Stats now = server.server().stats();
    return now.streams_open == 0 && now.output_buffered == 0 && now.connections_open == 0;
  }));
}

TEST_CASE("a detach past max_streams is answered as overloaded while ordinary requests go on",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.max_streams = 1;
  config.max_requests = 1;
  TestServer server(handler, config);
  FcgiClient first(server.endpoint());
  first.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  // The stream left max_requests: the one admission slot serves ordinary requests.
  check_ok(server.endpoint());

  FcgiClient second(server.endpoint());
  second.send_request(stream_params(), {});
  ResponseStream refused = box.take_one();
  CHECK_FALSE(refused.open());
  CHECK(refused.write("no") == Written::Closed);
  const Response response = collect_one(second);
  REQUIRE(response.end.has_value());
  CHECK(parse_cgi_response(response.out).status == 503);
  CHECK(server.server().stats().requests_overloaded == 1);
  CHECK(server.server().stats().streams_open == 1);
  stream.end();
  CHECK(eventually([&] { return server.server().stats().streams_open == 0; }));
}

TEST_CASE("the request deadline stops a stream", "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.request_timeout = 100ms;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());
  client.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  CHECK(stream.write("event\n") == Written::Queued);
  REQUIRE(eventually([&] { return stream.stop_token().stop_requested(); }));
  CHECK(stream.stop_reason() == StopReason::Deadline);
  stream.end();
  // Part of it went out, the rest never will: closed without END_REQUEST.
  CHECK_FALSE(has_end_request(read_until_closed(client)));
}

TEST_CASE("Request::wait_for sleeps until its duration passes or the request is stopped",
          "[integration][stream]") {
  std::promise<std::pair<bool, StopReason>> stopped;
  LambdaHandler handler([&](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") == "short") {
      response.write(request.wait_for(1ms) ? "passed" : "stopped");
      return;
    }
    const bool passed = request.wait_for(std::chrono::hours(1));
    stopped.set_value({passed, request.stop_reason()});
  });
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  CHECK(parse_cgi_response(client.request({{"QUERY_STRING", "short"}}).out).body == "passed");

  client.send_request({{"QUERY_STRING", "long"}}, {});
  REQUIRE(eventually([&] { return server.server().stats().requests_running == 1; }));
  client.send_abort(1);
  auto done = stopped.get_future();
  REQUIRE(done.wait_for(kTimeout) == std::future_status::ready);
  CHECK(done.get() == std::pair(false, StopReason::ClientAbort));
  const Response response = collect_one(client);
  CHECK(response.end.has_value());
}

TEST_CASE("at the shutdown deadline a thousand open streams are stopped and the server stops",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.shutdown_timeout = 200ms;
  constexpr std::size_t kStreams = 1'000;
  std::optional<TestServer> server(std::in_place, handler, config);
  std::vector<FcgiClient> clients = stream_clients(server->endpoint(), kStreams);
  std::vector<ResponseStream> streams = box.take(kStreams);
  // Each stream's owner ends it when told it stopped, as a publisher would.
  std::mutex mutex;
  std::size_t stopped = 0;
  std::condition_variable all_stopped;
  for (ResponseStream& stream : streams) {
    CHECK(stream.write("data: open\n\n") == Written::Queued);
    stream.on_stop([&] {
      const std::lock_guard lock(mutex);
      if (++stopped == kStreams) all_stopped.notify_one();
    });
  }
  CHECK(server->server().stats().streams_open == kStreams);
  std::size_t shutdown_reasons = 0;
  std::jthread ender([&] {
    std::unique_lock lock(mutex);
    all_stopped.wait_for(lock, kTimeout, [&] { return stopped == kStreams; });
    lock.unlock();
    for (ResponseStream& stream : streams) {
      if (stream.stop_reason() == StopReason::Shutdown) ++shutdown_reasons;
      stream.end();
    }
  });
  server->stop();  // throws when run() does not return within the deadline plus 5 s
  ender.join();
  CHECK(stopped == kStreams);
  CHECK(shutdown_reasons == kStreams);
  CHECK(server->server().stats().streams_open == 0);
  CHECK(server->server().stats().requests_abandoned == 0);
  server.reset();
  // Cut short by the stop: each connection closed, without END_REQUEST.
  for (FcgiClient& client : clients) CHECK_FALSE(has_end_request(read_until_closed(client)));
}

TEST_CASE("Config::on_drain ends the open streams as the stop begins, not at its deadline",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  // Far past the test's patience: a stop that waited for its deadline would be a failure.
  config.shutdown_timeout = 60s;
  constexpr std::size_t kStreams = 20;
  std::vector<ResponseStream> streams;
  std::vector<StopReason> reasons;
  std::size_t drains = 0;
  config.on_drain = [&] {
    ++drains;
    for (ResponseStream& stream : streams) {
      reasons.push_back(stream.stop_reason());
      CHECK(stream.write("data: bye\n\n") == Written::Queued);
      stream.end(3);
    }
  };
  std::optional<TestServer> server(std::in_place, handler, config);
  std::vector<FcgiClient> clients = stream_clients(server->endpoint(), kStreams);
  streams = box.take(kStreams);
  for (ResponseStream& stream : streams) CHECK(stream.write("data: open\n\n") == Written::Queued);

  server->stop();
  CHECK(drains == 1);
  CHECK(reasons == std::vector<StopReason>(kStreams, StopReason::None));  // still open then
  CHECK(server->server().stats().streams_open == 0);
  CHECK(server->server().stats().requests_abandoned == 0);
  CHECK(server->server().stats().stream_writes_dropped == 0);
  server.reset();
  // Each stream ended whole: its last event, then END_REQUEST with the application's status.
  for (FcgiClient& client : clients) {
    const Response response = collect_one(client);
    REQUIRE(response.end.has_value());
    CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
    CHECK(response.end->app_status == 3);
    CHECK(parse_cgi_response(response.out).body == "data: open\n\ndata: bye\n\n");
  }
}

TEST_CASE("a stream never ended is abandoned at the shutdown and stays safe after the Server",
          "[integration][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.shutdown_timeout = 50ms;
  std::optional<TestServer> server(std::in_place, handler, config);
  FcgiClient client(server->endpoint());
  client.send_request(stream_params(), {});
  ResponseStream stream = box.take_one();
  server->stop();
  CHECK(server->server().stats().requests_abandoned == 1);
  server.reset();
  CHECK(stream.stop_reason() == StopReason::Shutdown);
  CHECK(stream.write("after the server") == Written::Closed);
  stream.end();
  CHECK_FALSE(has_end_request(read_until_closed(client)));
}

}  // namespace
}  // namespace fcgimux::test
