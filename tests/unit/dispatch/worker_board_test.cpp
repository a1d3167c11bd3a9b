// SPDX-License-Identifier: MIT
// The worker board: lib/dispatch/worker_board.cpp. Workers here are the test's own thread.

#include "dispatch/worker_board.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dispatch/counters.hpp"
#include "dispatch/exchange.hpp"
#include "dispatch/notice_queue.hpp"
#include "recording_output.hpp"
#include "util/logger.hpp"

namespace fcgimux::dispatch {
namespace {

using namespace std::chrono_literals;

// An exchange with complete params, as the I/O thread hands it to a worker.
class ExchangeFixture {
 public:
  explicit ExchangeFixture(const std::vector<std::pair<std::string, std::string>>& params,
                           std::uint16_t id = 7) {
    exchange_ =
        std::make_unique<Exchange>(context_, 3, id, protocol::Role::Responder, true, output_);
    std::string block;
    for (const auto& [name, value] : params) protocol::append_name_value(block, name, value);
    REQUIRE(exchange_->append_params(std::as_bytes(std::span(block))) == protocol::Error::None);
    REQUIRE(exchange_->finish_params() == protocol::Error::None);
  }
  const Exchange& exchange() const { return *exchange_; }
  Counters counters;

 private:
  NoticeQueue notices_{[](void*) noexcept {}, nullptr};
  const util::Logger logger_{LogLevel::Error, nullptr};
  const ExchangeContext context_{.notices = notices_,
                                 .counters = counters,
                                 .logger = logger_,
                                 .params_budget = 64 * 1024,
                                 .body_budget = 64 * 1024,
                                 .queue_timeout = 0ms,
                                 .access_log = false,
                                 .body_buffers = nullptr};
  test::RecordingOutput output_;
  std::unique_ptr<Exchange> exchange_;
};

TEST_CASE("a worker's slot shows its request while it runs and after", "[dispatch]") {
  ExchangeFixture fixture({{"REQUEST_METHOD", "POST"},
                           {"SCRIPT_NAME", "/app"},
                           {"QUERY_STRING", "x=1"},
                           {"CONTENT_LENGTH", "1234"},
                           {"REMOTE_USER", "alice"},
                           {"SCRIPT_FILENAME", "/srv/app"}});
  WorkerBoard board(2, fixture.counters);
  board.attach(1);
  std::vector<WorkerSnapshot> workers = board.snapshot();
  REQUIRE(workers.size() == 2);
  CHECK(workers[0].thread_id == 0);
  CHECK(workers[1].thread_id == static_cast<long>(::gettid()));
  CHECK_FALSE(workers[1].running);
  CHECK(workers[1].requests == 0);

  {
    const WorkerBoard::Shift shift(&board, 1, fixture.exchange());
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

TEST_CASE("a slot keeps a bounded copy of a long URI", "[dispatch]") {
  const std::string uri = "/" + std::string(10'000, 'u');
  ExchangeFixture fixture({{"REQUEST_URI", uri}, {"REQUEST_METHOD", std::string(100, 'M')}});
  WorkerBoard board(1, fixture.counters);
  const WorkerBoard::Shift shift(&board, 0, fixture.exchange());
  const WorkerSnapshot worker = board.snapshot().front();
  CHECK(worker.uri == uri.substr(0, WorkerBoard::kUriSize));
  CHECK(worker.method == std::string(WorkerBoard::kMethodSize, 'M'));
}

TEST_CASE("a slow request is reported once, and a new request can be reported again",
          "[dispatch]") {
  ExchangeFixture fixture({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/slow"}});
  WorkerBoard board(1, fixture.counters);
  {
    const WorkerBoard::Shift shift(&board, 0, fixture.exchange());
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
    const WorkerBoard::Shift shift(&board, 0, fixture.exchange());
    CHECK(board.take_slow(0ms).size() == 1);
  }
  CHECK(fixture.counters.snapshot().slow_requests == 2);
}

}  // namespace
}  // namespace fcgimux::dispatch
