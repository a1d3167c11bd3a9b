// SPDX-License-Identifier: MIT
#include "dispatch/worker_board.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "dispatch/access_log.hpp"
#include "dispatch/exchange.hpp"

namespace fcgimux::dispatch {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::uint64_t parse_length(std::string_view text) noexcept {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() ? value : 0;
}

}  // namespace

template <std::size_t N>
void WorkerBoard::Text<N>::assign(std::string_view text) noexcept {
  size = std::min(text.size(), N);
  std::copy_n(text.data(), size, bytes.data());
}

WorkerBoard::WorkerBoard(unsigned workers, Counters& counters)
    : counters_(counters), slots_(workers) {}

void WorkerBoard::attach(unsigned index) noexcept {
  Slot& slot = slots_[index];
  const std::lock_guard lock(slot.mutex);
  slot.thread_id = static_cast<long>(::gettid());
  slot.started = std::chrono::system_clock::now();
}

void WorkerBoard::begin(unsigned index, const Exchange& exchange) noexcept {
  Slot& slot = slots_[index];
  const std::span<const protocol::NameValue> params = exchange.params();
  const std::string_view uri = find_param(params, "REQUEST_URI");
  const std::lock_guard lock(slot.mutex);
  slot.running = true;
  slot.reported_slow = false;
  ++slot.requests;
  slot.connection_id = exchange.connection_id();
  slot.request_id = exchange.id();
  slot.method.assign(find_param(params, "REQUEST_METHOD"));
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
  slot.script.assign(find_param(params, "SCRIPT_FILENAME"));
  slot.user.assign(find_param(params, "REMOTE_USER"));
  slot.content_length = parse_length(find_param(params, "CONTENT_LENGTH"));
  slot.begun = steady_clock::now();
}

void WorkerBoard::end(unsigned index) noexcept {
  Slot& slot = slots_[index];
  const auto now = steady_clock::now();
  const std::lock_guard lock(slot.mutex);
  slot.running = false;
  slot.last_duration = duration_cast<microseconds>(now - slot.begun);
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
                        .connection_id = slot.connection_id,
                        .request_id = slot.request_id,
                        .method = slot.method.str(),
                        .uri = slot.uri.str(),
                        .running = duration_cast<milliseconds>(now - slot.begun)});
  }
  return slow;
}

}  // namespace fcgimux::dispatch
