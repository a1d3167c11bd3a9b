// SPDX-License-Identifier: MIT
// Graceful stop: requests already admitted finish, then run() returns.

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "echo_handler.hpp"
#include "fcgi_client.hpp"
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

}  // namespace
}  // namespace fcgimux::test
