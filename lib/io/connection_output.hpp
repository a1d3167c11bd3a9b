// SPDX-License-Identifier: MIT
#pragma once

// The output of one connection: the only place where its outgoing bytes wait, shared by the
// workers running the connection's requests and the I/O thread.
//
//   producers                         ConnectionOutput                    the socket
//   worker ─ write() ──────┐   ┌─────────────────────────────────┐
//   worker ─ write_last() ─┼──►│ queue    [piece][piece][piece]  │──► Transport::send()
//   I/O    ─ append() ─────┘   │ queued   bytes in the queue:    │    non-blocking, from the
//                              │          the output budget      │    writer's thread
//                              │ writer   None | Sending | Loop  │──► the connection's
//                              └─────────────────────────────────┘    asynchronous write
//                                                                      (I/O thread)
// One writer at a time:
//  1. Whoever appends and finds no writer becomes it (Sending) and sends from the front of the
//     queue, outside the lock, one non-blocking call at a time, until the queue is empty (the
//     writer is None again). A worker whose bytes are the only ones sends them straight from
//     its own buffer: nothing is copied.
//  2. When the socket takes less than it was given, the writer becomes the loop (Loop): what
//     is left stays queued and the I/O thread finishes it with an asynchronous write (flush(),
//     async_written()), then keeps writing until the queue is empty.
//  3. Appenders only add at the back; only the writer takes from the front. The pieces a send
//     or an asynchronous write reads stay where they are until it ends.
// The budget is the queued bytes. A worker's write() waits while they are at the limit, then
// appends one record: the bound is the limit plus one record for each worker appending at
// that moment. write_last() (a request's closing records, a few dozen bytes) does not wait;
// the worker waits for room before (wait_for_room()), so that its last body record counts too.
// A detached response's writer never waits unbounded: it appends with write_last() only after
// has_room() said yes, and waits, if it chooses, with a deadline (wait_for_room_until()).
// The I/O thread never waits: a reply of its own that finds the output over budget stops the
// connection reading (hold_reader()) until the peer reads, so its replies pass the limit by one
// reply at most.
//
// Threading: Thread-safe; each method says which thread calls it.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/output.hpp"
#include "io/piece_pool.hpp"
#include "observe/counters.hpp"

namespace fcgimux::io {

class ConnectionOutput final : public dispatch::Output {
 public:
  // How bytes reach the socket.
  class Transport {
   public:
    // Sends what the socket takes now of `pieces`, in order, without blocking, and returns
    // how many bytes it took: 0 when it takes none, a negative number on an error (which the
    // I/O thread's asynchronous write then reports). Called from any thread, never twice at
    // once for one connection.
    virtual std::ptrdiff_t send(std::span<const std::string_view> pieces) noexcept = 0;

   protected:
    virtual ~Transport() = default;
  };

  // The most pieces one send takes (a writev of up to this many).
  static constexpr std::size_t kMaxPieces = 64;

  // `transport`, `pieces` and `counters` must outlive the output. `limit`: the budget, in
  // bytes.
  ConnectionOutput(Transport& transport, std::size_t limit, PiecePool& pieces,
                   observe::Counters& counters) noexcept
      : transport_(transport), limit_(limit), pieces_(pieces), counters_(counters) {}
  ConnectionOutput(const ConnectionOutput&) = delete;
  ConnectionOutput& operator=(const ConnectionOutput&) = delete;
  ~ConnectionOutput() override;

  // The transport it was made with.
  Transport& transport() const noexcept { return transport_; }

  // --- workers -------------------------------------------------------------------------------
  Written write(std::string_view records, std::stop_token stop) override;
  bool wait_for_room(std::stop_token stop) override;
  bool wait_for_room_until(std::stop_token stop,
                           std::chrono::steady_clock::time_point deadline) override;
  bool has_room() const noexcept override { return !over_budget(); }
  Written write_last(std::string_view records) override;

  // --- the I/O thread ------------------------------------------------------------------------
  // Appends bytes of the I/O thread's own (a reply it writes itself) without waiting or
  // sending: they go out with the next flush(), or with a worker's write before that.
  void append(std::string_view bytes);
  enum class Flush : unsigned char {
    Idle,   // nothing left to write
    Busy,   // a worker is sending, or an asynchronous write is under way: it finishes
    Async,  // the socket is full: start an asynchronous write of `pieces`, then call
            // async_written()
  };
  // Sends what is queued when no one writes; hands what the socket does not take to an
  // asynchronous write, whose pieces (views into the queue, valid until async_written()) it
  // puts in `pieces`.
  Flush flush(std::vector<std::string_view>& pieces);
  // The asynchronous write that flush() asked for has ended: every byte of it went out when
  // `sent`, none when the connection failed (it closes).
  void async_written(bool sent);
  // Whether the queue is at or past the budget: the connection must not read on. Lock-free.
  bool over_budget() const noexcept { return queued_.load(std::memory_order_relaxed) >= limit_; }
  // The connection is about to stop reading for the budget. Returns false when the queue is
  // under it after all (a worker sent meanwhile): read on. Else a worker whose sending brings
  // the queue under the budget answers NeedsLoop, so that the I/O thread reads again.
  bool hold_reader();
  // Nothing queued and no one writing.
  bool idle();
  // The connection closes: writes from now on are dropped, waiting ones return Dropped, and no
  // one sends any more. Waits for a worker in the middle of a send (one non-blocking call), so
  // the socket can close after it. What is queued is dropped, but the pieces of an
  // asynchronous write under way stay until async_written().
  void close();

 private:
  enum class Writer : unsigned char { None, Sending, Loop };

  Written send_or_queue(std::unique_lock<std::mutex>& lock, std::string_view bytes);
  // As the writer (Sending): sends from the front until the queue is empty (writer None) or
  // the socket is full (writer Loop). Returns whether the loop must take over.
  bool send_queued(std::unique_lock<std::mutex>& lock);
  // What a worker's write answers once its bytes are queued or sent.
  Written worker_result(bool loop_owed);
  // Puts views of the queued bytes, from the front, into `pieces`; returns their count and
  // their total size in `bytes`.
  std::size_t gather(std::span<std::string_view> pieces, std::size_t& bytes) const;
  void push_back(std::string_view bytes);
  void push_front(std::string_view bytes);
  // `bytes` from the front went out: takes them off the queue and out of the budget.
  void pop(std::size_t bytes);

  Transport& transport_;
  const std::size_t limit_;
  PiecePool& pieces_;
  observe::Counters& counters_;
  std::mutex mutex_;
  std::condition_variable changed_;     // room under the budget, close(), a send's end
  std::list<std::string> queue_;        // Guarded by mutex_.
  std::size_t front_sent_ = 0;          // bytes of queue_.front() already sent; Guarded by mutex_.
  std::atomic<std::size_t> queued_{0};  // bytes in queue_ not yet sent; written under mutex_
  Writer writer_ = Writer::None;        // Guarded by mutex_.
  bool async_ = false;                  // an asynchronous write is under way; Guarded by mutex_.
  std::size_t async_bytes_ = 0;         // its size; Guarded by mutex_.
  bool reader_waiting_ = false;         // see hold_reader(); Guarded by mutex_.
  bool closed_ = false;                 // Guarded by mutex_.
};

}  // namespace fcgimux::io
