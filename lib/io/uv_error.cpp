// SPDX-License-Identifier: MIT
#include "io/uv_error.hpp"

#include <uv.h>

namespace fcgimux::io {

namespace {

class UvCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "libuv"; }
  std::string message(int code) const override { return uv_strerror(code); }
};

}  // namespace

const std::error_category& uv_category() noexcept {
  static const UvCategory category;
  return category;
}

}  // namespace fcgimux::io
