// SPDX-License-Identifier: MIT
#include "io/piece_pool.hpp"

namespace fcgimux::io {

std::list<std::string> PiecePool::take(std::string_view bytes) {
  std::list<std::string> one;
  // Spares are for pieces that fit them: a larger one would grow a spare past kMostKept, and
  // pop_front() frees such a piece, so every large write would use up a spare for good.
  if (bytes.size() <= kMostKept) {
    const std::lock_guard lock(mutex_);
    if (!spare_.empty()) one.splice(one.end(), spare_, spare_.begin());
  }
  if (one.empty()) {
    // A piece that may be kept gets the room of any other, so that reusing it never grows it.
    one.emplace_back();
    if (bytes.size() <= kMostKept) one.front().reserve(kMostKept);
  }
  one.front().assign(bytes);
  return one;
}

void PiecePool::push_back(std::list<std::string>& queue, std::string_view bytes) {
  std::list<std::string> one = take(bytes);
  queue.splice(queue.end(), one);
}

void PiecePool::push_front(std::list<std::string>& queue, std::string_view bytes) {
  std::list<std::string> one = take(bytes);
  queue.splice(queue.begin(), one);
}

void PiecePool::pop_front(std::list<std::string>& queue) noexcept {
  if (queue.front().capacity() <= kMostKept) {
    const std::lock_guard lock(mutex_);
    if (spare_.size() < keep_) {
      queue.front().clear();
      spare_.splice(spare_.end(), queue, queue.begin());
      return;
    }
  }
  queue.pop_front();
}

void PiecePool::clear(std::list<std::string>& queue) noexcept {
  while (!queue.empty()) pop_front(queue);
}

std::size_t PiecePool::spares() {
  const std::lock_guard lock(mutex_);
  return spare_.size();
}

}  // namespace fcgimux::io
