// SPDX-License-Identifier: MIT
#include "dispatch/outbound_queue.hpp"

#include <utility>

namespace fcgimux::dispatch {

void OutboundQueue::push(Outbound message, bool wake) {
  const std::lock_guard lock(mutex_);
  if (closed_) return;
  messages_.push_back(std::move(message));
  has_messages_.store(true, std::memory_order_relaxed);
  // The consumer swaps the whole vector out under the lock, so one wake-up since its last
  // drain is enough. Woken under the lock, so that no wake-up reaches the loop after close()
  // returned: the loop may be gone by then.
  if (wake && !woken_) {
    woken_ = true;
    wake_(context_);
  }
}

void OutboundQueue::close() {
  const std::lock_guard lock(mutex_);
  closed_ = true;
}

void OutboundQueue::drain(std::vector<Outbound>& into) {
  into.clear();
  const std::lock_guard lock(mutex_);
  into.swap(messages_);
  woken_ = false;
  has_messages_.store(false, std::memory_order_relaxed);
}

}  // namespace fcgimux::dispatch
