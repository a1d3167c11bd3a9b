// SPDX-License-Identifier: MIT
// The worker board: lib/observe/worker_board.cpp. Workers here are the test's own thread.

#include "observe/worker_board.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "observe/counters.hpp"

namespace fcgimux::observe {
namespace {

using namespace std::chrono_literals;

// A request with complete params, as a worker begins it.
class RequestFixture {
 public:
  using Params = std::vector<std::pair<std::string, std::string>>;
  explicit RequestFixture(Params params) : params_(std::move(params)) {
    for (const auto& [name, value] : params_) pairs_.push_back({name, value});
  }
  BegunRequest request() const { return {this, 3, 7, pairs_}; }
  Counters counters;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
  std::vector<protocol::NameValue> pairs_;  // views into params_
};

TEST_CASE("a worker's slot shows its request while it runs and after", "[observe]") {
  RequestFixture fixture({{"REQUEST_METHOD", "POST"},
                          {"SCRIPT_NAME", "/app"},
                          {"QUERY_STRING", "x=1"},
                          {"CONTENT_LENGTH", "1234"},
                          {"REMOTE_USER", "alice"},
                          {"SCRIPT_FILENAME", "/srv/app"}});
  WorkerBoard board(2, fixture.counters, true);
  board.attach(1);
  std::vector<WorkerSnapshot> workers = board.snapshot();
  REQUIRE(workers.size() == 2);
  CHECK(workers[0].thread_id == 0);
  CHECK(workers[1].thread_id == static_cast<long>(::gettid()));
  CHECK_FALSE(workers[1].running);
  CHECK(workers[1].requests == 0);

  {
    const WorkerBoard::Shift shift(board, 1, fixture.request());
    workers = board.snapshot();
    CHECK(workers[1].running);
    CHECK(workers[1].requests == 1);
    CHECK(workers[1].connection_id == 3);
    CHECK(workers[1].request_id == 7);
    CHECK(workers[1].method == "POST");
    CHECK(workers[1].uri == "/app?x=1");
    CHECK(workers[1].content_length == 1234);
    CHECK(workers[1].user == "alice");
    CHECK(workers[1].script == "/srv/app");
    CHECK_FALSE(workers[0].running);
  }
  workers = board.snapshot();
  CHECK_FALSE(workers[1].running);
  CHECK(workers[1].requests == 1);
  CHECK(workers[1].uri == "/app?x=1");  // the last request stays on show
}

TEST_CASE("a slot keeps a bounded copy of a long URI", "[observe]") {
  const std::string uri = "/" + std::string(10'000, 'u');
  RequestFixture fixture(
      RequestFixture::Params{{"REQUEST_URI", uri}, {"REQUEST_METHOD", std::string(100, 'M')}});
  WorkerBoard board(1, fixture.counters, true);
  const WorkerBoard::Shift shift(board, 0, fixture.request());
  const WorkerSnapshot worker = board.snapshot().front();
  CHECK(worker.uri == uri.substr(0, WorkerBoard::kUriSize));
  CHECK(worker.method == std::string(WorkerBoard::kMethodSize, 'M'));
}

TEST_CASE("a slow request is reported once, and a new request can be reported again", "[observe]") {
  RequestFixture fixture(
      RequestFixture::Params{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/slow"}});
  WorkerBoard board(1, fixture.counters, true);
  {
    const WorkerBoard::Shift shift(board, 0, fixture.request());
    CHECK(board.take_slow(1h).empty());
    // A zero threshold makes the running request slow at once, with no waiting.
    const std::vector<WorkerBoard::Slow> slow = board.take_slow(0ms);
    REQUIRE(slow.size() == 1);
    CHECK(slow[0].worker == 0);
    CHECK(slow[0].uri == "/slow");
    CHECK(slow[0].method == "GET");
    CHECK(slow[0].request_id == 7);
    CHECK(board.take_slow(0ms).empty());
  }
  CHECK(board.take_slow(0ms).empty());  // idle
  {
    const WorkerBoard::Shift shift(board, 0, fixture.request());
    CHECK(board.take_slow(0ms).size() == 1);
  }
  CHECK(fixture.counters.snapshot().slow_requests == 2);
}

TEST_CASE("the board names the worker running a request, without its details too", "[observe]") {
  RequestFixture fixture(RequestFixture::Params{{"REQUEST_URI", "/stuck"}});
  WorkerBoard board(2, fixture.counters, false);
  const auto admitted = std::chrono::steady_clock::now();
  CHECK_FALSE(board.runner(&fixture, admitted).has_value());
  CHECK_FALSE(board.busy(1));
  {
    const WorkerBoard::Shift shift(board, 1, fixture.request());
    const std::optional<WorkerBoard::Runner> runner = board.runner(&fixture, admitted);
    REQUIRE(runner.has_value());
    CHECK(runner->index == 1);
    CHECK(runner->since >= admitted);
    CHECK(board.busy(1));
    CHECK_FALSE(board.busy(0));
    // A request admitted after this worker began is not the one it runs.
    CHECK_FALSE(board.runner(&fixture, std::chrono::steady_clock::now() + 1h).has_value());
    // Without details, the board shows nothing of the request itself.
    CHECK(board.snapshot()[1].uri.empty());
  }
  CHECK_FALSE(board.runner(&fixture, admitted).has_value());
  CHECK_FALSE(board.busy(1));
}

}  // namespace
}  // namespace fcgimux::observe
