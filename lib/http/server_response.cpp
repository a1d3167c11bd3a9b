// SPDX-License-Identifier: MIT
#include "http/server_response.hpp"

#include <charconv>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {

void append_status_line(std::string& out, int status) {
  char digits[16];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, status);
  out.append(digits, end);
  if (const std::string_view reason = reason_phrase(status); !reason.empty()) {
    out.append(" ").append(reason);
  }
}

std::string server_response(int status) {
  std::string line;
  append_status_line(line, status);
  std::string response = "Status: " + line + "\r\nContent-Type: text/plain; charset=utf-8\r\n";
  // RFC 9110 §10.2.3: tells the client when an overloaded or stopping server may take it.
  if (status == 503) response += "Retry-After: 1\r\n";
  response.append("Content-Length: ").append(std::to_string(line.size() + 1)).append("\r\n");
  response.append("\r\n").append(line).append("\n");
  return response;
}

}  // namespace fcgimux::http
