// SPDX-License-Identifier: MIT
// The body buffer pool: lib/dispatch/buffer_pool.cpp.

#include "dispatch/buffer_pool.hpp"

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>

namespace fcgimux::dispatch {
namespace {

constexpr std::size_t kMin = BufferPool::kMinCapacity;

std::string buffer_of(std::size_t capacity) {
  std::string buffer;
  buffer.reserve(capacity);
  buffer.assign(10, 'x');
  return buffer;
}

TEST_CASE("a buffer given back is taken again empty, with its room", "[dispatch]") {
  BufferPool pool(2, 4 * kMin);
  CHECK(pool.take().capacity() < kMin);  // nothing kept yet
  std::string buffer = buffer_of(2 * kMin);
  const char* const storage = buffer.data();
  pool.give(std::move(buffer));
  const std::string again = pool.take();
  CHECK(again.empty());
  CHECK(again.capacity() >= 2 * kMin);
  CHECK(again.data() == storage);
  CHECK(pool.take().capacity() < kMin);  // it was the only one
}

TEST_CASE("the pool keeps no more buffers than it may, and none too small or too large",
          "[dispatch]") {
  BufferPool pool(2, 4 * kMin);
  pool.give(buffer_of(kMin / 2));
  pool.give(buffer_of(8 * kMin));
  CHECK(pool.take().capacity() < kMin);
  for (int i = 0; i < 3; ++i) pool.give(buffer_of(kMin));
  CHECK(pool.take().capacity() >= kMin);
  CHECK(pool.take().capacity() >= kMin);
  CHECK(pool.take().capacity() < kMin);
}

}  // namespace
}  // namespace fcgimux::dispatch
