// SPDX-License-Identifier: MIT
#include "dispatch/output_budget.hpp"

namespace fcgimux::dispatch {

bool OutputBudget::acquire(std::size_t bytes, std::stop_token stop) {
  std::unique_lock lock(mutex_);
  drained_.wait(lock, stop, [&] { return closed_ || unsent_ < limit_; });
  if (closed_ || stop.stop_requested()) return false;
  unsent_ += bytes;
  Counters::add(counters_.output_buffered, bytes);
  return true;
}

void OutputBudget::add(std::size_t bytes) {
  const std::lock_guard lock(mutex_);
  unsent_ += bytes;
  Counters::add(counters_.output_buffered, bytes);
}

void OutputBudget::release(std::size_t bytes) {
  {
    const std::lock_guard lock(mutex_);
    unsent_ -= bytes;
    Counters::sub(counters_.output_buffered, bytes);
  }
  drained_.notify_all();
}

void OutputBudget::close() {
  {
    const std::lock_guard lock(mutex_);
    closed_ = true;
  }
  drained_.notify_all();
}

}  // namespace fcgimux::dispatch
