// SPDX-License-Identifier: MIT
// Worker pools by route (Config::pools): each request runs in the pool it matches, with that
// pool's handler, workers and admission bound; a saturated pool refuses its own overflow while
// the others run on; the figures, the status page, the metrics and the access log name each
// pool; a stop drains and cancels every pool.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo_handler.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "gate.hpp"
#include "lambda_handler.hpp"
#include "log_capture.hpp"
#include "nginx.hpp"
#include "test_server.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;

Params get(std::string_view script_name, std::string_view query = {}) {
  return {{"REQUEST_METHOD", "GET"},
          {"SCRIPT_NAME", std::string(script_name)},
          {"QUERY_STRING", std::string(query)},
          {"REQUEST_URI", std::string(script_name)}};
}

// The body of a complete response, or "<status N>" for another status.
std::string answer(const Response& response) {
  if (!response.end || response.end->protocol_status != ProtocolStatus::RequestComplete ||
      !response.out_ended) {
    return "<incomplete>";
  }
  const CgiResponse cgi = parse_cgi_response(response.out);
  return cgi.status == 200 ? cgi.body : "<status " + std::to_string(cgi.status) + ">";
}

// Holds requests whose QUERY_STRING is "wait" at its gate; answers `name` to the rest.
// Threading: Thread-safe.
class NamedHandler : public Handler {
 public:
  explicit NamedHandler(std::string name) : name_(std::move(name)) {}
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    if (request.param("QUERY_STRING") == "wait" && !gate.pass(request.stop_token())) return;
    response.write(name_);
  }
  Gate gate;

 private:
  const std::string name_;
};

TEST_CASE("requests go to the first pool their path, role or predicate matches, else the default",
          "[integration][pools]") {
  NamedHandler server_handler("server");
  NamedHandler own_handler("own");
  Config config = test_config();
  config.roles = {protocol::Role::Responder, protocol::Role::Authorizer};
  config.pools = {
      {.name = "own", .workers = 1, .prefix = "/own", .handler = &own_handler},
      {.name = "auth", .workers = 1, .role = protocol::Role::Authorizer},
      {.name = "header",
       .workers = 1,
       .predicate = [](std::span<const protocol::NameValue> params) {
         return protocol::value_of(params, "HTTP_X_POOL") == "header";
       }},
      {.name = "own-too", .workers = 1, .prefix = "/own/two"},
  };
  TestServer server(server_handler, config);

  const auto ask = [&](const Params& params, RequestOptions options = {}) {
    FcgiClient client(server.endpoint());
    return answer(client.request(params, {}, options));
  };
  CHECK(ask(get("/own")) == "own");
  CHECK(ask(get("/own/two")) == "own");  // first match wins
  CHECK(ask(get("/owner")) == "server");
  Params with_header = get("/x");
  with_header.emplace_back("HTTP_X_POOL", "header");
  CHECK(ask(with_header) == "server");
  CHECK(ask(get("/x")) == "server");
  FcgiClient authorizer(server.endpoint());
  authorizer.send_begin_request(1, true, protocol::Role::Authorizer);
  authorizer.send_params(1, get("/x"));
  const std::vector<std::uint16_t> ids{1};
  CHECK(answer(authorizer.collect(ids).by_id.at(1)) == "server");

  const Stats stats = server.server().stats();
  REQUIRE(stats.pools.size() == 5);
  CHECK(stats.pools[0].name == "www");
  CHECK(stats.pools[0].requests_admitted == 2);  // "/owner" and "/x"
  CHECK(stats.pools[1].name == "own");
  CHECK(stats.pools[1].requests_admitted == 2);
  CHECK(stats.pools[2].requests_admitted == 1);
  CHECK(stats.pools[3].requests_admitted == 1);
  CHECK(stats.pools[4].requests_admitted == 0);
  CHECK(stats.requests_admitted == 6);
}

TEST_CASE("a pool's bad Config is refused", "[integration][pools]") {
  NamedHandler handler("server");
  const auto refused = [&](Pool pool) {
    Config config = test_config();
    config.pools = {std::move(pool)};
    CHECK_THROWS_AS(Server(config, handler), std::invalid_argument);
  };
  refused({.name = "", .prefix = "/a"});
  refused({.name = "www", .prefix = "/a"});
  refused({.name = "a", .workers = 0, .prefix = "/a"});
  refused({.name = "a", .max_requests = 0, .prefix = "/a"});
  refused({.name = "a"});
  refused({.name = "a", .prefix = "a"});
  Config config = test_config();
  config.pools = {{.name = "a", .prefix = "/a"}, {.name = "a", .prefix = "/b"}};
  CHECK_THROWS_AS(Server(config, handler), std::invalid_argument);
}

TEST_CASE("FCGI_GET_VALUES reports as FCGI_MAX_REQS every pool's bound added up, or the "
          "connection's when smaller",
          "[integration][pools][management]") {
  NamedHandler handler("server");
  Config config = test_config();
  config.max_requests = 30;
  config.pools = {{.name = "a", .max_requests = 5, .prefix = "/a"},
                  {.name = "b", .max_requests = 7, .prefix = "/b"}};
  const std::size_t per_connection = GENERATE(100u, 40u);
  CAPTURE(per_connection);
  config.max_requests_per_connection = per_connection;
  TestServer server(handler, config);

  FcgiClient client(server.endpoint());
  std::string query;
  protocol::append_get_values(query, std::vector<std::string_view>{protocol::kMaxReqs});
  client.send_raw(query);
  const std::optional<ReceivedRecord> record = client.read_record();
  REQUIRE(record);
  REQUIRE(record->header.type == protocol::RecordType::GetValuesResult);
  std::vector<protocol::NameValue> values;
  REQUIRE(protocol::parse_name_values(record->content, values) == protocol::Error::None);
  REQUIRE(values.size() == 1);
  CHECK(values[0].value == (per_connection == 100u ? "42" : "40"));
}

TEST_CASE("a saturated pool refuses its overflow at once while the default pool runs on, and "
          "each pool's figures show it",
          "[integration][pools]") {
  NamedHandler handler("fast");
  LogCapture log;
  Config config = test_config();
  config.workers = 2;
  config.status_path = "/status";
  config.access_log = true;
  config.log = log.sink();
  config.pools = {{.name = "slow", .workers = 1, .max_requests = 2, .prefix = "/slow"}};
  TestServer server(handler, config);

  // One running, one queued: the pool is full.
  FcgiClient first(server.endpoint());
  first.send_request(get("/slow", "wait"), {});
  REQUIRE(handler.gate.wait_arrivals(1));
  FcgiClient second(server.endpoint());
  second.send_request(get("/slow", "wait"), {});
  REQUIRE(eventually([&] { return server.server().stats().pools[1].requests_queued == 1; }));

  {
    FcgiClient third(server.endpoint());
    CHECK(answer(third.request(get("/slow", "wait"))) == "<status 503>");
  }
  for (int i = 0; i < 20; ++i) {
    FcgiClient client(server.endpoint());
    CHECK(answer(client.request(get("/fast"))) == "fast");
  }

  const Stats stats = server.server().stats();
  REQUIRE(stats.pools.size() == 2);
  const PoolStats& www = stats.pools[0];
  const PoolStats& slow = stats.pools[1];
  CHECK(www.requests_admitted == 20);
  CHECK(www.requests_overloaded == 0);
  CHECK(www.requests_running == 0);
  CHECK(slow.workers == 1);
  CHECK(slow.max_requests == 2);
  CHECK(slow.requests_admitted == 2);
  CHECK(slow.requests_overloaded == 1);
  CHECK(slow.requests_running == 1);
  CHECK(slow.requests_queued == 1);
  CHECK(stats.requests_overloaded == 1);

  FcgiClient status(server.endpoint());
  const CgiResponse text = parse_cgi_response(status.request(get("/status", "pool=slow&full")).out);
  CHECK_THAT(text.body, Catch::StartsWith("pool:                 slow\n"));
  CHECK_THAT(text.body, Catch::Contains("\nlisten queue:         1\n"));
  CHECK_THAT(text.body, Catch::Contains("\nlisten queue len:     1\n"));
  CHECK_THAT(text.body, Catch::Contains("\nactive processes:     1\n"));
  CHECK_THAT(text.body, Catch::Contains("\nidle processes:       0\n"));
  CHECK_THAT(text.body, Catch::Contains("\nmax children reached: 1\n"));
  CHECK_THAT(text.body, Catch::Contains("\npool:                 slow\npid:"));
  CHECK_THAT(text.body, !Catch::Contains("pool:                 www"));
  const CgiResponse whole = parse_cgi_response(status.request(get("/status")).out);
  CHECK_THAT(whole.body, Catch::StartsWith("pool:                 www\n"));
  CHECK_THAT(whole.body, Catch::Contains("\ntotal processes:      3\n"));
  const CgiResponse metrics = parse_cgi_response(status.request(get("/status", "prometheus")).out);
  CHECK_THAT(metrics.body, Catch::Contains("\nphpfpm_max_children_reached{pool=\"www\"} 0\n"
                                           "phpfpm_max_children_reached{pool=\"slow\"} 1\n"));
  CHECK_THAT(metrics.body, Catch::Contains("\nphpfpm_accepted_connections{pool=\"www\"} 20\n"
                                           "phpfpm_accepted_connections{pool=\"slow\"} 2\n"));
  const CgiResponse open =
      parse_cgi_response(status.request(get("/status", "openmetrics&pool=slow")).out);
  CHECK_THAT(open.body, Catch::Contains("\nphpfpm_active_processes{pool=\"slow\"} 1\n"));
  CHECK_THAT(open.body, !Catch::Contains("pool=\"www\""));
  CHECK(parse_cgi_response(status.request(get("/status", "pool=none")).out).status == 404);

  handler.gate.open();
  const std::vector<std::uint16_t> ids{1};
  CHECK(answer(first.collect(ids).by_id.at(1)) == "fast");
  CHECK(answer(second.collect(ids).by_id.at(1)) == "fast");

  // A worker writes its access line after the response went out: wait for the last ones. The
  // status page is the server's own: its lines name no pool.
  CHECK(eventually([&] { return log.lines(LogLevel::Info, " pool=").size() == 23; }));
  CHECK(log.lines(LogLevel::Info, "access method=GET uri=/fast ").size() == 20);
  for (const std::string& line : log.lines(LogLevel::Info, "uri=/fast ")) {
    CHECK_THAT(line, Catch::EndsWith(" pool=www"));
  }
  CHECK(log.lines(LogLevel::Info, "result=refused reason=overload").size() == 1);
  CHECK_THAT(log.lines(LogLevel::Info, "result=refused reason=overload").front(),
             Catch::EndsWith(" pool=slow"));
  CHECK(log.contains(LogLevel::Warning, "overloaded (2 requests admitted in pool slow)"));
}

TEST_CASE("a stop drains every pool, and at its deadline reaches the queued requests of every pool",
          "[integration][pools]") {
  NamedHandler handler("done");
  Config config = test_config();
  config.workers = 1;
  config.pools = {{.name = "slow", .workers = 1, .max_requests = 4, .prefix = "/slow"}};
  const bool cancel = GENERATE(false, true);
  CAPTURE(cancel);
  config.shutdown_timeout = std::chrono::milliseconds(cancel ? 100 : 10'000);
  TestServer server(handler, config);

  // In each pool one request runs (held at the gate) and one waits for the worker.
  std::vector<FcgiClient> clients;
  for (const std::string_view path : {"/fast", "/fast", "/slow", "/slow"}) {
    clients.emplace_back(server.endpoint());
    clients.back().send_request(get(path, "wait"), {});
  }
  REQUIRE(eventually([&] {
    const Stats stats = server.server().stats();
    return stats.pools[0].requests_queued == 1 && stats.pools[1].requests_queued == 1;
  }));
  REQUIRE(handler.gate.wait_arrivals(2));

  server.server().stop();
  const std::vector<std::uint16_t> ids{1};
  if (!cancel) {
    // Draining: the held ones finish, and the queued ones still run.
    handler.gate.open();
    for (FcgiClient& client : clients) CHECK(answer(client.collect(ids).by_id.at(1)) == "done");
    server.stop();
    CHECK(server.server().stats().requests_completed == 4);
  } else {
    // The deadline cancels the running ones and takes the queued ones back, in both pools.
    for (FcgiClient& client : clients) {
      CHECK(answer(client.collect(ids).by_id.at(1)) == "<status 503>");
    }
    server.stop();
    const Stats stats = server.server().stats();
    CHECK(stats.requests_aborted == 4);
    CHECK(stats.requests_completed == 0);
    CHECK(stats.pools[0].requests_queued == 0);
    CHECK(stats.pools[1].requests_queued == 0);
  }
}

TEST_CASE("through nginx, a slow route saturating its pool leaves the fast route answering at once",
          "[integration][pools][nginx][latency]") {
  if (!NginxFrontend::available()) return;
  echo::EchoHandler handler;
  LogCapture log;  // 47 refusals, one Warning line each
  Config config = test_config();
  config.log = log.sink();
  config.workers = 16;
  config.pools = {{.name = "slow", .workers = 2, .max_requests = 3, .prefix = "/slow"}};
  TestServer server(handler, config);
  // 66 clients, each with its upstream connection, and room to spare.
  const NginxFrontend nginx(server.endpoint(), "1m", 256);

  constexpr int kSlowClients = 50;
  constexpr int kFastClients = 16;
  constexpr int kFastRequests = 20;
  using Clock = std::chrono::steady_clock;
  std::atomic<int> slow_refused{0};
  std::atomic<int> slow_served{0};
  std::atomic<std::int64_t> slowest_refusal_us{0};
  std::vector<std::jthread> slow;
  for (int i = 0; i < kSlowClients; ++i) {
    slow.emplace_back([&] {
      const auto begun = Clock::now();
      const HttpResponse response = http_exchange(
          nginx.address(), "GET /slow?sleep_ms=2000 HTTP/1.0\r\nHost: localhost\r\n\r\n",
          std::chrono::seconds(10));
      const auto took =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begun).count();
      if (response.status == 503) {
        ++slow_refused;
        std::int64_t seen = slowest_refusal_us.load();
        while (seen < took && !slowest_refusal_us.compare_exchange_weak(seen, took)) {
        }
      } else if (response.status == 200) {
        ++slow_served;
      }
    });
  }
  // The slow pool is saturated: 2 running, 1 queued, the other 47 refused.
  REQUIRE(eventually([&] {
    const PoolStats pool = server.server().stats().pools[1];
    return pool.requests_running == 2 && pool.requests_queued == 1 &&
           pool.requests_overloaded == kSlowClients - 3;
  }));

  std::atomic<int> fast_ok{0};
  std::atomic<std::int64_t> slowest_fast_us{0};
  {
    std::vector<std::jthread> fast;
    for (int i = 0; i < kFastClients; ++i) {
      fast.emplace_back([&] {
        for (int r = 0; r < kFastRequests; ++r) {
          const auto begun = Clock::now();
          const HttpResponse response = http_exchange(
              nginx.address(), "GET /fast?size=100 HTTP/1.0\r\nHost: localhost\r\n\r\n");
          const auto took =
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begun).count();
          if (response.status == 200 && response.message.body == std::string(100, 'x')) {
            ++fast_ok;
          }
          std::int64_t seen = slowest_fast_us.load();
          while (seen < took && !slowest_fast_us.compare_exchange_weak(seen, took)) {
          }
        }
      });
    }
  }
  // Still saturated when the last fast request was answered: they overlapped.
  const Stats during = server.server().stats();
  CHECK(during.pools[1].requests_running == 2);
  for (std::jthread& thread : slow) thread.join();

  CHECK(fast_ok == kFastClients * kFastRequests);
  CHECK(slow_refused == kSlowClients - 3);
  CHECK(slow_served == 3);
  const Stats stats = server.server().stats();
  CHECK(stats.pools[0].requests_overloaded == 0);
  CHECK(stats.pools[0].requests_admitted == kFastClients * kFastRequests);
  CHECK(stats.pools[1].requests_overloaded == kSlowClients - 3);
  INFO("slowest fast request " << slowest_fast_us.load() << " us, slowest refusal "
                               << slowest_refusal_us.load() << " us");
  // The latency bound the issue sets, asserted where timing means something: not under a
  // sanitizer, which slows every request several times over.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(slowest_fast_us.load() < 50'000);
  CHECK(slowest_refusal_us.load() < 50'000);
#endif
}

}  // namespace
}  // namespace fcgimux::test
