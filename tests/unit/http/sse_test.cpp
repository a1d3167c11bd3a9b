// SPDX-License-Identifier: MIT
// Server-sent events in the text/event-stream format (HTML Living Standard §9.2.6), as wire
// bytes.

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;

std::string event_text(const SseEvent& event) {
  std::string out;
  REQUIRE(append_sse_event(out, event));
  return out;
}

TEST_CASE("an SSE event has its fields in order, then its data, then a blank line", "[http]") {
  CHECK(event_text({.data = "7 of 9", .event = "tick", .id = "7", .retry = 3000ms}) ==
        "id: 7\nevent: tick\nretry: 3000\ndata: 7 of 9\n\n");
  CHECK(event_text({.data = "hello"}) == "data: hello\n\n");
  // An empty data field still goes out: the event is the client's to drop.
  CHECK(event_text({.event = "ping"}) == "event: ping\ndata: \n\n");
}

TEST_CASE("SSE data with line breaks goes out as one data line per line", "[http]") {
  CHECK(event_text({.data = "a\nb\r\nc\rd"}) == "data: a\ndata: b\ndata: c\ndata: d\n\n");
  // A trailing break is an empty last line: the client's data then ends with LF.
  CHECK(event_text({.data = "a\n"}) == "data: a\ndata: \n\n");
  // A leading space survives: the parser drops only the one after the colon.
  CHECK(event_text({.data = " x"}) == "data:  x\n\n");
}

TEST_CASE("an SSE event or id that would forge fields is refused, appending nothing", "[http]") {
  std::string out = "kept";
  CHECK_FALSE(append_sse_event(out, {.data = "d", .event = "a\nid: 9"}));
  CHECK_FALSE(append_sse_event(out, {.data = "d", .id = "1\r"}));
  CHECK_FALSE(append_sse_event(out, {.data = "d", .id = "1\0"sv}));
  CHECK(out == "kept");
}

TEST_CASE("an SSE comment is a colon line per line of its text", "[http]") {
  std::string out;
  append_sse_comment(out, "keep-alive");
  CHECK(out == ": keep-alive\n");
  out.clear();
  append_sse_comment(out, "a\nb");
  CHECK(out == ": a\n: b\n");
}

}  // namespace
}  // namespace fcgimux::http
