// SPDX-License-Identifier: MIT
#include <fmt/format.h>

#include <iterator>

#include "fcgimux/http.hpp"

namespace fcgimux::http {

namespace {

bool has_line_break(std::string_view text) noexcept {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

// Calls `line` with each line of `text`, split at LF, CRLF or CR (HTML §9.2.5: the stream's
// end-of-line forms); a text ending with a break has an empty last line.
template <class Line>
void for_each_line(std::string_view text, Line line) {
  for (;;) {
    const std::size_t end = text.find_first_of("\r\n");
    if (end == std::string_view::npos) return line(text);
    line(text.substr(0, end));
    const std::size_t next = text.compare(end, 2, "\r\n") == 0 ? end + 2 : end + 1;
    text.remove_prefix(next);
  }
}

}  // namespace

bool append_sse_event(std::string& out, const SseEvent& event) {
  if (has_line_break(event.event) || has_line_break(event.id) ||
      event.id.find('\0') != std::string_view::npos) {
    return false;
  }
  // HTML §9.2.6: "field: value" lines; one space after the colon is dropped by the parser.
  if (!event.id.empty()) out.append("id: ").append(event.id).append("\n");
  if (!event.event.empty()) out.append("event: ").append(event.event).append("\n");
  if (event.retry.count() > 0) {
    fmt::format_to(std::back_inserter(out), "retry: {}\n", event.retry.count());
  }
  for_each_line(event.data,
                [&out](std::string_view line) { out.append("data: ").append(line).append("\n"); });
  out.append("\n");
  return true;
}

void append_sse_comment(std::string& out, std::string_view text) {
  for_each_line(text, [&out](std::string_view line) { out.append(": ").append(line).append("\n"); });
}

}  // namespace fcgimux::http
