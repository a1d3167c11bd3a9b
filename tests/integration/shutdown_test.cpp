// SPDX-License-Identifier: MIT
// Graceful stop: requests already admitted finish, then run() returns.

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "echo_handler.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

// Counts the requests that reached a handler, then answers as EchoHandler does.
// Threading: Thread-safe.
class CountingHandler : public Handler {
 public:
  void handle(Request& request, fcgimux::Response& response) override {
    {
      const std::lock_guard lock(mutex_);
      ++started_;
    }
    started_changed_.notify_all();
    echo_.handle(request, response);
  }

  // Waits until `count` requests have started; false if they do not within kTimeout.
  bool wait_started(std::size_t count) {
    std::unique_lock lock(mutex_);
    return started_changed_.wait_for(lock, kTimeout, [&] { return started_ >= count; });
  }

 private:
  echo::EchoHandler echo_;
  std::mutex mutex_;
  std::condition_variable started_changed_;
  std::size_t started_ = 0;  // Guarded by mutex_.
};

TEST_CASE("stop() lets the requests in flight finish before run() returns", "[integration]") {
  constexpr std::size_t kRequests = 8;
  CountingHandler handler;
  Config config = test_config();
  config.workers = kRequests;
  TestServer server(handler, config);

  std::vector<std::unique_ptr<FcgiClient>> clients;
  for (std::size_t i = 0; i < kRequests; ++i) {
    clients.push_back(std::make_unique<FcgiClient>(server.endpoint()));
    clients.back()->send_request({{"QUERY_STRING", "sleep_ms=300&size=100000"}}, {});
  }
  REQUIRE(handler.wait_started(kRequests));
  server.server().stop();

  const std::vector<std::uint16_t> ids{1};
  for (auto& client : clients) {
    const Response response = client->collect(ids).by_id.at(1);
    CHECK(response.out_ended);
    REQUIRE(response.end.has_value());
    CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.status == 200);
    CHECK(cgi.body == std::string(100000, 'x'));
    // Draining closes the connection after its last request, keep-alive or not.
    CHECK_FALSE(client->read_record().has_value());
  }
  server.stop();  // throws unless run() returns
}

TEST_CASE("stop() closes connections whose request never finishes arriving, without waiting for "
          "the shutdown deadline",
          "[integration]") {
  CountingHandler handler;
  LogCapture log;
  Config config = test_config();
  config.shutdown_timeout = std::chrono::seconds(60);
  config.log_level = LogLevel::Info;
  config.log = log.sink();
  TestServer server(handler, config);

  // Params begun and never ended.
  FcgiClient unended(server.endpoint());
  unended.send_begin_request(1, true);
  std::string params;
  append_record(params, protocol::RecordType::Params, 1, encode_params({{"A", "1"}}), 0);
  unended.send_raw(params);
  // A record begun and never finished: its header promises 100 content bytes, 10 come.
  FcgiClient cut(server.endpoint());
  cut.send_begin_request(1, true);
  std::string record;
  append_record(record, protocol::RecordType::Params, 1, std::string(100, 'p'), 0);
  cut.send_raw(std::string_view(record).substr(0, protocol::kHeaderSize + 10));
  // A request running meanwhile finishes, as ever.
  FcgiClient running(server.endpoint());
  running.send_request({{"QUERY_STRING", "sleep_ms=300&size=10"}}, {});
  REQUIRE(handler.wait_started(1));

  const auto stopping = std::chrono::steady_clock::now();
  server.server().stop();
  const std::vector<std::uint16_t> ids{1};
  CHECK(parse_cgi_response(running.collect(ids).by_id.at(1).out).body == std::string(10, 'x'));
  // Closed without an answer: the requests never arrived.
  CHECK_FALSE(unended.read_record().has_value());
  CHECK_FALSE(cut.read_record().has_value());
  server.stop();
  // Well before the deadline, which would have cancelled the request that ran.
  CHECK(std::chrono::steady_clock::now() - stopping < config.shutdown_timeout / 2);
  CHECK(log.lines(LogLevel::Info, "a request still arriving").size() == 2);
}

}  // namespace
}  // namespace fcgimux::test
