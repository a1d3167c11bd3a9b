// SPDX-License-Identifier: MIT
// Detached responses under load: a thousand open streams on four workers, fed by one publisher
// thread, beside clients making ordinary requests. Here, not in the integration suite, for its
// latency bound, which a loaded machine could break.

#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fcgi_client.hpp"
#include "stream_box.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using Written = ResponseStream::Written;
using namespace std::chrono_literals;

Response collect_one(FcgiClient& client) {
  const std::vector<std::uint16_t> ids{1};
  return std::move(client.collect(ids).by_id.at(1));
}

// The load: 1,000 streams and 4 workers, one publisher thread, 16 clients making
// ordinary requests meanwhile, which must not wait behind the streams.
TEST_CASE("a thousand streams get every event in order and ordinary requests go on beside them",
          "[interop][stream]") {
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.workers = 4;
  TestServer server(handler, config);
  constexpr std::size_t kStreams = 1'000;
  constexpr int kEvents = 5;
  std::vector<FcgiClient> clients;
  clients.reserve(kStreams);
  for (std::size_t i = 0; i < kStreams; ++i) {
    clients.emplace_back(server.endpoint());
    clients.back().send_request(stream_params(), {});
  }
  std::vector<ResponseStream> streams = box.take(kStreams);
  REQUIRE(streams.size() == kStreams);

  std::atomic<std::size_t> refused{0};
  std::jthread publisher([&] {
    for (int event = 1; event <= kEvents; ++event) {
      const std::string text = fmt::format("id: {0}\ndata: {0}\n\n", event);
      for (ResponseStream& stream : streams) {
        Written written = stream.write(text);
        for (int i = 0; i < 100 && written == Written::WouldBlock; ++i) {
          stream.wait_writable(std::chrono::steady_clock::now() + 100ms);
          written = stream.write(text);
        }
        if (written != Written::Queued) ++refused;
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  std::atomic<std::int64_t> slowest_us{0};
  std::atomic<std::size_t> failed{0};
  std::vector<std::jthread> ordinary;
  for (int t = 0; t < 16; ++t) {
    ordinary.emplace_back([&] {
      try {
        FcgiClient client(server.endpoint());
        for (int i = 0; i < 50; ++i) {
          const auto start = std::chrono::steady_clock::now();
          const Response response = client.request({{"QUERY_STRING", "ok"}});
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count();
          if (!response.end || parse_cgi_response(response.out).body != "ok") ++failed;
          std::int64_t seen = slowest_us.load();
          while (seen < us && !slowest_us.compare_exchange_weak(seen, us)) {
          }
        }
      } catch (const std::exception&) {
        ++failed;
      }
    });
  }

  std::string expected;
  for (int event = 1; event <= kEvents; ++event) {
    expected += fmt::format("id: {0}\ndata: {0}\n\n", event);
  }
  std::size_t whole = 0;
  for (FcgiClient& client : clients) {
    std::string out;
    while (!out.ends_with(expected) && out.size() < 4096) {
      const std::optional<ReceivedRecord> record = client.read_record();
      REQUIRE(record.has_value());
      REQUIRE(record->header.type == protocol::RecordType::Stdout);
      out += record->content;
    }
    if (parse_cgi_response(out).body == expected) ++whole;
  }
  publisher.join();
  ordinary.clear();
  CHECK(whole == kStreams);
  CHECK(refused == 0);
  CHECK(failed == 0);
  CAPTURE(slowest_us.load());
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // The bound: the streams hold no worker, so ordinary requests never queue for one.
  CHECK(slowest_us.load() < 50'000);
#endif
  streams.clear();  // dropped: each ends its request
  std::size_t ended = 0;
  for (FcgiClient& client : clients) {
    if (collect_one(client).end.has_value()) ++ended;
  }
  CHECK(ended == kStreams);
  CHECK(server.server().stats().streams_open == 0);
}

}  // namespace
}  // namespace fcgimux::test
