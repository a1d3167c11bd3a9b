// SPDX-License-Identifier: MIT
#include "dispatch/admission_queue.hpp"

#include <algorithm>
#include <utility>

namespace fcgimux::dispatch {

void AdmissionQueue::push(Exchange* exchange) {
  Waiter* waiter = nullptr;
  {
    const std::lock_guard lock(mutex_);
    if (idle_.empty()) {
      queue_.push_back(exchange);
      return;
    }
    waiter = idle_.back();
    idle_.pop_back();
    waiter->exchange = exchange;
  }
  waiter->wake();
}

bool AdmissionQueue::remove(Exchange* exchange) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find(queue_.begin(), queue_.end(), exchange);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

AdmissionQueue::AdmissionQueue(unsigned workers) : waiters_(std::make_unique<Waiter[]>(workers)) {
  idle_.reserve(workers);
}

Exchange* AdmissionQueue::pop(unsigned worker, std::stop_token stop) {
  Waiter& waiter = waiters_[worker];
  {
    const std::lock_guard lock(mutex_);
    if (!queue_.empty()) {
      Exchange* exchange = queue_.front();
      queue_.pop_front();
      return exchange;
    }
    if (stop.stop_requested()) return nullptr;
    idle_.push_back(&waiter);
  }
  {
    // A stop wakes the waiter with nothing, unless a push took it off idle_ first: then the
    // exchange is on its way and the worker gets it.
    const std::stop_callback on_stop(stop, [this, &waiter] {
      {
        const std::lock_guard lock(mutex_);
        const auto it = std::find(idle_.begin(), idle_.end(), &waiter);
        if (it == idle_.end()) return;
        idle_.erase(it);
      }
      waiter.wake();
    });
    waiter.ready.acquire();
  }
  return std::exchange(waiter.exchange, nullptr);
}

Exchange* AdmissionQueue::try_pop() {
  const std::lock_guard lock(mutex_);
  if (queue_.empty()) return nullptr;
  Exchange* exchange = queue_.front();
  queue_.pop_front();
  return exchange;
}

}  // namespace fcgimux::dispatch
