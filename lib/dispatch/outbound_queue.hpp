// SPDX-License-Identifier: MIT
#pragma once

// The workers → I/O thread hand-off. Producers: every worker (a request's records, its end,
// and "the body drained, read the socket again"). Consumer: the I/O thread, which takes the
// whole queue at each wake-up. The wake function (uv_async_send in the I/O layer) coalesces,
// so a wake-up is sent only for the first waking message since the consumer last drained, and
// the consumer always drains everything it finds.
//
// A message may also be queued without waking anyone (push(message, false)): the end of a
// request whose worker already wrote its response to the socket (ConnectionOutput). The I/O
// thread takes such messages whenever it runs anyway: before reading a connection, before
// its loop sleeps, and at each sweep.

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace fcgimux::dispatch {

class Exchange;

// One message from a worker about one request.
struct Outbound {
  enum class Kind : unsigned char {
    Records,     // `bytes` are complete records for the request's connection
    End,         // the handler is done; `bytes` are its last records, END_REQUEST included.
                 // The worker gives up the exchange with this message (or, the queue
                 // closed, hands it to nobody: see Exchange, step 4).
    ResumeRead,  // the request's unread body fell under its budget
    Cut,         // the handler is done, but its response was cut short by the server's stop:
                 // the connection must close without an END_REQUEST for it. The worker gives
                 // up the exchange as with End.
  };
  Kind kind;
  Exchange* exchange;
  std::string bytes;
};

// Threading: Thread-safe. push() from workers, drain(), has_messages() and close() on the I/O
// thread.
class OutboundQueue {
 public:
  using Wake = void (*)(void* context) noexcept;
  OutboundQueue(Wake wake, void* context) noexcept : wake_(wake), context_(context) {}
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;

  // Queues `message`, or drops it once the queue is closed. `wake`: whether the I/O thread
  // must be woken for it.
  void push(Outbound message, bool wake = true);
  // Moves every queued message into `into` (which it clears first), oldest first.
  void drain(std::vector<Outbound>& into);
  // Whether messages wait. Sees every push that happens before the call (a mutex the pusher
  // released, or the queue's own), so it may be checked cheaply before drain().
  bool has_messages() const noexcept { return has_messages_.load(std::memory_order_relaxed); }
  // The I/O thread stops listening (the server abandons its stuck workers): later messages
  // are dropped and wake nobody, and no wake-up is under way once it returns. Messages
  // already queued stay for a last drain().
  void close();

 private:
  const Wake wake_;
  void* const context_;
  std::mutex mutex_;
  std::vector<Outbound> messages_;  // Guarded by mutex_.
  bool woken_ = false;              // a wake-up went out since the last drain; Guarded by mutex_.
  bool closed_ = false;             // Guarded by mutex_.
  std::atomic<bool> has_messages_{false};  // !messages_.empty(), written under mutex_
};

}  // namespace fcgimux::dispatch
