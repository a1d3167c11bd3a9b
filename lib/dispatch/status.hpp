// SPDX-License-Identifier: MIT
#pragma once

#include <string_view>

namespace fcgimux::dispatch {

// The reason phrase of an HTTP status code ("OK" for 200), or "" when the code has none
// registered.
std::string_view reason_phrase(int code) noexcept;

}  // namespace fcgimux::dispatch
