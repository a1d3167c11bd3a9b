// SPDX-License-Identifier: MIT
// The response helpers over a Response.

#include "fcgimux/response.hpp"

#include <algorithm>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {

bool redirect(Response& response, int code, std::string_view location) {
  // RFC 9110 §15.4: the redirections that carry a Location (300 and 304 do not, 305 and 306
  // are deprecated).
  const bool redirection = code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
  if (!redirection || location.empty() || std::ranges::any_of(location, ascii::is_ctl)) {
    return false;
  }
  response.status(code);
  response.header("Location", location);
  return true;
}

Error set_cookie(Response& response, const SetCookie& cookie) {
  std::string value;
  if (const Error error = append_set_cookie(value, cookie); error != Error::None) return error;
  response.header("Set-Cookie", value);
  return Error::None;
}

bool send_status(Response& response, int code) {
  if (response.headers_sent()) return false;
  response.status(code);
  response.header("Content-Type", "text/plain; charset=utf-8");
  std::string body = std::to_string(code);
  if (const std::string_view reason = reason_phrase(code); !reason.empty()) {
    body.append(" ").append(reason);
  }
  body.push_back('\n');
  response.write(body);
  return true;
}

}  // namespace fcgimux::http
