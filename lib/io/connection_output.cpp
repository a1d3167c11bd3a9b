// SPDX-License-Identifier: MIT
#include "io/connection_output.hpp"

#include <algorithm>

namespace fcgimux::io {

using observe::Counters;

ConnectionOutput::~ConnectionOutput() {
  Counters::sub(counters_.output_buffered, queued_.load(std::memory_order_relaxed));
  pieces_.clear(queue_);
}

// --- workers -----------------------------------------------------------------------------------

dispatch::Output::Written ConnectionOutput::write(std::string_view records, std::stop_token stop) {
  if (!wait_for_room(stop)) return Written::Dropped;
  std::unique_lock lock(mutex_);
  if (closed_) return Written::Dropped;
  return send_or_queue(lock, records);
}

bool ConnectionOutput::wait_for_room(std::stop_token stop) {
  return wait_for_room_until(std::move(stop), std::chrono::steady_clock::time_point::max());
}

bool ConnectionOutput::wait_for_room_until(std::stop_token stop,
                                           std::chrono::steady_clock::time_point deadline) {
  if (queued_.load(std::memory_order_relaxed) < limit_) return !stop.stop_requested();
  // A stop wakes the wait as room does. (A plain condition variable, with the callback, is
  // smaller than a condition_variable_any, which allocates: one output per connection.)
  const std::stop_callback wake(stop, [this] {
    const std::lock_guard lock(mutex_);
    changed_.notify_all();
  });
  std::unique_lock lock(mutex_);
  const auto done = [&] {
    return closed_ || stop.stop_requested() || queued_.load(std::memory_order_relaxed) < limit_;
  };
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    changed_.wait(lock, done);
  } else if (!changed_.wait_until(lock, deadline, done)) {
    return false;
  }
  return !closed_ && !stop.stop_requested();
}

dispatch::Output::Written ConnectionOutput::write_last(std::string_view records) {
  std::unique_lock lock(mutex_);
  if (closed_) return Written::Dropped;
  return send_or_queue(lock, records);
}

dispatch::Output::Written ConnectionOutput::send_or_queue(std::unique_lock<std::mutex>& lock,
                                                          std::string_view bytes) {
  if (writer_ != Writer::None) {
    // The writer sends it in turn.
    push_back(bytes);
    return Written::Done;
  }
  writer_ = Writer::Sending;
  if (!queue_.empty()) {
    push_back(bytes);
    return worker_result(send_queued(lock));
  }
  // Nothing before these bytes: they go out from the caller's buffer, without a copy.
  lock.unlock();
  const std::ptrdiff_t sent = transport_.send(std::span(&bytes, 1));
  lock.lock();
  const std::size_t taken = sent > 0 ? static_cast<std::size_t>(sent) : 0;
  Counters::add(counters_.bytes_out, taken);
  // What others appended meanwhile comes after the rest of these bytes.
  if (taken < bytes.size() && !closed_) push_front(bytes.substr(taken));
  const bool loop_owed = send_queued(lock);
  // Bytes the socket took whole were written, even when the connection closed since (the peer
  // may have read them and gone): Dropped would tell the writer they were not.
  if (closed_ && taken == bytes.size()) return Written::Done;
  return worker_result(loop_owed);
}

bool ConnectionOutput::send_queued(std::unique_lock<std::mutex>& lock) {
  while (!closed_ && !queue_.empty()) {
    // Made only when there is something to send: most calls find the queue empty.
    std::array<std::string_view, kMaxPieces> pieces;
    std::size_t bytes = 0;
    const std::size_t count = gather(pieces, bytes);
    lock.unlock();
    const std::ptrdiff_t sent = transport_.send(std::span(pieces.data(), count));
    lock.lock();
    const std::size_t taken = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    Counters::add(counters_.bytes_out, taken);
    if (closed_) break;
    pop(taken);
    if (taken < bytes) {
      writer_ = Writer::Loop;
      return true;
    }
  }
  writer_ = Writer::None;
  // close() may be waiting for this send to end.
  if (closed_) changed_.notify_all();
  return false;
}

dispatch::Output::Written ConnectionOutput::worker_result(bool loop_owed) {
  if (closed_) return Written::Dropped;
  if (reader_waiting_ && queued_.load(std::memory_order_relaxed) < limit_) {
    reader_waiting_ = false;
    return Written::NeedsLoop;
  }
  return loop_owed ? Written::NeedsLoop : Written::Done;
}

// --- the I/O thread ----------------------------------------------------------------------------

void ConnectionOutput::append(std::string_view bytes) {
  const std::lock_guard lock(mutex_);
  if (!closed_) push_back(bytes);
}

ConnectionOutput::Flush ConnectionOutput::flush(std::vector<std::string_view>& pieces) {
  std::unique_lock lock(mutex_);
  if (closed_) return Flush::Idle;
  if (writer_ == Writer::None) {
    if (queue_.empty()) return Flush::Idle;
    writer_ = Writer::Sending;
    if (!send_queued(lock)) return Flush::Idle;
  }
  if (writer_ == Writer::Sending || async_) return Flush::Busy;
  // The loop writes: everything queued goes into one asynchronous write.
  pieces.clear();
  std::size_t offset = front_sent_;
  for (const std::string& piece : queue_) {
    pieces.emplace_back(std::string_view(piece).substr(offset));
    offset = 0;
  }
  async_ = true;
  async_bytes_ = queued_.load(std::memory_order_relaxed);
  return Flush::Async;
}

void ConnectionOutput::async_written(bool sent) {
  const std::lock_guard lock(mutex_);
  async_ = false;
  if (closed_) {
    // close() kept the pieces of this write alive until now.
    pieces_.clear(queue_);
    front_sent_ = 0;
    return;
  }
  if (sent) {
    Counters::add(counters_.bytes_out, async_bytes_);
    pop(async_bytes_);
  }
  if (queue_.empty()) writer_ = Writer::None;
  if (queued_.load(std::memory_order_relaxed) < limit_) reader_waiting_ = false;
}

bool ConnectionOutput::hold_reader() {
  const std::lock_guard lock(mutex_);
  reader_waiting_ = queued_.load(std::memory_order_relaxed) >= limit_;
  return reader_waiting_;
}

bool ConnectionOutput::idle() {
  const std::lock_guard lock(mutex_);
  return queue_.empty() && writer_ == Writer::None && !async_;
}

void ConnectionOutput::close() {
  std::unique_lock lock(mutex_);
  if (closed_) return;
  closed_ = true;
  changed_.notify_all();
  changed_.wait(lock, [&] { return writer_ != Writer::Sending; });
  Counters::sub(counters_.output_buffered, queued_.exchange(0, std::memory_order_relaxed));
  writer_ = Writer::None;
  if (!async_) {
    pieces_.clear(queue_);
    front_sent_ = 0;
  }
}

// --- the queue ---------------------------------------------------------------------------------

std::size_t ConnectionOutput::gather(std::span<std::string_view> pieces, std::size_t& bytes) const {
  std::size_t count = 0;
  std::size_t offset = front_sent_;
  for (auto it = queue_.begin(); it != queue_.end() && count < pieces.size(); ++it, ++count) {
    pieces[count] = std::string_view(*it).substr(offset);
    bytes += pieces[count].size();
    offset = 0;
  }
  return count;
}

void ConnectionOutput::push_back(std::string_view bytes) {
  if (bytes.empty()) return;
  // Bytes join the last piece while it has room, so that the many small replies of a peer
  // that does not read hold memory in proportion to their bytes, not a piece each. Appending
  // within the capacity moves nothing: a send reading the piece's earlier bytes is unaffected.
  if (!queue_.empty() && queue_.back().capacity() - queue_.back().size() >= bytes.size()) {
    queue_.back().append(bytes);
  } else {
    pieces_.push_back(queue_, bytes);
  }
  queued_.fetch_add(bytes.size(), std::memory_order_relaxed);
  Counters::add(counters_.output_buffered, bytes.size());
}

void ConnectionOutput::push_front(std::string_view bytes) {
  pieces_.push_front(queue_, bytes);
  queued_.fetch_add(bytes.size(), std::memory_order_relaxed);
  Counters::add(counters_.output_buffered, bytes.size());
}

void ConnectionOutput::pop(std::size_t bytes) {
  if (bytes == 0) return;
  const bool was_full = queued_.load(std::memory_order_relaxed) >= limit_;
  queued_.fetch_sub(bytes, std::memory_order_relaxed);
  Counters::sub(counters_.output_buffered, bytes);
  while (bytes > 0) {
    const std::size_t left = queue_.front().size() - front_sent_;
    if (bytes < left) {
      front_sent_ += bytes;
      break;
    }
    bytes -= left;
    pieces_.pop_front(queue_);
    front_sent_ = 0;
  }
  if (was_full && queued_.load(std::memory_order_relaxed) < limit_) changed_.notify_all();
}

}  // namespace fcgimux::io
