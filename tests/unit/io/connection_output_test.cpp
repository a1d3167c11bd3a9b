// SPDX-License-Identifier: MIT
// The output of a connection from several threads at once, over a fake transport that takes
// everything, part, or nothing of what it is given. The test's own thread plays the I/O
// thread: it flushes and finishes asynchronous writes when the workers ask for it. Run under
// ThreadSanitizer in CI.

#include "io/connection_output.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "eventually.hpp"

namespace fcgimux::io {
namespace {

using observe::Counters;
using test::eventually;
using Written = dispatch::Output::Written;

// A socket that takes what its policy says, records what it took, and fails the test if two
// sends ever overlap.
// Threading: Thread-safe.
class FakeTransport : public ConnectionOutput::Transport {
 public:
  enum class Policy { All, Random, Nothing };

  std::ptrdiff_t send(std::span<const std::string_view> pieces) noexcept override {
    if (sending_.exchange(true)) overlapped_ = true;
    std::size_t total = 0;
    for (const std::string_view piece : pieces) total += piece.size();
    std::size_t take = total;
    {
      const std::lock_guard lock(mutex_);
      if (policy_ == Policy::Nothing) {
        take = 0;
      } else if (policy_ == Policy::Random) {
        // Everything, nothing, or a part cut anywhere: a record's middle included.
        const std::uint32_t pick = random_() % 4;
        take = pick == 0 ? 0 : pick == 1 ? total : random_() % (total + 1);
      }
      for (std::size_t left = take; const std::string_view piece : pieces) {
        const std::size_t n = std::min(left, piece.size());
        taken_.append(piece.substr(0, n));
        left -= n;
      }
      ++sends_;
    }
    if (blocking_.load()) {
      in_blocked_send_ = true;
      while (blocking_.load()) std::this_thread::yield();
    }
    sending_ = false;
    return static_cast<std::ptrdiff_t>(take);
  }

  // What the asynchronous write of the I/O thread delivers: all of it, in order.
  void take_async(std::span<const std::string_view> pieces) {
    const std::lock_guard lock(mutex_);
    for (const std::string_view piece : pieces) taken_.append(piece);
  }

  void set_policy(Policy policy) {
    const std::lock_guard lock(mutex_);
    policy_ = policy;
  }
  std::string taken() const {
    const std::lock_guard lock(mutex_);
    return taken_;
  }
  std::size_t sends() const {
    const std::lock_guard lock(mutex_);
    return sends_;
  }

  std::atomic<bool> overlapped_{false};
  std::atomic<bool> blocking_{false};         // the next sends wait until it is cleared
  std::atomic<bool> in_blocked_send_{false};  // a send is waiting on blocking_

 private:
  std::atomic<bool> sending_{false};
  mutable std::mutex mutex_;
  Policy policy_ = Policy::All;  // Guarded by mutex_.
  std::mt19937 random_{42};      // Guarded by mutex_.
  std::string taken_;            // Guarded by mutex_.
  std::size_t sends_ = 0;        // Guarded by mutex_.
};

// Plays the I/O thread: flushes the output whenever a worker's write asks for the loop, and
// finishes each asynchronous write at once.
// Threading: the notify() side from any thread, run() on one.
class Loop {
 public:
  Loop(ConnectionOutput& output, FakeTransport& transport)
      : output_(output), transport_(transport) {}

  void notify() {
    {
      const std::lock_guard lock(mutex_);
      ++notices_;
    }
    changed_.notify_one();
  }

  // Serves notices until `done` returns true, then flushes until the output is idle.
  template <class Done>
  void run(Done done) {
    std::vector<std::string_view> pieces;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::milliseconds(1), [&] { return notices_ > 0; });
        notices_ = 0;
      }
      flush(pieces);
      if (done()) break;
    }
    REQUIRE(eventually([&] {
      flush(pieces);
      return output_.idle();
    }));
  }

 private:
  void flush(std::vector<std::string_view>& pieces) {
    while (output_.flush(pieces) == ConnectionOutput::Flush::Async) {
      transport_.take_async(pieces);
      output_.async_written(true);
    }
  }

  ConnectionOutput& output_;
  FakeTransport& transport_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t notices_ = 0;  // Guarded by mutex_.
};

// Record `sequence` of `worker`: 32 bytes, recognizable anywhere in the stream.
std::string record(char worker, int sequence) {
  std::string out(32, worker);
  const std::string number = std::to_string(sequence);
  out.replace(1, number.size(), number);
  out[0] = '<';
  out[31] = '>';
  return out;
}

TEST_CASE("records of two workers reach the socket whole and in order, whatever it takes",
          "[io][output]") {
  Counters counters;
  FakeTransport transport;
  transport.set_policy(FakeTransport::Policy::Random);
  PiecePool pool{8};
  ConnectionOutput output(transport, 512, pool, counters);
  Loop loop(output, transport);
  constexpr int kRecords = 2000;
  std::atomic<int> finished{0};
  std::atomic<bool> dropped{false};  // Catch2's assertions are for the test's thread only
  const auto worker = [&](char name) {
    for (int i = 0; i < kRecords; ++i) {
      const std::string bytes = record(name, i);
      const Written written = i + 1 < kRecords ? output.write(bytes, {}) : output.write_last(bytes);
      if (written == Written::Dropped) dropped = true;
      if (written == Written::NeedsLoop) loop.notify();
    }
    ++finished;
  };
  std::jthread a(worker, 'a');
  std::jthread b(worker, 'b');
  loop.run([&] { return finished == 2; });

  CHECK_FALSE(dropped.load());
  CHECK_FALSE(transport.overlapped_.load());
  const std::string taken = transport.taken();
  REQUIRE(taken.size() == 2u * kRecords * 32);
  int next_a = 0;
  int next_b = 0;
  for (std::size_t at = 0; at < taken.size(); at += 32) {
    const std::string_view piece = std::string_view(taken).substr(at, 32);
    const char name = piece[31 - 1];
    int& next = name == 'a' ? next_a : next_b;
    REQUIRE((name == 'a' || name == 'b'));
    REQUIRE(piece == record(name, next));
    ++next;
  }
  CHECK(next_a == kRecords);
  CHECK(next_b == kRecords);
  CHECK(counters.output_buffered.load() == 0);
  CHECK(counters.bytes_out.load() == taken.size());
}

TEST_CASE("a worker waits at the budget until the socket takes bytes again", "[io][output]") {
  Counters counters;
  FakeTransport transport;
  transport.set_policy(FakeTransport::Policy::Nothing);
  constexpr std::size_t kLimit = 4096;
  PiecePool pool{8};
  ConnectionOutput output(transport, kLimit, pool, counters);
  Loop loop(output, transport);
  std::atomic<int> written{0};
  std::jthread worker([&] {
    for (int i = 0; i < 64; ++i) {
      if (output.write(std::string(1024, 'x'), {}) == Written::NeedsLoop) loop.notify();
      ++written;
    }
  });
  // The socket takes nothing: the queue fills to the budget and the worker stops there.
  REQUIRE(eventually([&] { return output.over_budget(); }));
  CHECK(counters.output_buffered.load() <= kLimit + 1024);
  CHECK(written.load() < 64);
  // The loop writes it all once the socket has room.
  transport.set_policy(FakeTransport::Policy::All);
  loop.run([&] { return written == 64; });
  CHECK(transport.taken() == std::string(64 * 1024, 'x'));
}

TEST_CASE("a worker waiting at the budget returns Dropped when its request stops", "[io][output]") {
  Counters counters;
  FakeTransport transport;
  transport.set_policy(FakeTransport::Policy::Nothing);
  PiecePool pool{8};
  ConnectionOutput output(transport, 1024, pool, counters);
  std::stop_source stop;
  std::atomic<bool> done{false};
  Written last = Written::Done;
  std::jthread worker([&] {
    for (;;) {
      last = output.write(std::string(512, 'x'), stop.get_token());
      if (last == Written::Dropped) break;
    }
    done = true;
  });
  REQUIRE(eventually([&] { return output.over_budget(); }));
  stop.request_stop();
  REQUIRE(eventually([&] { return done.load(); }));
  worker.join();
  CHECK(last == Written::Dropped);
}

TEST_CASE("close waits for a send under way, then drops what is queued and every later write",
          "[io][output]") {
  Counters counters;
  FakeTransport transport;
  PiecePool pool{8};
  ConnectionOutput output(transport, 1 << 20, pool, counters);
  transport.blocking_ = true;
  std::atomic<Written> first{Written::NeedsLoop};
  std::jthread worker([&] { first = output.write("first", {}); });
  REQUIRE(eventually([&] { return transport.in_blocked_send_.load(); }));
  // Queued behind the send under way, by the I/O thread.
  output.append("reply");
  std::atomic<bool> closed{false};
  std::jthread closer([&] {
    output.close();
    closed = true;
  });
  // close() turns writes away at once, but does not return while a worker is inside a send on
  // the socket. (Writes before it took effect queue behind the send, and are dropped too.)
  REQUIRE(eventually([&] { return output.write_last("probe") == Written::Dropped; }));
  CHECK_FALSE(closed.load());
  transport.blocking_ = false;
  REQUIRE(eventually([&] { return closed.load(); }));
  CHECK(output.write("late", {}) == Written::Dropped);
  CHECK(output.write_last("later") == Written::Dropped);
  CHECK(transport.taken() == "first");
  // The socket took "first" whole before the close: it was written, not dropped.
  worker.join();
  CHECK(first.load() == Written::Done);
  CHECK(counters.output_buffered.load() == 0);
}

TEST_CASE("the I/O thread's own bytes wait for the next flush, behind what is queued",
          "[io][output]") {
  Counters counters;
  FakeTransport transport;
  transport.set_policy(FakeTransport::Policy::Nothing);
  PiecePool pool{8};
  ConnectionOutput output(transport, 1 << 20, pool, counters);
  CHECK(output.write("a worker's record;", {}) == Written::NeedsLoop);
  output.append("the I/O thread's reply");
  std::vector<std::string_view> pieces;
  REQUIRE(output.flush(pieces) == ConnectionOutput::Flush::Async);
  transport.take_async(pieces);
  output.async_written(true);
  CHECK(output.flush(pieces) == ConnectionOutput::Flush::Idle);
  CHECK(transport.taken() == "a worker's record;the I/O thread's reply");
  CHECK(output.idle());
}

TEST_CASE("a worker that brings the queue under the budget tells a connection waiting to read",
          "[io][output]") {
  Counters counters;
  FakeTransport transport;
  transport.set_policy(FakeTransport::Policy::Nothing);
  PiecePool pool{8};
  ConnectionOutput output(transport, 16, pool, counters);
  output.append(std::string(32, 'r'));
  REQUIRE(output.over_budget());
  REQUIRE(output.hold_reader());
  transport.set_policy(FakeTransport::Policy::All);
  // The worker's write_last() sends its bytes and the queued reply: room again.
  CHECK(output.write_last("end") == Written::NeedsLoop);
  CHECK_FALSE(output.over_budget());
  CHECK(transport.taken() == std::string(32, 'r') + "end");
}

}  // namespace
}  // namespace fcgimux::io
