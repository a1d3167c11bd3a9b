// SPDX-License-Identifier: MIT
#pragma once

// Recycled byte buffers for request bodies. A request's body stream takes one when its first
// byte arrives and gives it back when the exchange goes, so that a server under a steady
// upload load reuses warm memory instead of mapping (and faulting in) a fresh buffer of a
// few hundred KiB for every request. Bounded: it keeps at most `keep` buffers, none larger
// than `max_capacity` bytes, and none smaller than kMinCapacity (not worth keeping).
//
// Threading: Thread-safe. Exchanges take and give on the I/O thread; an abandoned exchange
// (dispatch/worker_pool.hpp) gives back on whichever thread frees it.

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace fcgimux::dispatch {

class BufferPool {
 public:
  static constexpr std::size_t kMinCapacity = 64 * 1024;

  BufferPool(std::size_t keep, std::size_t max_capacity);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An empty buffer, with at least kMinCapacity of room when one was given back.
  std::string take();
  // Keeps `buffer` for a later take(), unless the pool is full or the buffer too large.
  void give(std::string&& buffer) noexcept;

 private:
  const std::size_t keep_;
  const std::size_t max_capacity_;
  std::mutex mutex_;
  std::vector<std::string> buffers_;  // Guarded by mutex_; capacity `keep_` from the start.
};

}  // namespace fcgimux::dispatch
