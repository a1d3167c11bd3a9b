// SPDX-License-Identifier: MIT
#pragma once

// The pieces that connection outputs queue (connection_output.hpp), recycled across every
// connection of a server with their list nodes, so that queueing bytes on the steady path
// allocates nothing. Bounded: it keeps at most `keep` spare pieces of kMostKept bytes each;
// a larger piece is freed when sent.
//
// Threading: Thread-safe: the outputs of every connection take and give from any thread.

#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>

namespace fcgimux::io {

class PiecePool {
 public:
  static constexpr std::size_t kMostKept = 4096;

  explicit PiecePool(std::size_t keep) noexcept : keep_(keep) {}
  PiecePool(const PiecePool&) = delete;
  PiecePool& operator=(const PiecePool&) = delete;

  // Puts a piece holding `bytes` at the back (or the front) of `queue`: a spare one when the
  // pool has one and `bytes` fit in it (kMostKept), else a new one.
  void push_back(std::list<std::string>& queue, std::string_view bytes);
  void push_front(std::list<std::string>& queue, std::string_view bytes);
  // Takes the front piece off `queue`, keeping it for later unless the pool is full or the
  // piece is large. Requires: `queue` is not empty.
  void pop_front(std::list<std::string>& queue) noexcept;
  // Takes every piece off `queue`, as pop_front() does.
  void clear(std::list<std::string>& queue) noexcept;
  // How many spare pieces it keeps now.
  std::size_t spares();

 private:
  // A piece holding `bytes`, alone in a list, for splicing into a queue.
  std::list<std::string> take(std::string_view bytes);

  const std::size_t keep_;
  std::mutex mutex_;
  std::list<std::string> spare_;  // Guarded by mutex_.
};

}  // namespace fcgimux::io
