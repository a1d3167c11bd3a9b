// SPDX-License-Identifier: MIT
// The response helpers over a Response: lib/http/response.cpp. Each runs a handler on a real
// Response and checks the CGI response it wrote to FCGI_STDOUT (FastCGI 1.0 §6.2).

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "exchange_runner.hpp"
#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

using test::run_handler;

TEST_CASE("redirect sets a redirection status and a Location header", "[http]") {
  const int code = GENERATE(301, 302, 303, 307, 308);
  bool redirected = false;
  const auto out = run_handler({}, [&](Request&, Response& response) {
    redirected = redirect(response, code, "/next?a=1");
  });
  CHECK(redirected);
  CHECK(out == "Status: " + std::to_string(code) + " " + std::string(reason_phrase(code)) +
                   "\r\nLocation: /next?a=1\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("redirect refuses another status or a bad location and changes nothing", "[http]") {
  struct Case {
    int code;
    std::string_view location;
  };
  const auto c =
      GENERATE(Case{200, "/x"}, Case{300, "/x"}, Case{304, "/x"}, Case{305, "/x"}, Case{404, "/x"},
               Case{302, ""}, Case{302, "/x\r\nSet-Cookie: a=1"}, Case{302, "/x\n"},
               Case{302, std::string_view("/\0", 2)}, Case{302, "/\x7f"});
  bool redirected = true;
  const auto out = run_handler({}, [&](Request&, Response& response) {
    redirected = redirect(response, c.code, c.location);
  });
  CHECK_FALSE(redirected);
  CHECK(out == "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("set_cookie adds a Set-Cookie header, and nothing for a bad cookie", "[http]") {
  Error good = Error::None;
  Error bad = Error::None;
  const auto out = run_handler({}, [&](Request&, Response& response) {
    good = set_cookie(response, {.name = "sid", .value = "x1", .path = "/", .http_only = true});
    bad = set_cookie(response, {.name = "a", .value = "1\r\nX-Forged: 1"});
    set_cookie(response, {.name = "b", .value = "2"});
  });
  CHECK(good == Error::None);
  CHECK(bad == Error::BadCookieValue);
  CHECK(out ==
        "Status: 200 OK\r\nSet-Cookie: sid=x1; Path=/; HttpOnly\r\nSet-Cookie: b=2\r\n"
        "Content-Length: 0\r\n\r\n");
}

TEST_CASE("send answers with a status, a Content-Type and a body", "[http]") {
  const auto out = run_handler({}, [&](Request&, Response& response) {
    response.header("Location", "/items/7");
    send(response, 201, "application/json", R"({"id":7})");
  });
  CHECK(out ==
        "Status: 201 Created\r\nLocation: /items/7\r\nContent-Type: application/json\r\n"
        "Content-Length: 8\r\n\r\n"
        R"({"id":7})");
}

TEST_CASE("send with an empty content type adds no Content-Type", "[http]") {
  const auto out =
      run_handler({}, [&](Request&, Response& response) { send(response, 204, "", ""); });
  CHECK(out == "Status: 204 No Content\r\n\r\n");
}

TEST_CASE("send does nothing once the header block has gone out", "[http]") {
  const auto out = run_handler({}, [&](Request&, Response& response) {
    response.write("body");
    send(response, 500, "text/plain", "late");
  });
  CHECK(out == "Status: 200 OK\r\nContent-Length: 4\r\n\r\nbody");
}

TEST_CASE("send_status answers with a status line and a short plain-text body", "[http]") {
  const auto out =
      run_handler({}, [&](Request&, Response& response) { send_status(response, 404); });
  CHECK(out ==
        "Status: 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 14\r\n\r\n404 Not Found\n");
}

TEST_CASE("send_status in JSON answers with the status and its reason as a JSON object", "[http]") {
  const auto out = run_handler(
      {}, [&](Request&, Response& response) { send_status(response, 404, StatusBody::Json); });
  CHECK(out ==
        "Status: 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n"
        R"({"status":404,"error":"Not Found"})");
}

TEST_CASE("send_status of a code without a reason phrase writes the code alone", "[http]") {
  const auto text =
      run_handler({}, [&](Request&, Response& response) { send_status(response, 299); });
  CHECK(text ==
        "Status: 299\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n\r\n"
        "299\n");
  const auto json = run_handler(
      {}, [&](Request&, Response& response) { send_status(response, 299, StatusBody::Json); });
  CHECK(json ==
        "Status: 299\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
        R"({"status":299,"error":""})");
}

TEST_CASE("send_status of 204 or 304 sets the status and writes no body", "[http]") {
  const int code = GENERATE(204, 304);
  const auto out = run_handler(
      {}, [&](Request&, Response& response) { send_status(response, code, StatusBody::Json); });
  CHECK(out ==
        "Status: " + std::to_string(code) + " " + std::string(reason_phrase(code)) + "\r\n\r\n");
}

TEST_CASE("send_status does nothing once the header block has gone out", "[http]") {
  const auto out = run_handler({}, [&](Request&, Response& response) {
    response.write("body");
    send_status(response, 500);
  });
  CHECK(out == "Status: 200 OK\r\nContent-Length: 4\r\n\r\nbody");
}

}  // namespace
}  // namespace fcgimux::http
