// SPDX-License-Identifier: MIT
// The pool of queued pieces: spares are reused by the pieces that fit them, and a large piece
// never uses one up.

#include "io/piece_pool.hpp"

#include <catch2/catch.hpp>
#include <list>
#include <set>
#include <string>

namespace fcgimux::io {
namespace {

std::set<const char*> buffers_of(const std::list<std::string>& queue) {
  std::set<const char*> buffers;
  for (const std::string& piece : queue) buffers.insert(piece.data());
  return buffers;
}

TEST_CASE("small pieces reuse the spares, and a large piece between them uses none up",
          "[io][pieces]") {
  PiecePool pool(4);
  std::list<std::string> queue;
  pool.push_back(queue, "first");
  pool.push_back(queue, "second");
  const std::set<const char*> spares = buffers_of(queue);
  pool.clear(queue);
  REQUIRE(pool.spares() == 2);

  // Larger than a spare holds: a piece of its own, freed when sent.
  pool.push_back(queue, std::string(3 * PiecePool::kMostKept, 'x'));
  CHECK(spares.count(queue.front().data()) == 0);
  pool.clear(queue);
  CHECK(pool.spares() == 2);

  pool.push_back(queue, "third");
  pool.push_front(queue, "fourth");
  CHECK(buffers_of(queue) == spares);
  CHECK(queue.front() == "fourth");
  CHECK(queue.back() == "third");
  CHECK(pool.spares() == 0);
  pool.clear(queue);
  CHECK(pool.spares() == 2);
}

}  // namespace
}  // namespace fcgimux::io
