// SPDX-License-Identifier: MIT
#include <utility>

#include "dispatch/exchange.hpp"
#include "dispatch/stream_state.hpp"
#include "fcgimux/response.hpp"

namespace fcgimux {

using observe::Counters;

ResponseStream Response::detach() { return exchange_.detach(); }

ResponseStream::ResponseStream() noexcept = default;

ResponseStream::ResponseStream(std::unique_ptr<dispatch::StreamState> state) noexcept
    : state_(std::move(state)) {}

ResponseStream::ResponseStream(ResponseStream&& other) noexcept = default;

ResponseStream& ResponseStream::operator=(ResponseStream&& other) noexcept {
  if (this != &other) {
    const ResponseStream ended(std::move(*this));  // ends as the destructor would
    state_ = std::move(other.state_);
  }
  return *this;
}

ResponseStream::~ResponseStream() {
  if (!state_) return;
  bool open = false;
  std::uint64_t connection_id = 0;
  std::uint16_t request_id = 0;
  {
    const std::lock_guard lock(state_->mutex);
    if (state_->exchange != nullptr) {
      open = true;
      connection_id = state_->exchange->connection_id();
      request_id = state_->exchange->id();
    }
  }
  if (!open) return;
  state_->logger.log(LogLevel::Debug, "conn {} req {}: stream dropped without end(): ended",
                     connection_id, request_id);
  end();
}

ResponseStream::Written ResponseStream::write(std::string_view bytes) {
  return write(std::as_bytes(std::span(bytes)));
}

ResponseStream::Written ResponseStream::write(std::span<const std::byte> bytes) {
  if (!state_) return Written::Closed;
  Written written = Written::Closed;
  {
    const std::lock_guard lock(state_->mutex);
    if (state_->exchange != nullptr) written = state_->exchange->stream_write(bytes);
  }
  if (written == Written::Closed) Counters::add(state_->counters.stream_writes_dropped);
  return written;
}

ResponseStream::Written ResponseStream::flush() { return write(std::span<const std::byte>()); }

bool ResponseStream::wait_writable(std::chrono::steady_clock::time_point deadline) {
  if (!state_) return false;
  dispatch::Exchange* exchange = nullptr;
  {
    const std::lock_guard lock(state_->mutex);
    exchange = state_->exchange;
    if (exchange == nullptr) return false;
    // Held, the exchange (and so its connection and output) outlives the wait, whoever ends
    // the stream meanwhile.
    exchange->add_stream_hold();
  }
  const bool writable = exchange->output().wait_for_room_until(state_->stop, deadline);
  exchange->release_stream_hold();
  if (!writable) return false;
  const std::lock_guard lock(state_->mutex);
  return state_->exchange != nullptr;
}

void ResponseStream::end(std::uint32_t app_status) noexcept {
  if (!state_) return;
  std::unique_ptr<dispatch::StreamState::StopCallback> callback;
  {
    const std::lock_guard lock(state_->mutex);
    dispatch::Exchange* exchange = std::exchange(state_->exchange, nullptr);
    if (exchange == nullptr) return;
    callback = std::move(state_->on_stop);
    state_->reason_at_end = exchange->stop_reason();
    exchange->set_app_status(app_status);
    exchange->release_stream_hold();
  }
  // Destroyed here, out of the lock: it waits for the callback if it is running, and the
  // callback may be calling end() too.
  callback.reset();
}

bool ResponseStream::open() const noexcept {
  if (!state_) return false;
  const std::lock_guard lock(state_->mutex);
  return state_->exchange != nullptr && !state_->exchange->stopped();
}

std::stop_token ResponseStream::stop_token() const noexcept {
  return state_ ? state_->stop : std::stop_token();
}

StopReason ResponseStream::stop_reason() const noexcept {
  if (!state_) return StopReason::None;
  const std::lock_guard lock(state_->mutex);
  return state_->exchange != nullptr ? state_->exchange->stop_reason() : state_->reason_at_end;
}

void ResponseStream::on_stop(std::function<void()> callback) {
  if (!state_) return;
  // Registered out of the lock: on a stopped token it calls the callback here, at once, and
  // the callback may call end().
  auto registered =
      std::make_unique<dispatch::StreamState::StopCallback>(state_->stop, std::move(callback));
  {
    const std::lock_guard lock(state_->mutex);
    // Ended meanwhile: the new one goes (below) instead of the old one.
    if (state_->exchange != nullptr) state_->on_stop.swap(registered);
  }
}

}  // namespace fcgimux
