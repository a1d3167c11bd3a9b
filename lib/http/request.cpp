// SPDX-License-Identifier: MIT
// The request helpers over a Request: each reads Request::params().

#include "fcgimux/request.hpp"

#include <optional>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {

std::string_view method(const Request& request) noexcept { return method(request.params()); }

std::optional<std::string> path(const Request& request) { return path(request.params()); }

std::string_view raw_path(const Request& request) noexcept { return raw_path(request.params()); }

std::string_view query(const Request& request) noexcept { return query(request.params()); }

std::optional<std::string_view> header(const Request& request, std::string_view name) noexcept {
  return header(request.params(), name);
}

HeaderRange headers(const Request& request) noexcept { return headers(request.params()); }

}  // namespace fcgimux::http
