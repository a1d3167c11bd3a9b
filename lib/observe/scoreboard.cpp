// SPDX-License-Identifier: MIT
#include "observe/scoreboard.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <new>
#include <system_error>
#include <thread>

namespace fcgimux::observe {

struct Scoreboard::Header {
  std::atomic<std::uint64_t> generation{0};  // odd while release() folds a slot
  std::atomic<std::uint64_t> restarts{0};
  std::atomic<std::uint64_t> recycles{0};
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  Counters retired;  // followed by the retired PoolCounters
};

namespace {

constexpr std::size_t kLine = 64;

constexpr std::size_t aligned(std::size_t bytes) noexcept {
  return (bytes + kLine - 1) / kLine * kLine;
}

template <class T>
T* at(void* base, std::size_t offset) noexcept {
  return std::launder(reinterpret_cast<T*>(static_cast<char*>(base) + offset));
}

}  // namespace

Scoreboard::Scoreboard(std::size_t slots, std::size_t pools)
    : slots_(slots),
      pools_(pools),
      stride_(aligned(sizeof(ProcessSlot) + pools * sizeof(PoolCounters))),
      size_(aligned(sizeof(Header) + pools * sizeof(PoolCounters)) + slots * stride_) {
  memory_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory_ == MAP_FAILED) {
    memory_ = nullptr;
    throw std::system_error(errno, std::generic_category(), "mmap of the process scoreboard");
  }
  new (memory_) Header;
  for (PoolCounters& pool : retired_pools()) new (&pool) PoolCounters;
  for (std::size_t i = 0; i < slots_; ++i) {
    new (&slot(i)) ProcessSlot;
    for (PoolCounters& pool : pool_counters(i)) new (&pool) PoolCounters;
  }
}

Scoreboard::~Scoreboard() {
  // Every member is a trivially destructible atomic: unmapping ends them.
  ::munmap(memory_, size_);
}

Scoreboard::Header& Scoreboard::header() const noexcept { return *at<Header>(memory_, 0); }

std::span<PoolCounters> Scoreboard::retired_pools() const noexcept {
  return {at<PoolCounters>(memory_, sizeof(Header)), pools_};
}

ProcessSlot& Scoreboard::slot(std::size_t i) const noexcept {
  return *at<ProcessSlot>(memory_,
                          aligned(sizeof(Header) + pools_ * sizeof(PoolCounters)) + i * stride_);
}

std::span<PoolCounters> Scoreboard::pool_counters(std::size_t i) const noexcept {
  return {at<PoolCounters>(&slot(i), sizeof(ProcessSlot)), pools_};
}

std::chrono::system_clock::time_point Scoreboard::started() const noexcept {
  return header().started;
}

std::vector<ProcessSnapshot> Scoreboard::processes() const {
  static constexpr std::string_view kStates[] = {"Free", "Starting", "Ready", "Retiring",
                                                 "Leaving"};
  std::vector<ProcessSnapshot> processes;
  for (std::size_t i = 0; i < slots_; ++i) {
    const ProcessSlot& place = slot(i);
    const auto state = place.state.load(std::memory_order_acquire);
    if (state == ProcessSlot::State::Free) continue;
    processes.push_back(ProcessSnapshot{
        .number = place.number.load(std::memory_order_relaxed),
        .pid = place.pid.load(std::memory_order_relaxed),
        .state = kStates[static_cast<std::size_t>(state)],
        .started = std::chrono::system_clock::time_point(
            std::chrono::milliseconds(place.started_ms.load(std::memory_order_relaxed))),
        .requests = place.counters.requests_admitted.load(std::memory_order_relaxed),
        .rss_bytes = place.rss_bytes.load(std::memory_order_relaxed)});
  }
  return processes;
}

std::atomic<std::uint64_t>& Scoreboard::restarts() const noexcept { return header().restarts; }

std::atomic<std::uint64_t>& Scoreboard::recycles() const noexcept { return header().recycles; }

void Scoreboard::claim(std::size_t i, unsigned number) noexcept {
  // Readers skip a free slot, so its figures can be reset one by one.
  ProcessSlot& place = slot(i);
  place.pid.store(0, std::memory_order_relaxed);
  place.command.store(ProcessSlot::Command::None, std::memory_order_relaxed);
  place.started_ms.store(0, std::memory_order_relaxed);
  place.rss_bytes.store(0, std::memory_order_relaxed);
  place.retiring_for_memory.store(false, std::memory_order_relaxed);
  place.counters.reset();
  for (PoolCounters& pool : pool_counters(i)) pool.reset();
  place.number.store(number, std::memory_order_relaxed);
  place.state.store(ProcessSlot::State::Starting, std::memory_order_release);
}

void Scoreboard::release(std::size_t i) noexcept {
  Header& head = header();
  // Odd first: the read-modify-write keeps the folding below after it (a fence would do the
  // same, but ThreadSanitizer does not model fences).
  const std::uint64_t generation = head.generation.fetch_add(1, std::memory_order_acq_rel);
  ProcessSlot& place = slot(i);
  place.counters.fold_into(head.retired);
  const std::span<PoolCounters> pools = pool_counters(i);
  const std::span<PoolCounters> retired = retired_pools();
  for (std::size_t p = 0; p < pools_; ++p) pools[p].fold_into(retired[p]);
  place.pid.store(0, std::memory_order_relaxed);
  place.state.store(ProcessSlot::State::Free, std::memory_order_relaxed);
  head.generation.store(generation + 2, std::memory_order_release);
}

bool Scoreboard::within_share(std::size_t own) const noexcept {
  constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t fewest = kNone;
  for (std::size_t i = 0; i < slots_; ++i) {
    const ProcessSlot& place = slot(i);
    if (i == own || place.state.load(std::memory_order_relaxed) != ProcessSlot::State::Ready) {
      continue;
    }
    fewest = std::min(fewest, place.counters.connections_open.load(std::memory_order_relaxed));
  }
  if (fewest == kNone) return true;
  // A child past its recycling limit leaves new connections to its serving siblings: what it
  // takes now it must drain soon.
  if (slot(own).state.load(std::memory_order_relaxed) == ProcessSlot::State::Retiring) {
    return false;
  }
  const std::uint64_t mine = slot(own).counters.connections_open.load(std::memory_order_relaxed);
  return mine <= fewest + std::max(kShareMargin, fewest / 8);
}

Stats Scoreboard::stats(std::span<const PoolStats> pools, bool own_figures) const {
  Header& head = header();
  std::vector<PoolStats> pool_sums(pools.begin(), pools.end());
  for (;;) {
    const std::uint64_t before = head.generation.load(std::memory_order_acquire);
    if (before % 2 != 0) {
      std::this_thread::yield();
      continue;
    }
    Stats total = head.retired.snapshot();
    total.processes_running = 0;
    const std::span<PoolCounters> retired = retired_pools();
    for (std::size_t p = 0; p < pools_ && p < pools.size(); ++p) {
      pool_sums[p] = retired[p].snapshot(pools[p]);
    }
    for (std::size_t i = 0; i < slots_; ++i) {
      const ProcessSlot& place = slot(i);
      const ProcessSlot::State state = place.state.load(std::memory_order_acquire);
      if (state == ProcessSlot::State::Free) continue;
      if (state == ProcessSlot::State::Ready || state == ProcessSlot::State::Retiring) {
        ++total.processes_running;
      }
      Counters::add(total, place.counters.snapshot());
      const std::span<PoolCounters> live = pool_counters(i);
      for (std::size_t p = 0; p < pools_ && p < pools.size(); ++p) {
        PoolCounters::add(pool_sums[p], live[p].snapshot(pools[p]));
      }
    }
    // A read-modify-write that changes nothing: it keeps the reads above before it, as an
    // acquire fence and a load would (fences are not modelled by ThreadSanitizer).
    if (head.generation.fetch_add(0, std::memory_order_acq_rel) != before) continue;
    total.process_restarts = head.restarts.load(std::memory_order_relaxed);
    total.process_recycles = head.recycles.load(std::memory_order_relaxed);
    for (std::size_t p = 0; p < pool_sums.size(); ++p) {
      PoolStats& pool = pool_sums[p];
      if (!own_figures) pool = PoolCounters::from_totals(pools[p], total);
      const auto processes = static_cast<unsigned>(total.processes_running);
      pool.workers = pools[p].workers * processes;
      pool.max_requests = pools[p].max_requests * processes;
    }
    total.pools = std::move(pool_sums);
    return total;
  }
}

}  // namespace fcgimux::observe
