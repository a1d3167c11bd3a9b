// SPDX-License-Identifier: MIT
#include "dispatch/notice_queue.hpp"

namespace fcgimux::dispatch {

void NoticeQueue::push(Notice notice, bool wake) {
  const std::lock_guard lock(mutex_);
  if (closed_) return;
  notices_.push_back(notice);
  has_notices_.store(true, std::memory_order_relaxed);
  // The consumer swaps the whole vector out under the lock, so one wake-up since its last
  // drain is enough. Woken under the lock, so that no wake-up reaches the loop after close()
  // returned: the loop may be gone by then.
  if (wake && !woken_) {
    woken_ = true;
    wake_(context_);
  }
}

void NoticeQueue::close() {
  const std::lock_guard lock(mutex_);
  closed_ = true;
}

void NoticeQueue::drain(std::vector<Notice>& into) {
  into.clear();
  const std::lock_guard lock(mutex_);
  into.swap(notices_);
  woken_ = false;
  has_notices_.store(false, std::memory_order_relaxed);
}

}  // namespace fcgimux::dispatch
