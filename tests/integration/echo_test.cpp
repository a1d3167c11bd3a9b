// SPDX-License-Identifier: MIT
// The echo contract (examples/echo_handler.hpp) served by a real Server: params, bodies and
// downloads arrive intact however the client cuts and pads its records.

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "bytes.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "test_server.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;

constexpr std::size_t kMiB = 1024 * 1024;

// Checks what every complete response has: the end of its stdout stream, then END_REQUEST
// with FCGI_REQUEST_COMPLETE and appStatus 0.
void check_complete(const Response& response) {
  CHECK(response.out_ended);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::RequestComplete);
  CHECK(response.end->app_status == 0);
}

TEST_CASE("a request without a body is answered with its params sorted by name", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  const Params params{{"SCRIPT_NAME", "/echo"},
                      {"REQUEST_METHOD", "GET"},
                      {"QUERY_STRING", ""},
                      {"HTTP_X_EMPTY", ""},
                      {"CONTENT_TYPE", "text/plain; charset=utf-8"}};
  const Response response = client.request(params);

  check_complete(response);
  CHECK(response.err.empty());
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.header("Content-Type") == "text/plain");
  CHECK(cgi.body ==
        "CONTENT_TYPE=text/plain; charset=utf-8\n"
        "HTTP_X_EMPTY=\n"
        "QUERY_STRING=\n"
        "REQUEST_METHOD=GET\n"
        "SCRIPT_NAME=/echo\n");
  server.stop();
}

TEST_CASE("long params arrive intact when PARAMS records split them anywhere, even mid-length",
          "[integration]") {
  echo::EchoHandler handler;
  Config config = test_config();
  config.max_params_bytes = 4 * kMiB;
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  // 127 and 128 are the two sides of the switch from 1-byte to 4-byte lengths (FastCGI 1.0
  // §3.4); values of 100 KiB need all four length bytes to be read right.
  const Params params{{std::string(128, 'N'), "short value"},
                      {std::string(127, 'M'), std::string(128, 'v')},
                      {"BIG_A", pattern(100 * 1024, 1)},
                      {std::string(300, 'B'), pattern(100 * 1024 + 3, 2)},
                      {"QUERY_STRING", ""}};
  const std::size_t record_size = GENERATE(as<std::size_t>{}, 1, 3, 7, 8191, 65535);
  CAPTURE(record_size);
  // With 1-byte or 3-byte records, every 4-byte length is split between records.
  RequestOptions options;
  options.params = {.record_sizes = {record_size}, .padding = 5};
  const Response response = client.request(params, {}, options);

  check_complete(response);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(first_mismatch(cgi.body, expected_listing(params)) == std::string::npos);
  server.stop();
}

TEST_CASE("request bodies are echoed intact in any record size and padding", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  const auto [body_size, record_sizes, padding] =
      GENERATE(table<std::size_t, std::vector<std::size_t>, int>({
          {0, {1}, 255},
          {1, {1}, 7},
          {1, {65535}, 255},
          {65535, {1}, 1},
          {65535, {7}, 3},
          {65535, {65535}, 1},
          {65536, {8191}, 255},
          {65536, {65535}, 1},
          {65536, {1, 7, 8191, 65535}, 9},
          {16 * kMiB, {1, 7, 8191, 65535}, 255},
          {16 * kMiB, {65535}, 1},
      }));
  CAPTURE(body_size, record_sizes, padding);
  const std::string body = pattern(body_size, static_cast<std::uint32_t>(body_size));
  const Params params{{"QUERY_STRING", ""}, {"REQUEST_METHOD", "POST"}};
  RequestOptions options;
  options.body = {.record_sizes = record_sizes, .padding = static_cast<std::uint8_t>(padding)};
  const Response response = client.request(params, body, options);

  check_complete(response);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  // An empty body reads as no body: the handler lists the params instead.
  const std::string expected = body.empty() ? expected_listing(params) : body;
  CHECK(cgi.body.size() == expected.size());
  CHECK(first_mismatch(cgi.body, expected) == std::string::npos);
  server.stop();
}

TEST_CASE("a 16 MiB response arrives intact", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  const Response response = client.request({{"QUERY_STRING", "size=16777216"}});

  check_complete(response);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body.size() == 16 * kMiB);
  CHECK(cgi.body.find_first_not_of('x') == std::string::npos);
  server.stop();
}

TEST_CASE("the status a handler sets is the status of the response", "[integration]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());

  const Response response = client.request({{"QUERY_STRING", "status=404&size=3"}});

  check_complete(response);
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 404);
  CHECK(cgi.header("Content-Type") == "text/plain");
  CHECK(cgi.body == "xxx");
  server.stop();
}

}  // namespace
}  // namespace fcgimux::test
