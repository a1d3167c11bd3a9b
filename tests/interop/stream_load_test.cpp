// SPDX-License-Identifier: MIT
// Detached responses under load: a thousand open streams on four workers, fed by one publisher
// thread, beside clients making ordinary requests, from FastCGI clients directly and from HTTP
// clients through a real nginx. Here, not in the integration suite, for their latency bound,
// which a loaded machine could break.

#include <fmt/format.h>
#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "fcgi_client.hpp"
#include "interop.hpp"
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

// The publisher's event `number`.
std::string event(int number) { return fmt::format("id: {0}\ndata: {0}\n\n", number); }

// What a stream receives of events 1 to `count`.
std::string all_events(int count) {
  std::string events;
  for (int number = 1; number <= count; ++number) events += event(number);
  return events;
}

// The one publisher: writes events 1 to `count` to every stream, pausing `pause` after every
// `slice` streams and after each event; a stream that cannot take an event within 10 s counts
// in `refused`.
void publish(std::vector<ResponseStream>& streams, int count, std::atomic<std::size_t>& refused,
             std::size_t slice, std::chrono::milliseconds pause) {
  for (int number = 1; number <= count; ++number) {
    const std::string text = event(number);
    for (std::size_t s = 0; s < streams.size(); ++s) {
      ResponseStream& stream = streams[s];
      Written written = stream.write(text);
      for (int i = 0; i < 100 && written == Written::WouldBlock; ++i) {
        stream.wait_writable(std::chrono::steady_clock::now() + 100ms);
        written = stream.write(text);
      }
      if (written != Written::Queued) ++refused;
      if ((s + 1) % slice == 0 && s + 1 < streams.size()) std::this_thread::sleep_for(pause);
    }
    std::this_thread::sleep_for(pause);
  }
}

void keep_slowest(std::atomic<std::int64_t>& slowest_us, std::int64_t us) {
  std::int64_t seen = slowest_us.load();
  while (seen < us && !slowest_us.compare_exchange_weak(seen, us)) {
  }
}

// Whether this process may open `needed` descriptors, raising its soft limit up to its hard
// one if it must (programs it starts afterwards, nginx among them, inherit it). Warns when it
// cannot.
bool descriptors_for(rlim_t needed) {
  rlimit limit{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur >= needed) return true;
  if (limit.rlim_max < needed) {
    WARN("skipped: RLIMIT_NOFILE allows " << limit.rlim_max << " descriptors, not " << needed);
    return false;
  }
  limit.rlim_cur = limit.rlim_max;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &limit) == 0);
  return true;
}

// An HTTP/1.1 response with a chunked body (RFC 9112 §7.1), as far as it has arrived.
struct ChunkedResponse {
  int status = 0;      // 0 until the status line is in
  std::string body;    // the whole chunks that arrived, joined
  bool ended = false;  // the last chunk (size 0) arrived
};

// Parses `received`, the bytes of one response from its status line on. Throws TestError
// when they are not a chunked HTTP/1.1 response.
ChunkedResponse chunked_response(std::string_view received) {
  ChunkedResponse response;
  const std::size_t head_end = received.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return response;
  const std::string_view head = received.substr(0, head_end + 2);
  if (!head.starts_with("HTTP/1.1 ") || head.size() < 12 ||
      head.find("\r\nTransfer-Encoding: chunked\r\n") == std::string_view::npos) {
    throw TestError(fmt::format("not a chunked HTTP/1.1 response: {}", head));
  }
  if (std::from_chars(head.data() + 9, head.data() + 12, response.status).ec != std::errc{}) {
    throw TestError(fmt::format("a malformed status line: {}", head));
  }
  std::string_view rest = received.substr(head_end + 4);
  for (;;) {
    const std::size_t line_end = rest.find("\r\n");
    if (line_end == std::string_view::npos) return response;
    std::size_t size = 0;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + line_end, size, 16);
    if (error != std::errc{} || end != rest.data() + line_end) {
      throw TestError(fmt::format("a malformed chunk size line: {}", rest.substr(0, line_end)));
    }
    if (size == 0) {
      response.ended = true;
      return response;
    }
    if (rest.size() < line_end + 2 + size + 2) return response;
    response.body.append(rest.substr(line_end + 2, size));
    rest.remove_prefix(line_end + 2 + size + 2);
  }
}

// The end of nginx's logs, for failure messages.
std::string logs_tail(const Peer& nginx) {
  const std::string logs = nginx.logs();
  return logs.substr(logs.size() > 8'000 ? logs.size() - 8'000 : 0);
}

// The load: 1,000 streams and 4 workers, one publisher thread, 16 clients making
// ordinary requests meanwhile, which must not wait behind the streams.
TEST_CASE("a thousand streams get every event in order and ordinary requests go on beside them",
          "[interop][stream][latency]") {
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
  std::jthread publisher([&] { publish(streams, kEvents, refused, kStreams, 10ms); });
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
          keep_slowest(slowest_us, us);
        }
      } catch (const std::exception&) {
        ++failed;
      }
    });
  }

  const std::string expected = all_events(kEvents);
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

// The same load from HTTP clients, through nginx with fastcgi_buffering off for the streams,
// as docs/deploy.md shows it (configs/nginx-streams.conf).
TEST_CASE(
    "a thousand streams through nginx get every event in order and ordinary requests go on "
    "beside them",
    "[interop][stream][nginx][latency]") {
  if (!installed(kNginx, "nginx-light")) return;
  constexpr std::size_t kStreams = 1'000;
  constexpr int kEvents = 5;
  constexpr std::size_t kMostBytes = 64 * 1024;  // read from one stream at most
  // Each stream takes two descriptors here (its HTTP client and the server's end of nginx's
  // FastCGI connection) and two in nginx, which inherits the limit; nginx's worker_connections
  // count both of its own.
  if (!descriptors_for(2 * kStreams + 256)) return;
  constexpr int kWorkerConnections = 2 * kStreams + 1'024;
  StreamBox box;
  LambdaHandler handler = streaming_handler(box);
  Config config = test_config();
  config.workers = 4;
  TestServer server(handler, config);
  Peer nginx;
  start_nginx(nginx, "nginx-streams.conf", server.endpoint(), kWorkerConnections);

  std::vector<Socket> clients;
  std::vector<std::string> received(kStreams);
  clients.reserve(kStreams);
  for (std::size_t i = 0; i < kStreams; ++i) {
    clients.push_back(Socket::connect(nginx.http(), kInteropTimeout));
    clients.back().send_all("GET /events?stream HTTP/1.1\r\nHost: localhost\r\n\r\n", received[i]);
    // Let nginx and the server keep up, so that no listen backlog overflows.
    if ((i + 1) % 250 == 0 &&
        !eventually([&] { return server.server().stats().streams_open == i + 1; },
                    kInteropTimeout)) {
      FAIL("only " << server.server().stats().streams_open << " of " << i + 1
                   << " streams opened; nginx's logs end:\n"
                   << logs_tail(nginx));
    }
  }
  std::vector<ResponseStream> streams = box.take(kStreams);
  REQUIRE(streams.size() == kStreams);
  // Every client sees its stream open before the events begin: an SSE comment line, since
  // nginx holds a response head back until body bytes follow it.
  constexpr std::string_view kOpened = ": opened\n\n";
  std::size_t refused_openings = 0;
  for (ResponseStream& stream : streams) {
    if (stream.write(kOpened) != Written::Queued) ++refused_openings;
  }
  REQUIRE(refused_openings == 0);
  for (std::size_t i = 0; i < kStreams; ++i) {
    while (chunked_response(received[i]).body.size() < kOpened.size() &&
           received[i].size() < kMostBytes && clients[i].receive(received[i])) {
    }
  }

  std::atomic<std::size_t> refused{0};
  std::atomic<bool> published{false};
  // Each event goes out in slices of a hundred streams, 10 ms apart, as a publisher of one event
  // a second spreads its writes: nginx's one worker relays a burst of a thousand in tens of
  // milliseconds on a loaded machine, and ordinary requests would wait behind it there.
  std::jthread publisher([&] {
    publish(streams, kEvents, refused, 100, 10ms);
    published = true;
  });
  std::atomic<std::int64_t> slowest_us{0};
  std::atomic<std::size_t> failed{0};
  std::atomic<std::size_t> answered{0};
  std::vector<std::jthread> ordinary;
  for (int t = 0; t < 16; ++t) {
    ordinary.emplace_back([&] {
      for (int i = 0; i < 1'000 && !published; ++i) {
        try {
          const auto start = std::chrono::steady_clock::now();
          const HttpResponse response = fetch(nginx.http(), http_get("/?ok"));
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count();
          if (response.status != 200 || response.message.body != "ok") ++failed;
          ++answered;
          keep_slowest(slowest_us, us);
        } catch (const TestError&) {
          ++failed;
        }
      }
    });
  }

  const std::string expected = std::string(kOpened) + all_events(kEvents);
  std::size_t whole = 0;
  for (std::size_t i = 0; i < kStreams; ++i) {
    ChunkedResponse response;
    while ((response = chunked_response(received[i])).body.size() < expected.size() &&
           !response.ended && received[i].size() < kMostBytes && clients[i].receive(received[i])) {
    }
    if (response.status == 200 && response.body == expected) ++whole;
  }
  publisher.join();
  ordinary.clear();
  CHECK(whole == kStreams);
  CHECK(refused == 0);
  CHECK(failed == 0);
  CHECK(answered >= 16);
  CAPTURE(slowest_us.load());
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // The bound: the streams hold no worker, so ordinary requests never queue for one.
  CHECK(slowest_us.load() < 50'000);
#endif
  streams.clear();  // dropped: each ends its request, and nginx its chunked response
  std::size_t ended = 0;
  for (std::size_t i = 0; i < kStreams; ++i) {
    while (!chunked_response(received[i]).ended && received[i].size() < kMostBytes &&
           clients[i].receive(received[i])) {
    }
    if (chunked_response(received[i]).ended) ++ended;
  }
  CHECK(ended == kStreams);
  CHECK(eventually([&] { return server.server().stats().streams_open == 0; }, kInteropTimeout));
}

}  // namespace
}  // namespace fcgimux::test
