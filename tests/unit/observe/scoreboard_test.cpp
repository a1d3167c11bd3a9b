// SPDX-License-Identifier: MIT
// The scoreboard of a server of several processes: sums over live slots and what retired
// ones left, across a real fork, and while a reader races the supervisor's releases.

#include "observe/scoreboard.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace fcgimux::observe {
namespace {

using Counters = observe::Counters;

const std::vector<PoolStats> kOnePool{PoolStats{.name = "www", .workers = 4, .max_requests = 8}};

TEST_CASE("a process's totals outlive its slot, its figures of the moment do not",
          "[scoreboard]") {
  Scoreboard board(4, 1);
  board.claim(0, 0);
  board.claim(1, 1);
  board.slot(0).state.store(ProcessSlot::State::Ready);
  board.slot(1).state.store(ProcessSlot::State::Ready);
  Counters& first = board.slot(0).counters;
  Counters::add(first.requests_admitted, 5);
  Counters::add(first.connections_open, 2);
  Counters::raise_max(first.requests_running_max, 3);
  Counters::add(board.slot(1).counters.requests_admitted, 2);
  Counters::raise_max(board.slot(1).counters.requests_running_max, 1);

  Stats stats = board.stats(kOnePool, false);
  CHECK(stats.requests_admitted == 7);
  CHECK(stats.connections_open == 2);
  CHECK(stats.requests_running_max == 3);
  CHECK(stats.processes_running == 2);
  REQUIRE(stats.pools.size() == 1);
  CHECK(stats.pools[0].workers == 8);
  CHECK(stats.pools[0].requests_admitted == 7);

  board.release(0);
  board.claim(0, 0);  // the replacement starts from nothing
  stats = board.stats(kOnePool, false);
  CHECK(stats.requests_admitted == 7);
  CHECK(stats.connections_open == 0);
  CHECK(stats.requests_running_max == 3);
  CHECK(stats.processes_running == 1);  // the replacement is Starting
  CHECK(board.slot(0).counters.requests_admitted.load() == 0);
}

TEST_CASE("a process takes connections while it holds no more than its share beyond the fewest",
          "[scoreboard]") {
  Scoreboard board(4, 1);
  const auto hold = [&](std::size_t slot, std::uint64_t connections) {
    board.slot(slot).counters.connections_open.store(connections);
  };
  board.claim(0, 0);
  board.slot(0).state.store(ProcessSlot::State::Ready);
  hold(0, 500);
  CHECK(board.within_share(0));  // alone

  board.claim(1, 1);  // a sibling Starting is not yet serving: it takes nothing
  CHECK(board.within_share(0));
  board.slot(1).state.store(ProcessSlot::State::Ready);
  CHECK_FALSE(board.within_share(0));
  CHECK(board.within_share(1));

  // The margin: at least Scoreboard::kShareMargin, else an eighth of the fewest.
  hold(1, 0);
  hold(0, Scoreboard::kShareMargin);
  CHECK(board.within_share(0));
  hold(0, Scoreboard::kShareMargin + 1);
  CHECK_FALSE(board.within_share(0));
  hold(1, 160);
  hold(0, 180);
  CHECK(board.within_share(0));
  hold(0, 181);
  CHECK_FALSE(board.within_share(0));

  // The fewest among several; processes leaving or gone do not count.
  board.claim(2, 2);
  board.slot(2).state.store(ProcessSlot::State::Leaving);
  hold(2, 0);
  CHECK_FALSE(board.within_share(0));
  board.slot(2).state.store(ProcessSlot::State::Ready);
  CHECK_FALSE(board.within_share(1));
  board.release(2);
  CHECK(board.within_share(1));
  board.release(1);
  CHECK(board.within_share(0));
}

TEST_CASE("a retiring process leaves new connections to a serving sibling", "[scoreboard]") {
  Scoreboard board(4, 1);
  board.claim(0, 0);
  board.slot(0).state.store(ProcessSlot::State::Retiring);
  CHECK(board.within_share(0));  // alone: it still serves

  board.claim(1, 0);  // its replacement, Starting, takes nothing yet
  CHECK(board.within_share(0));
  board.claim(2, 1);
  board.slot(2).state.store(ProcessSlot::State::Ready);
  board.slot(2).counters.connections_open.store(1000);
  CHECK_FALSE(board.within_share(0));  // however many the sibling holds
  CHECK(board.within_share(2));        // which leaves none to the retiring one
}

TEST_CASE("a forked process counts into its slot and the parent reads the sum", "[scoreboard]") {
  Scoreboard board(2, 2);
  board.claim(0, 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    Counters::add(board.slot(0).counters.requests_completed, 41);
    Counters::add(board.pool_counters(0)[1].admitted, 6);
    board.slot(0).state.store(ProcessSlot::State::Ready);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  const std::vector<PoolStats> pools{PoolStats{.name = "www", .workers = 1, .max_requests = 1},
                                     PoolStats{.name = "slow", .workers = 1, .max_requests = 1}};
  Stats stats = board.stats(pools, true);
  CHECK(stats.requests_completed == 41);
  CHECK(stats.processes_running == 1);
  CHECK(stats.pools.at(1).requests_admitted == 6);
  board.release(0);
  stats = board.stats(pools, true);
  CHECK(stats.requests_completed == 41);
  CHECK(stats.pools.at(1).requests_admitted == 6);
  CHECK(stats.processes_running == 0);
}

TEST_CASE("a reader racing the supervisor's releases never sees a total go back",
          "[scoreboard]") {
  Scoreboard board(2, 1);
  constexpr int kRounds = 2'000;
  std::atomic<bool> done{false};
  std::jthread supervisor([&] {
    for (int round = 0; round < kRounds; ++round) {
      board.claim(0, 0);
      board.slot(0).state.store(ProcessSlot::State::Ready);
      Counters::add(board.slot(0).counters.requests_admitted, 3);
      board.release(0);
    }
    done.store(true);
  });
  std::uint64_t last = 0;
  bool monotonic = true;
  while (!done.load()) {
    const std::uint64_t now = board.stats(kOnePool, false).requests_admitted;
    if (now < last) monotonic = false;
    last = now;
  }
  supervisor.join();
  CHECK(monotonic);
  CHECK(board.stats(kOnePool, false).requests_admitted == 3u * kRounds);
}

}  // namespace
}  // namespace fcgimux::observe
