// SPDX-License-Identifier: MIT
#include "fcgimux/response.hpp"

#include "dispatch/exchange.hpp"

namespace fcgimux {

void Response::status(int code) { exchange_.set_status(code); }

void Response::header(std::string_view name, std::string_view value) {
  exchange_.add_header(name, value);
}

bool Response::headers_sent() const noexcept { return exchange_.headers_sent(); }

void Response::write(std::string_view bytes) { exchange_.write(std::as_bytes(std::span(bytes))); }

void Response::write(std::span<const std::byte> bytes) { exchange_.write(bytes); }

void Response::flush() { exchange_.flush(); }

void Response::log_error(std::string_view line) { exchange_.log_error(line); }

void Response::app_status(std::uint32_t status) noexcept { exchange_.set_app_status(status); }

}  // namespace fcgimux
