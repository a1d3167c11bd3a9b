// SPDX-License-Identifier: MIT
#include "dispatch/buffer_pool.hpp"

#include <utility>

namespace fcgimux::dispatch {

BufferPool::BufferPool(std::size_t keep, std::size_t max_capacity)
    : keep_(keep), max_capacity_(max_capacity) {
  // Reserved here, so that give() never allocates.
  buffers_.reserve(keep_);
}

std::string BufferPool::take() {
  const std::lock_guard lock(mutex_);
  if (buffers_.empty()) return {};
  std::string buffer = std::move(buffers_.back());
  buffers_.pop_back();
  return buffer;
}

void BufferPool::give(std::string&& buffer) noexcept {
  if (buffer.capacity() < kMinCapacity || buffer.capacity() > max_capacity_) return;
  buffer.clear();
  const std::lock_guard lock(mutex_);
  if (buffers_.size() < keep_) buffers_.push_back(std::move(buffer));
}

}  // namespace fcgimux::dispatch
