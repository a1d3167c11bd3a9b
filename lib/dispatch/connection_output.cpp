// SPDX-License-Identifier: MIT
#include "dispatch/connection_output.hpp"

#include <utility>

namespace fcgimux::dispatch {

void ConnectionOutput::reuse(Send send, void* context) noexcept {
  const std::lock_guard lock(mutex_);
  unsent_ = 0;
  closed_ = false;
  send_ = send;
  send_context_ = context;
  claimed_ = false;
  carry_.clear();
  requests_.store(0, std::memory_order_relaxed);
}

// --- the budgeted path -------------------------------------------------------------------------

bool ConnectionOutput::acquire(std::size_t bytes, std::stop_token stop) {
  std::unique_lock lock(mutex_);
  drained_.wait(lock, stop, [&] { return closed_ || unsent_ < limit_; });
  if (closed_ || stop.stop_requested()) return false;
  unsent_ += bytes;
  Counters::add(counters_.output_buffered, bytes);
  return true;
}

void ConnectionOutput::add(std::size_t bytes) {
  const std::lock_guard lock(mutex_);
  unsent_ += bytes;
  Counters::add(counters_.output_buffered, bytes);
}

void ConnectionOutput::release(std::size_t bytes) {
  {
    const std::lock_guard lock(mutex_);
    unsent_ -= bytes;
    Counters::sub(counters_.output_buffered, bytes);
  }
  drained_.notify_all();
}

void ConnectionOutput::close() {
  {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    send_ = nullptr;
  }
  drained_.notify_all();
}

// --- the direct path ---------------------------------------------------------------------------

ConnectionOutput::Written ConnectionOutput::write_now(std::string_view bytes, Outbound& message,
                                                      Then then) noexcept {
  if (requests_.load(std::memory_order_relaxed) != 1) return Written::None;
  // The I/O thread holds mutex_ only for a few field updates, never across a system call, so
  // waiting for it here is short.
  const std::lock_guard lock(mutex_);
  if (send_ == nullptr || claimed_) return Written::None;
  const std::ptrdiff_t sent = send_(send_context_, bytes);
  if (sent <= 0) return Written::None;
  const auto taken = static_cast<std::size_t>(sent);
  Counters::add(counters_.bytes_out, taken);
  const bool all = taken == bytes.size();
  // Out of memory here ends the process (noexcept), as it does for any request's end: the
  // request could not end, nor its connection's byte stream go on.
  if (!all) {
    carry_.assign(bytes.substr(taken));
    claimed_ = true;
  }
  // Wakes the I/O thread for a carry, which only it can send.
  if (!all || then != Then::Nothing) {
    outbound_.push(std::move(message), !all || then == Then::Queue);
  }
  return all ? Written::All : Written::Part;
}

void ConnectionOutput::settle() { const std::lock_guard lock(mutex_); }

bool ConnectionOutput::claim(bool have_bytes, std::string& carry) {
  const std::lock_guard lock(mutex_);
  carry.swap(carry_);
  claimed_ = have_bytes || !carry.empty();
  return claimed_;
}

void ConnectionOutput::release_claim() {
  const std::lock_guard lock(mutex_);
  claimed_ = false;
}

bool ConnectionOutput::idle() {
  const std::lock_guard lock(mutex_);
  return !claimed_ && carry_.empty();
}

void ConnectionOutput::stop_direct() {
  const std::lock_guard lock(mutex_);
  send_ = nullptr;
}

}  // namespace fcgimux::dispatch
