// SPDX-License-Identifier: MIT
#include "dispatch/outbound_queue.hpp"

#include <utility>

namespace fcgimux::dispatch {

void OutboundQueue::push(Outbound message) {
  const std::lock_guard lock(mutex_);
  if (closed_) return;
  const bool was_empty = messages_.empty();
  messages_.push_back(std::move(message));
  // The consumer swaps the whole vector out under the lock, so the push that finds it empty
  // is the one whose wake-up the consumer has not yet answered. Woken under the lock, so that
  // no wake-up reaches the loop after close() returned: the loop may be gone by then.
  if (was_empty) wake_(context_);
}

void OutboundQueue::close() {
  const std::lock_guard lock(mutex_);
  closed_ = true;
}

void OutboundQueue::drain(std::vector<Outbound>& into) {
  into.clear();
  const std::lock_guard lock(mutex_);
  into.swap(messages_);
}

}  // namespace fcgimux::dispatch
