// SPDX-License-Identifier: MIT
#include "dispatch/admission_queue.hpp"

#include <algorithm>

namespace fcgimux::dispatch {

void AdmissionQueue::push(Exchange* exchange) {
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back(exchange);
  }
  ready_.notify_one();
}

bool AdmissionQueue::remove(Exchange* exchange) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find(queue_.begin(), queue_.end(), exchange);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

Exchange* AdmissionQueue::pop(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait(lock, stop, [this] { return !queue_.empty(); })) return nullptr;
  Exchange* exchange = queue_.front();
  queue_.pop_front();
  return exchange;
}

Exchange* AdmissionQueue::try_pop() {
  const std::lock_guard lock(mutex_);
  if (queue_.empty()) return nullptr;
  Exchange* exchange = queue_.front();
  queue_.pop_front();
  return exchange;
}

}  // namespace fcgimux::dispatch
