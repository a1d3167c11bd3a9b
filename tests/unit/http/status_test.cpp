// SPDX-License-Identifier: MIT
// Reason phrases: lib/http/status.cpp.

#include <catch2/catch.hpp>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

// RFC 9110 §15.
TEST_CASE("a registered status code has its RFC 9110 reason phrase", "[http]") {
  CHECK(reason_phrase(100) == "Continue");
  CHECK(reason_phrase(200) == "OK");
  CHECK(reason_phrase(204) == "No Content");
  CHECK(reason_phrase(301) == "Moved Permanently");
  CHECK(reason_phrase(303) == "See Other");
  CHECK(reason_phrase(308) == "Permanent Redirect");
  CHECK(reason_phrase(404) == "Not Found");
  CHECK(reason_phrase(413) == "Content Too Large");
  CHECK(reason_phrase(422) == "Unprocessable Content");
  CHECK(reason_phrase(429) == "Too Many Requests");
  CHECK(reason_phrase(500) == "Internal Server Error");
  CHECK(reason_phrase(503) == "Service Unavailable");
  CHECK(reason_phrase(511) == "Network Authentication Required");
}

TEST_CASE("a code without a registered reason phrase has an empty one", "[http]") {
  const int code = GENERATE(-1, 0, 99, 199, 299, 306, 418, 599, 600, 1000);
  CHECK(reason_phrase(code).empty());
}

}  // namespace
}  // namespace fcgimux::http
