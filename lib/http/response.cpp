// SPDX-License-Identifier: MIT
// The response helpers over a Response.

#include "fcgimux/response.hpp"

#include <algorithm>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"
#include "http/server_response.hpp"

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

void send(Response& response, int status, std::string_view content_type, std::string_view body) {
  if (response.headers_sent()) return;
  response.status(status);
  if (!content_type.empty()) response.header("Content-Type", content_type);
  response.write(body);
}

void send_status(Response& response, int code, StatusBody body) {
  // RFC 9110 §15.2, §15.3.5, §15.4.5: 1xx, 204 and 304 responses carry no content.
  if ((code >= 100 && code < 200) || code == 204 || code == 304) {
    if (!response.headers_sent()) response.status(code);
    return;
  }
  const std::string_view reason = reason_phrase(code);
  std::string text;
  if (body == StatusBody::Json) {
    // Reason phrases are plain ASCII without '"' or '\\': nothing to escape.
    text.append(R"({"status":)").append(std::to_string(code)).append(R"(,"error":")");
    text.append(reason).append(R"("})");
    send(response, code, "application/json", text);
    return;
  }
  // The same body as the answers the server writes itself.
  append_status_line(text, code);
  text.push_back('\n');
  send(response, code, "text/plain; charset=utf-8", text);
}

void sse_headers(Response& response) {
  response.header("Content-Type", "text/event-stream");
  response.header("Cache-Control", "no-cache");
  response.header("X-Accel-Buffering", "no");
}

}  // namespace fcgimux::http
