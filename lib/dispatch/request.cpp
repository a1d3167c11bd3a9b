// SPDX-License-Identifier: MIT
#include "fcgimux/request.hpp"

#include "dispatch/exchange.hpp"

namespace fcgimux {

namespace {

// Reads a whole stream with `read_some`, refusing more than `max_bytes`.
template <class ReadSome>
std::string read_stream(std::size_t max_bytes, ReadSome read_some) {
  std::string all;
  std::byte buffer[16 * 1024];
  while (const std::size_t n = read_some(std::span(buffer))) {
    if (n > max_bytes - all.size()) {
      throw LimitExceeded("request stream longer than " + std::to_string(max_bytes) + " bytes");
    }
    all.append(reinterpret_cast<const char*>(buffer), n);
  }
  return all;
}

}  // namespace

Role Request::role() const noexcept { return exchange_.role(); }
std::uint16_t Request::id() const noexcept { return exchange_.id(); }
bool Request::keep_conn() const noexcept { return exchange_.keep_conn(); }

std::optional<std::string_view> Request::param(std::string_view name) const noexcept {
  return protocol::value_of(exchange_.params(), name);
}

std::span<const Param> Request::params() const noexcept { return exchange_.params(); }

std::size_t Request::read(std::span<std::byte> into) { return exchange_.read_stdin(into); }

std::size_t Request::read(std::span<char> into) {
  return exchange_.read_stdin(std::as_writable_bytes(into));
}

std::string Request::read_all(std::size_t max_bytes) {
  return read_stream(max_bytes, [this](std::span<std::byte> into) { return read(into); });
}

std::size_t Request::read_data(std::span<std::byte> into) { return exchange_.read_data(into); }

std::string Request::read_all_data(std::size_t max_bytes) {
  return read_stream(max_bytes, [this](std::span<std::byte> into) { return read_data(into); });
}

std::stop_token Request::stop_token() const noexcept { return exchange_.stop_token(); }

StopReason Request::stop_reason() const noexcept { return exchange_.stop_reason(); }

bool Request::wait_for(std::chrono::steady_clock::duration duration) {
  return exchange_.wait_for(duration);
}

}  // namespace fcgimux
