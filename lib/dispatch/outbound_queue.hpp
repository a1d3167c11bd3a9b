// SPDX-License-Identifier: MIT
#pragma once

// The workers → I/O thread hand-off. Producers: every worker (a request's records, its end,
// and "the body drained, read the socket again"). Consumer: the I/O thread, which takes the
// whole queue at each wake-up. The wake function (uv_async_send in the I/O layer) coalesces,
// so a wake-up is sent only when the queue goes from empty to non-empty and the consumer
// always drains everything it finds.

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
  };
  Kind kind;
  Exchange* exchange;
  std::string bytes;
};

// Threading: Thread-safe. push() from workers, drain() and close() on the I/O thread.
class OutboundQueue {
 public:
  using Wake = void (*)(void* context) noexcept;
  OutboundQueue(Wake wake, void* context) noexcept : wake_(wake), context_(context) {}
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;

  // Queues `message`, or drops it once the queue is closed.
  void push(Outbound message);
  // Moves every queued message into `into` (which it clears first), oldest first.
  void drain(std::vector<Outbound>& into);
  // The I/O thread stops listening (the server abandons its stuck workers): later messages
  // are dropped and wake nobody, and no wake-up is under way once it returns. Messages
  // already queued stay for a last drain().
  void close();

 private:
  const Wake wake_;
  void* const context_;
  std::mutex mutex_;
  std::vector<Outbound> messages_;  // Guarded by mutex_.
  bool closed_ = false;             // Guarded by mutex_.
};

}  // namespace fcgimux::dispatch
