// SPDX-License-Identifier: MIT
#include "observe/worker_board.hpp"

#include <unistd.h>

#include <algorithm>

#include "observe/access_log.hpp"

namespace fcgimux::observe {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

}  // namespace

template <std::size_t N>
void WorkerBoard::Text<N>::assign(std::string_view text) noexcept {
  size = std::min(text.size(), N);
  std::copy_n(text.data(), size, bytes.data());
}

WorkerBoard::WorkerBoard(unsigned workers, Counters& counters, bool detailed)
    : counters_(counters), detailed_(detailed), slots_(workers) {}

void WorkerBoard::attach(unsigned index) noexcept {
  Slot& slot = slots_[index];
  const std::lock_guard lock(slot.mutex);
  slot.thread_id = static_cast<long>(::gettid());
  slot.thread = ::pthread_self();
  slot.started = std::chrono::system_clock::now();
}

void WorkerBoard::begin(unsigned index, const BegunRequest& request) noexcept {
  Slot& slot = slots_[index];
  const auto now = steady_clock::now();
  slot.since.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  slot.token.store(request.token, std::memory_order_release);
  if (!detailed_) return;
  const std::span<const protocol::NameValue> params = request.params;
  const std::string_view uri = param(params, "REQUEST_URI");
  const std::lock_guard lock(slot.mutex);
  slot.running = true;
  slot.reported_slow = false;
  ++slot.requests;
  slot.connection_id = request.connection_id;
  slot.request_id = request.request_id;
  slot.method.assign(param(params, "REQUEST_METHOD"));
  if (!uri.empty()) {
    slot.uri.assign(uri);
  } else {
    // Built only without REQUEST_URI; the copy is then bounded by the slot.
    try {
      slot.uri.assign(request_uri(params));
    } catch (...) {
      slot.uri.assign({});
    }
  }
  slot.script.assign(param(params, "SCRIPT_FILENAME"));
  slot.user.assign(param(params, "REMOTE_USER"));
  slot.content_length = protocol::content_length(params).value_or(0);
  slot.begun = now;
}

void WorkerBoard::end(unsigned index) noexcept {
  Slot& slot = slots_[index];
  slot.token.store(nullptr, std::memory_order_release);
  if (!detailed_) return;
  const auto now = steady_clock::now();
  const std::lock_guard lock(slot.mutex);
  slot.running = false;
  slot.last_duration = duration_cast<microseconds>(now - slot.begun);
}

std::optional<WorkerBoard::Runner> WorkerBoard::runner(
    const void* token, steady_clock::time_point admitted_at) const noexcept {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.token.load(std::memory_order_acquire) != token) continue;
    const steady_clock::time_point since{
        steady_clock::duration(slot.since.load(std::memory_order_relaxed))};
    if (since >= admitted_at) return Runner{static_cast<unsigned>(i), since};
  }
  return std::nullopt;
}

std::vector<WorkerSnapshot> WorkerBoard::snapshot() const {
  std::vector<WorkerSnapshot> workers;
  workers.reserve(slots_.size());
  const auto now = steady_clock::now();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    WorkerSnapshot& worker = workers.emplace_back();
    worker.index = static_cast<unsigned>(i);
    const std::lock_guard lock(slot.mutex);
    worker.thread_id = slot.thread_id;
    worker.started = slot.started;
    worker.running = slot.running;
    worker.requests = slot.requests;
    worker.connection_id = slot.connection_id;
    worker.request_id = slot.request_id;
    worker.method = slot.method.str();
    worker.uri = slot.uri.str();
    worker.script = slot.script.str();
    worker.user = slot.user.str();
    worker.content_length = slot.content_length;
    worker.duration =
        slot.running ? duration_cast<microseconds>(now - slot.begun) : slot.last_duration;
  }
  return workers;
}

std::vector<WorkerBoard::Slow> WorkerBoard::take_slow(milliseconds threshold) {
  std::vector<Slow> slow;
  const auto now = steady_clock::now();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    const std::lock_guard lock(slot.mutex);
    if (!slot.running || slot.reported_slow || now - slot.begun < threshold) continue;
    slot.reported_slow = true;
    Counters::add(counters_.slow_requests);
    slow.push_back(Slow{.worker = static_cast<unsigned>(i),
                        .thread = slot.thread,
                        .connection_id = slot.connection_id,
                        .request_id = slot.request_id,
                        .method = slot.method.str(),
                        .uri = slot.uri.str(),
                        .running = duration_cast<milliseconds>(now - slot.begun)});
  }
  return slow;
}

}  // namespace fcgimux::observe
