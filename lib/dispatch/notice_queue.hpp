// SPDX-License-Identifier: MIT
#pragma once

// The workers → I/O thread hand-off. Producers: every worker, with notices about the request it
// runs; consumer: the I/O thread, which takes the whole queue at each wake-up. It carries
// notices only, never bytes: bytes go to the connection's output (dispatch/output.hpp).
//
// The wake function (uv_async_send in the I/O layer) coalesces, so a wake-up is sent only for
// the first waking notice since the consumer last drained, and the consumer always drains
// everything it finds. A notice may also be queued without waking anyone (push(notice,
// false)): the end of a request whose response is already on the socket, which the I/O thread
// only needs to take off its table. The I/O thread takes such notices whenever it runs anyway:
// before its loop sleeps and at each sweep.
//
// A notice is the worker's last word on its request only when it is Ended or Cut; until then
// the exchange, and so its connection, stay alive for the notices before it.

#include <atomic>
#include <mutex>
#include <vector>

namespace fcgimux::dispatch {

class Exchange;

// One notice from a worker about the request it runs.
struct Notice {
  enum class Kind : unsigned char {
    Ended,     // the handler is done and the request's last records are in its connection's
               // output. The worker gives up the exchange with this notice (or, the queue
               // closed, to nobody: see Exchange, step 4).
    Cut,       // the handler is done, but its response was cut short by the server's stop:
               // the connection must close without an END_REQUEST for it. The worker gives up
               // the exchange as with Ended.
    BodyRead,  // the request's unread body fell under its budget: read its connection again
    Output,    // the connection's output needs the I/O thread: a write the socket did not
               // take all of, or room again under the budget for a connection not reading
  };
  Kind kind;
  Exchange* exchange;
};

// Threading: Thread-safe. push() from workers, drain(), has_notices() and close() on the I/O
// thread.
class NoticeQueue {
 public:
  using Wake = void (*)(void* context) noexcept;
  NoticeQueue(Wake wake, void* context) noexcept : wake_(wake), context_(context) {}
  NoticeQueue(const NoticeQueue&) = delete;
  NoticeQueue& operator=(const NoticeQueue&) = delete;

  // Queues `notice`, or drops it once the queue is closed. `wake`: whether the I/O thread
  // must be woken for it. Allocates only to grow past the most notices ever queued at once.
  void push(Notice notice, bool wake);
  // Moves every queued notice into `into` (which it clears first), oldest first.
  void drain(std::vector<Notice>& into);
  // Whether notices wait. Sees every push that happens before the call (a mutex the pusher
  // released, or the queue's own), so it may be checked cheaply before drain().
  bool has_notices() const noexcept { return has_notices_.load(std::memory_order_relaxed); }
  // The I/O thread stops listening (the server abandons its stuck workers): later notices are
  // dropped and wake nobody, and no wake-up is under way once it returns. Notices already
  // queued stay for a last drain().
  void close();

 private:
  const Wake wake_;
  void* const context_;
  std::mutex mutex_;
  std::vector<Notice> notices_;  // Guarded by mutex_.
  bool woken_ = false;           // a wake-up went out since the last drain; Guarded by mutex_.
  bool closed_ = false;          // Guarded by mutex_.
  std::atomic<bool> has_notices_{false};  // !notices_.empty(), written under mutex_
};

}  // namespace fcgimux::dispatch
