// SPDX-License-Identifier: MIT
// The soak: for a bounded time, client threads of six kinds hammer a Server running the echo
// handler, and the run fails unless
//  - every request a client sent got exactly one END_REQUEST, with the answer echo promises;
//  - the server's counters add up: admitted = completed + aborted + failed, and the requests
//    that reached the server = admitted + refused + overloaded;
//  - the process's resident memory after warm-up grows by less than a bound (not checked
//    under sanitizers, whose quarantine holds freed memory on purpose);
//  - nothing crashed or hung: every client step is bounded (kTimeout), and so is the stop.
// The server runs in this process (for Server::stats()), so the memory measured is the
// server's plus the clients', whose own memory is bounded by their requests.
//
//   fcgimux_soak [--seconds N]    (or FCGIMUX_SOAK_SECONDS=N; default FCGIMUX_SOAK_DEFAULT_SECONDS)
//
// Client kinds: normal (keep-alive, one request at a time, GET, POST and large answers);
// multiplexed (8 interleaved requests per round); aborting (FCGI_ABORT_REQUEST after a
// random short delay); slow-reading (a 1 MiB answer read a record at a time with pauses);
// oversized (params past max_params_bytes, CONTENT_LENGTH past max_body_bytes); garbage
// (bytes that are no FastCGI, then the server must close).

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr int kClientsPerKind = 2;
// Growth of resident memory from warm-up to the end that fails the run. The server's own
// buffers are bounded far below this (see bench/flow_memory.cpp); a leak of a few bytes per
// request over hundreds of thousands of requests is not.
constexpr std::uint64_t kRssGrowthBoundKiB = 32 * 1024;

// Resident memory of this process in KiB (VmRSS in /proc/self/status).
std::uint64_t rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  throw TestError("no VmRSS in /proc/self/status");
}

// What every client thread adds up, and the first failure any of them saw.
struct Tally {
  std::atomic<std::uint64_t> sent{0};   // requests that reached the server (BEGIN + params)
  std::atomic<std::uint64_t> ended{0};  // END_REQUESTs received for them
  std::atomic<std::uint64_t> garbage{0};
  std::mutex mutex;
  std::vector<std::string> failures;  // Guarded by mutex.

  void fail(std::string what) {
    const std::lock_guard lock(mutex);
    if (failures.size() < 20) failures.push_back(std::move(what));
  }
};

// One client thread's loop: `round` runs one bounded step; it runs until `deadline`.
class Client {
 public:
  Client(std::string name, std::string endpoint, unsigned seed, Tally& tally)
      : name_(std::move(name)), endpoint_(std::move(endpoint)), random_(seed), tally_(tally) {}

  void run(Clock::time_point deadline, const std::function<void(Client&)>& round) {
    while (Clock::now() < deadline) {
      try {
        round(*this);
      } catch (const std::exception& error) {
        tally_.fail(fmt::format("{}: {}", name_, error.what()));
        return;
      }
    }
  }

  std::size_t pick(std::size_t low, std::size_t high) {
    return std::uniform_int_distribution<std::size_t>(low, high)(random_);
  }
  std::string bytes(std::size_t size) {
    std::string out(size, '\0');
    for (char& c : out) c = static_cast<char>(pick(0, 255));
    return out;
  }
  // The keep-alive connection, made anew when it is missing.
  FcgiClient& connection() {
    if (!connection_) connection_.emplace(endpoint_);
    return *connection_;
  }
  void drop_connection() { connection_.reset(); }
  void check(bool ok, std::string_view what) {
    if (!ok) throw TestError(std::string(what));
  }
  // Checks one complete response: exactly one END_REQUEST, complete, with `status`/`body`.
  void check_response(const Response& response, int status, std::optional<std::string> body) {
    check(response.end.has_value(), "no END_REQUEST");
    tally_.ended.fetch_add(1, std::memory_order_relaxed);
    check(response.end->protocol_status == ProtocolStatus::RequestComplete,
          "END_REQUEST not complete");
    const CgiResponse cgi = parse_cgi_response(response.out);
    check(cgi.status == status, fmt::format("status {}, not {}", cgi.status, status));
    if (body) check(cgi.body == *body, "body differs from what echo promises");
  }
  Tally& tally() { return tally_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string name_;
  std::string endpoint_;
  std::mt19937 random_;
  Tally& tally_;
  std::optional<FcgiClient> connection_;
};

void normal_round(Client& client) {
  RequestOptions options;
  options.keep_conn = client.pick(0, 20) != 0;  // now and then a connection per request
  FcgiClient& connection = client.connection();
  client.tally().sent.fetch_add(1, std::memory_order_relaxed);
  switch (client.pick(0, 2)) {
    case 0: {
      const Params params{{"REQUEST_METHOD", "GET"},
                          {"QUERY_STRING", "a=" + std::to_string(client.pick(0, 1000))},
                          {"HTTP_X_SOAK", std::string(client.pick(0, 2000), 'h')}};
      client.check_response(connection.request(params, {}, options), 200, expected_listing(params));
      break;
    }
    case 1: {
      const std::string body = client.bytes(client.pick(1, 64 * kKiB));
      const Params params{{"REQUEST_METHOD", "POST"},
                          {"CONTENT_LENGTH", std::to_string(body.size())}};
      client.check_response(connection.request(params, body, options), 200, body);
      break;
    }
    default: {
      const std::size_t size = client.pick(0, 256 * kKiB);
      client.check_response(
          connection.request({{"QUERY_STRING", "size=" + std::to_string(size)}}, {}, options), 200,
          std::string(size, 'x'));
      break;
    }
  }
  if (!options.keep_conn) client.drop_connection();
}

void multiplexed_round(Client& client) {
  constexpr std::uint16_t kInFlight = 8;
  FcgiClient& connection = client.connection();
  std::vector<std::uint16_t> ids;
  std::vector<std::string> bodies;
  for (std::uint16_t id = 1; id <= kInFlight; ++id) {
    RequestOptions options;
    options.id = id;
    bodies.push_back(client.bytes(client.pick(1, 32 * kKiB)));
    connection.send_request({{"CONTENT_LENGTH", std::to_string(bodies.back().size())}},
                            bodies.back(), options);
    ids.push_back(id);
  }
  client.tally().sent.fetch_add(kInFlight, std::memory_order_relaxed);
  Responses responses = connection.collect(ids);
  // max_requests is above what all clients can have in flight at once: none is overloaded.
  for (std::uint16_t id = 1; id <= kInFlight; ++id) {
    client.check_response(responses.by_id.at(id), 200, bodies[id - 1]);
  }
}

void aborting_round(Client& client) {
  FcgiClient& connection = client.connection();
  connection.send_begin_request(1, true);
  connection.send_params(1, {{"QUERY_STRING", "sleep_ms=1000"}});
  connection.send_stdin(1, {});
  client.tally().sent.fetch_add(1, std::memory_order_relaxed);
  std::this_thread::sleep_for(std::chrono::microseconds(client.pick(0, 3000)));
  connection.send_abort(1);
  const std::vector<std::uint16_t> ids{1};
  const Response response = connection.collect(ids).by_id.at(1);
  client.check(response.end.has_value(), "no END_REQUEST after an abort");
  client.tally().ended.fetch_add(1, std::memory_order_relaxed);
}

void slow_reading_round(Client& client) {
  FcgiClient& connection = client.connection();
  connection.send_request({{"QUERY_STRING", "size=" + std::to_string(kMiB)}}, {});
  client.tally().sent.fetch_add(1, std::memory_order_relaxed);
  Response response;
  while (!response.end) {
    std::optional<ReceivedRecord> record = connection.read_record();
    client.check(record.has_value(), "closed before END_REQUEST");
    if (record->header.type == protocol::RecordType::Stdout) {
      response.out += record->content;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } else if (record->header.type == protocol::RecordType::EndRequest) {
      response.end = protocol::EndRequestBody{};
      protocol::parse_end_request(std::as_bytes(std::span(record->content)), *response.end);
    }
  }
  client.check_response(response, 200, std::string(kMiB, 'x'));
}

void oversized_round(Client& client) {
  // Every request on this keep-alive connection is refused by the I/O thread, for the whole
  // soak: each must end its request. The 413s, answered once their params ended, are the
  // progress that keeps the connection from its idle timeout; the 431s are not.
  FcgiClient& connection = client.connection();
  client.tally().sent.fetch_add(1, std::memory_order_relaxed);
  if (client.pick(0, 1) == 0) {
    const Params params{{"HTTP_X_BIG", std::string(20 * kKiB, 'p')}};
    client.check_response(connection.request(params), 431, std::nullopt);
  } else {
    const Params params{{"CONTENT_LENGTH", std::to_string(2 * kMiB)}};
    client.check_response(connection.request(params, std::string(64 * kKiB, 'b')), 413,
                          std::nullopt);
  }
}

void garbage_round(Client& client) {
  Socket socket = Socket::connect(client.endpoint());
  std::string junk = client.bytes(client.pick(8, 512));
  junk[0] = static_cast<char>(2 + client.pick(0, 200));  // never version 1
  std::string received;
  try {
    socket.send_all(junk, received);
    while (socket.receive(received)) {
    }
  } catch (const TestError& error) {
    // A reset is as good as a close; a peer that makes no progress is a hang.
    if (std::string_view(error.what()).find("no progress") != std::string_view::npos) throw;
  }
  client.check(received.empty(), "an answer to garbage");
  client.tally().garbage.fetch_add(1, std::memory_order_relaxed);
}

int soak(std::chrono::seconds duration) {
  echo::EchoHandler handler;
  Config config = test_config();
  config.workers = 4;
  config.max_requests = 64;
  config.max_params_bytes = 16 * kKiB;
  config.max_body_bytes = kMiB;
  config.log_level = LogLevel::Error;
  TestServer server(handler, config);

  Tally tally;
  const auto started = Clock::now();
  const auto deadline = started + duration;
  const std::vector<std::pair<std::string, void (*)(Client&)>> kinds{
      {"normal", normal_round},       {"multiplexed", multiplexed_round},
      {"aborting", aborting_round},   {"slow-reading", slow_reading_round},
      {"oversized", oversized_round}, {"garbage", garbage_round}};
  std::vector<std::jthread> threads;
  unsigned seed = 1;
  for (const auto& [kind, round] : kinds) {
    for (int i = 0; i < kClientsPerKind; ++i) {
      threads.emplace_back([&, name = fmt::format("{} {}", kind, i), round = round, seed = seed++] {
        Client client(name, server.endpoint(), seed, tally);
        client.run(deadline, round);
      });
    }
  }
  // Warm-up: a tenth of the run, at most 10 s; then memory is measured from there to the end.
  std::this_thread::sleep_for(std::min<Clock::duration>(duration / 10, std::chrono::seconds(10)));
  const std::uint64_t rss_start = rss_kib();
  threads.clear();  // joins: each client stops at the deadline
  const std::uint64_t rss_end = rss_kib();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  server.stop();

  const Stats stats = server.server().stats();
  fmt::print(
      "soak: {:.0f} s, {} clients ({} of each of {} kinds); {} requests, {} END_REQUESTs, {} "
      "garbage connections\n"
      "soak: server: {} connections, admitted {} = completed {} + aborted {} + failed {} + "
      "body too large {}; refused {}, overloaded {}\n"
      "soak: RSS after warm-up {} KiB, at the end {} KiB\n",
      seconds, kinds.size() * kClientsPerKind, kClientsPerKind, kinds.size(), tally.sent.load(),
      tally.ended.load(), tally.garbage.load(), stats.connections_accepted, stats.requests_admitted,
      stats.requests_completed, stats.requests_aborted, stats.requests_failed,
      stats.requests_body_too_large, stats.requests_refused, stats.requests_overloaded, rss_start,
      rss_end);

  std::vector<std::string> failures = std::move(tally.failures);
  if (tally.ended != tally.sent) {
    failures.push_back(
        fmt::format("{} requests sent, {} END_REQUESTs", tally.sent.load(), tally.ended.load()));
  }
  if (stats.requests_admitted != stats.requests_completed + stats.requests_aborted +
                                     stats.requests_failed + stats.requests_body_too_large) {
    failures.emplace_back("admitted != completed + aborted + failed + body too large");
  }
  if (stats.requests_admitted + stats.requests_refused + stats.requests_overloaded != tally.sent) {
    failures.emplace_back("admitted + refused + overloaded != requests sent");
  }
  if (stats.connections_open != 0 || stats.input_buffered != 0 || stats.output_buffered != 0) {
    failures.emplace_back("connections or buffers left over after the stop");
  }
#ifndef FCGIMUX_SOAK_SANITIZED
  if (rss_end > rss_start + kRssGrowthBoundKiB) {
    failures.push_back(fmt::format("RSS grew by {} KiB, past the bound of {} KiB",
                                   rss_end - rss_start, kRssGrowthBoundKiB));
  }
#endif
  for (const std::string& failure : failures) fmt::print(stderr, "soak: FAILED: {}\n", failure);
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace fcgimux::test

int main(int argc, char** argv) {
  long seconds = FCGIMUX_SOAK_DEFAULT_SECONDS;
  if (const char* from_env = std::getenv("FCGIMUX_SOAK_SECONDS")) seconds = std::atol(from_env);
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  if (args.size() == 2 && std::string_view(args[0]) == "--seconds") seconds = std::atol(args[1]);
  if (seconds <= 0 || (!args.empty() && args.size() != 2)) {
    fmt::print(stderr, "usage: fcgimux_soak [--seconds N] (N > 0)\n");
    return 2;
  }
  try {
    return fcgimux::test::soak(std::chrono::seconds(seconds));
  } catch (const std::exception& error) {
    fmt::print(stderr, "soak: FAILED: {}\n", error.what());
    return 1;
  }
}
