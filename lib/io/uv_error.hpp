// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <system_error>

namespace fcgimux::io {

// The error_category of libuv's (negative) error codes; messages come from uv_strerror().
const std::error_category& uv_category() noexcept;

// A std::system_error for libuv error `code`, prefixed with `what` (e.g. "bind tcp:...").
inline std::system_error uv_error(int code, const std::string& what) {
  return std::system_error(code, uv_category(), what);
}

}  // namespace fcgimux::io
