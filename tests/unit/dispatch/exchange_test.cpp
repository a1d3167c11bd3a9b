// SPDX-License-Identifier: MIT
// A response as the exchange writes it: lib/dispatch/exchange.cpp. Each case runs a handler on
// a real Response and checks the CGI response on FCGI_STDOUT (FastCGI 1.0 §6.2).

#include <catch2/catch.hpp>
#include <string>

#include "exchange_runner.hpp"
#include "fcgimux/response.hpp"

namespace fcgimux::dispatch {
namespace {

using test::run_handler;

TEST_CASE("a response left whole in the buffer gets its Content-Length", "[dispatch]") {
  CHECK(
      run_handler({}, [](Request&, Response& response) {
        response.header("Content-Type", "text/plain");
        response.write("hello");
        response.write(", world");
      }) == "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello, world");
  CHECK(run_handler({}, [](Request&, Response& response) { response.status(404); }) ==
        "Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("a Content-Length or Transfer-Encoding the handler set is left alone", "[dispatch]") {
  const std::string name = GENERATE("Content-Length", "content-length", "Transfer-Encoding");
  const std::string value = name == "Transfer-Encoding" ? "identity" : "3";
  CHECK(run_handler({}, [&](Request&, Response& response) {
          response.header(name, value);
          response.write("abc");
        }) == "Status: 200 OK\r\n" + name + ": " + value + "\r\n\r\nabc");
}

TEST_CASE("1xx, 204 and 304 responses get no Content-Length", "[dispatch]") {
  const int code = GENERATE(103, 204, 304);
  const std::string out =
      run_handler({}, [&](Request&, Response& response) { response.status(code); });
  CAPTURE(out);
  CHECK(out.find("Content-Length") == std::string::npos);
}

TEST_CASE("an answer to HEAD gets no Content-Length: it would be the GET body's", "[dispatch]") {
  CHECK(run_handler({{"REQUEST_METHOD", "HEAD"}}, [](Request&, Response& response) {
          response.header("Content-Type", "text/plain");
        }) == "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n");
}

TEST_CASE("a response flushed, or larger than a record, gets no Content-Length", "[dispatch]") {
  CHECK(run_handler({}, [](Request&, Response& response) {
          response.write("part one, ");
          response.flush();
          response.write("part two");
        }) == "Status: 200 OK\r\n\r\npart one, part two");
  const std::string body(70'000, 'x');
  CHECK(run_handler({}, [&](Request&, Response& response) { response.write(body); }) ==
        "Status: 200 OK\r\n\r\n" + body);
}

TEST_CASE("a header block larger than a record goes out whole, in several records", "[dispatch]") {
  const std::string value(70'000, 'v');
  CHECK(run_handler({}, [&](Request&, Response& response) {
          response.header("X-Large", value);
          response.write("body");
        }) == "Status: 200 OK\r\nX-Large: " + value + "\r\n\r\nbody");
  // Left whole in the buffer, it still gets its length, past the record's size.
  CHECK(run_handler({}, [&](Request&, Response& response) { response.header("X-Large", value); }) ==
        "Status: 200 OK\r\nX-Large: " + value + "\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace fcgimux::dispatch
