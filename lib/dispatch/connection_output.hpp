// SPDX-License-Identifier: MIT
#pragma once

// The output side of one connection, shared by the I/O thread and the workers running the
// connection's requests. Two paths lead to the socket:
//
// The budgeted path. Producers (workers) count bytes in before they hand records to the I/O
// thread through the OutboundQueue: acquire() waits while the connection already holds `limit`
// unsent bytes, so a client that stops reading blocks its handlers instead of growing memory.
// The consumer (the I/O thread) counts bytes out with release() once they are written to the
// socket or dropped. A waiter may overshoot the limit by what it acquires at once (at most one
// record, 64 KiB), so the bound is limit + one record per writing worker.
//
// The direct path. A worker whose request is its connection's only one, while nothing else is
// being written there, writes the request's records to the socket itself (write_now()): no
// second thread touches the bytes, no budget is needed for bytes already sent, and the
// request's End message goes into the OutboundQueue without a wake-up, for the I/O thread to
// take when it next runs. (A connection carrying several requests at once keeps the I/O
// thread's writes, which gather many responses into one writev.) Who writes is decided under
// mutex_:
//  - the I/O thread claims the output (claim()) before each write of its own and keeps it until
//    nothing is left to write (release_claim());
//  - a worker writes only while nobody holds the claim, with mutex_ held across its send (one
//    non-blocking call), so the two never interleave bytes;
//  - what a worker's send could not take (the socket buffer filled) stays here as the carry,
//    the claim passes to the I/O thread, and its next write sends the carry first;
//  - the End message is queued before mutex_ is released, so an I/O thread that took mutex_
//    (settle()) and then drains the queue knows of every end already on the socket: the peer
//    may answer an end with a new request on the same id at once.
// stop_direct() ends the direct path before the connection closes its socket.
//
// Threading: Thread-safe, method by method as marked.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include "dispatch/counters.hpp"
#include "dispatch/outbound_queue.hpp"

namespace fcgimux::dispatch {

class ConnectionOutput {
 public:
  // Writes `bytes` to the connection's socket without blocking: the number of bytes taken, or
  // a negative number when none were (the socket is full, or failed: the I/O thread's next
  // write sees the failure). Called from workers, under mutex_.
  using Send = std::ptrdiff_t (*)(void* context, std::string_view bytes) noexcept;

  // I/O thread. `send` may be null: the connection then has no direct path. `outbound` takes
  // the End messages of direct writes.
  ConnectionOutput(std::size_t limit, Counters& counters, OutboundQueue& outbound, Send send,
                   void* context) noexcept
      : limit_(limit),
        counters_(counters),
        outbound_(outbound),
        send_(send),
        send_context_(context) {}
  ConnectionOutput(const ConnectionOutput&) = delete;
  ConnectionOutput& operator=(const ConnectionOutput&) = delete;
  // I/O thread. Makes an output no longer used (nothing unsent, no worker in write_now()) a new
  // one, as the constructor would, for another connection.
  void reuse(Send send, void* context) noexcept;

  // --- the budgeted path ---------------------------------------------------------------------
  // Workers. Waits until fewer than `limit` bytes are unsent, then counts `bytes` in. Returns
  // false, counting nothing, once `stop` fires or the output is closed.
  bool acquire(std::size_t bytes, std::stop_token stop);
  // Workers. Counts `bytes` in without waiting (a request's closing records must always go
  // out).
  void add(std::size_t bytes);
  // I/O thread. Counts `bytes` out and wakes waiting producers.
  void release(std::size_t bytes);
  // I/O thread. The connection is gone: every waiter returns false, now and later.
  void close();

  // --- the direct path -----------------------------------------------------------------------
  enum class Written : unsigned char {
    None,  // nothing was written: send the bytes through the OutboundQueue as usual
    All,   // every byte is on the socket
    Part,  // some are; the rest is the carry, which the I/O thread sends first
  };
  // What write_now() queues once it has written: `message` (its bytes empty), or nothing;
  // quietly (without a wake-up) when every byte went out, else with one, so that the I/O
  // thread sends the carry.
  enum class Then : unsigned char { Nothing, Queue, QueueQuietly };
  // Workers. Writes `bytes`, whole records of one request, when the request is the
  // connection's only one and nobody else is writing; does nothing otherwise. Once it wrote,
  // queues `message` as `then` says (always on Written::Part). A caller whose message is the
  // request's End must not touch the request after a write.
  Written write_now(std::string_view bytes, Outbound& message, Then then) noexcept;
  // I/O thread. Waits for a direct write under way: every end already written is then in the
  // OutboundQueue.
  void settle();
  // I/O thread. The connection's requests in its table, for write_now()'s "only one".
  void set_requests(std::size_t count) noexcept {
    requests_.store(count, std::memory_order_relaxed);
  }
  // I/O thread. Takes the output before a write of its own (when `have_bytes`, or when a
  // worker left a carry) and returns whether it holds it; the carry moves into `carry`.
  bool claim(bool have_bytes, std::string& carry);
  // I/O thread. Nothing left to write: workers may write again.
  void release_claim();
  // I/O thread. Neither claimed nor carrying bytes.
  bool idle();
  // I/O thread. No direct write from now on (the socket is about to close).
  void stop_direct();

 private:
  const std::size_t limit_;
  Counters& counters_;
  OutboundQueue& outbound_;
  std::atomic<std::size_t> requests_{0};  // see set_requests()
  std::mutex mutex_;
  std::condition_variable_any drained_;
  std::size_t unsent_ = 0;  // budgeted bytes; Guarded by mutex_.
  bool closed_ = false;     // Guarded by mutex_.
  Send send_;               // null once stopped; Guarded by mutex_.
  void* send_context_;      // Guarded by mutex_.
  bool claimed_ = false;    // the I/O thread writes; Guarded by mutex_.
  std::string carry_;       // Guarded by mutex_.
};

}  // namespace fcgimux::dispatch
