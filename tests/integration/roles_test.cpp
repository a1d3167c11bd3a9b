// SPDX-License-Identifier: MIT
// The three roles of FastCGI 1.0 §6: an Authorizer gets the params alone, a Filter gets its
// body and then the FCGI_DATA stream, and a role the application does not play (switched off in
// Config::roles, or no role at all) is answered FCGI_UNKNOWN_ROLE. Then the two role examples,
// examples/authorizer.cpp and examples/filter.cpp, as the programs they are.

#include <fmt/core.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bytes.hpp"
#include "child_process.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

using protocol::ProtocolStatus;
using protocol::RecordType;

std::string begin_request(std::uint16_t id, std::uint16_t role) {
  std::string out;
  protocol::append_begin_request(out, id, role, protocol::kKeepConn);
  return out;
}

std::string begin_request(std::uint16_t id, Role role) {
  return begin_request(id, static_cast<std::uint16_t>(role));
}

bool complete(const Response& response) {
  return response.out_ended && response.end &&
         response.end->protocol_status == ProtocolStatus::RequestComplete;
}

// Sends a Responder request without a body as request `id` and checks the echo of its params.
void check_responder_served(FcgiClient& client, std::uint16_t id) {
  const Params params{{"QUERY_STRING", ""}, {"REQUEST_ID", std::to_string(id)}};
  RequestOptions options;
  options.id = id;
  const Response response = client.request(params, {}, options);
  REQUIRE(complete(response));
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

// Sends `wire` and collects the one response it asks for, as request `id`.
Response exchange(FcgiClient& client, const std::string& wire, std::uint16_t id) {
  client.send_raw(wire);
  const std::vector<std::uint16_t> ids{id};
  return client.collect(ids).by_id.at(id);
}

TEST_CASE("an Authorizer request of params alone is answered 200 with the params listing",
          "[integration][roles]") {
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  const Params params{{"QUERY_STRING", ""},
                      {"REQUEST_METHOD", "GET"},
                      {"REQUEST_URI", "/private/report.pdf"},
                      {"HTTP_AUTHORIZATION", "Basic YWxpY2U6d29uZGVyIGxhbmQ6MQ=="}};
  // FastCGI 1.0 §6.3 sends an Authorizer no body; mod_authnz_fcgi sends not even the empty
  // FCGI_STDIN record, lighttpd does. Either way the handler must not wait for one.
  const bool empty_stdin = GENERATE(false, true);
  CAPTURE(empty_stdin);

  for (const std::uint16_t id : {std::uint16_t{1}, std::uint16_t{2}}) {
    std::string wire = begin_request(id, Role::Authorizer);
    append_stream(wire, RecordType::Params, id, encode_params(params),
                  {.record_sizes = {13}, .padding = std::nullopt});
    if (empty_stdin) append_stream(wire, RecordType::Stdin, id, {});
    const Response response = exchange(client, wire, id);
    REQUIRE(complete(response));
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.status == 200);
    CHECK(cgi.body == expected_listing(params));
  }
  server.stop();
}

TEST_CASE("a Filter request gets its STDIN bytes followed by its FCGI_DATA bytes, in any records",
          "[integration][roles]") {
  const std::size_t body_size = GENERATE(as<std::size_t>{}, 0, 1, 10'000);
  // Past request_body_budget (256 KiB), so that reading the data stream is flow-controlled too.
  const std::size_t data_size = GENERATE(as<std::size_t>{}, 0, 1, 300'001);
  CAPTURE(body_size, data_size);
  echo::EchoHandler handler;
  TestServer server(handler);
  FcgiClient client(server.endpoint());
  const std::string body = pattern(body_size, 3);
  const std::string data = pattern(data_size, 4);

  std::string wire = begin_request(7, Role::Filter);
  append_stream(wire, RecordType::Params, 7,
                encode_params({{"QUERY_STRING", ""},
                               {"FCGI_DATA_LENGTH", std::to_string(data_size)},
                               {"FCGI_DATA_LAST_MOD", "784111777"}}),
                {.record_sizes = {5, 3}, .padding = std::nullopt});
  append_stream(wire, RecordType::Stdin, 7, body,
                {.record_sizes = {1, 7, 13, 4093}, .padding = std::nullopt});
  append_stream(wire, RecordType::Data, 7, data,
                {.record_sizes = {11, 3, 65535}, .padding = std::uint8_t{255}});
  const Response response = exchange(client, wire, 7);
  REQUIRE(complete(response));
  const CgiResponse cgi = parse_cgi_response(response.out);
  CHECK(cgi.status == 200);
  CHECK(cgi.body.size() == body.size() + data.size());
  CHECK(first_mismatch(cgi.body, body + data) == std::string::npos);
  server.stop();
}

TEST_CASE("roles switched off in Config are answered FCGI_UNKNOWN_ROLE and the connection goes on",
          "[integration][roles]") {
  const Role served = GENERATE(Role::Responder, Role::Authorizer, Role::Filter);
  CAPTURE(served);
  echo::EchoHandler handler;
  LogCapture log;
  Config config = test_config();
  config.roles = {served};
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  std::uint16_t id = 1;
  for (const Role role : {Role::Responder, Role::Authorizer, Role::Filter}) {
    CAPTURE(role);
    std::string wire = begin_request(id, role);
    append_stream(wire, RecordType::Params, id, encode_params({{"QUERY_STRING", ""}}));
    append_stream(wire, RecordType::Stdin, id, "body");
    if (role == Role::Filter) append_stream(wire, RecordType::Data, id, "data");
    const Response response = exchange(client, wire, id);
    REQUIRE(response.end.has_value());
    if (role == served) {
      CHECK(complete(response));
    } else {
      // FastCGI 1.0 §5.5: END_REQUEST with FCGI_UNKNOWN_ROLE and nothing else.
      CHECK(response.end->protocol_status == ProtocolStatus::UnknownRole);
      CHECK(response.out.empty());
    }
    ++id;
  }
  CHECK(server.server().stats().requests_refused == 2);
  CHECK(log.contains(LogLevel::Warning, "not served"));
  if (served == Role::Responder) check_responder_served(client, id);
  server.stop();
}

TEST_CASE("a role number the specification does not define is answered FCGI_UNKNOWN_ROLE",
          "[integration][roles]") {
  const auto role = GENERATE(as<std::uint16_t>{}, 0, 4, 256, 65535);
  CAPTURE(role);
  echo::EchoHandler handler;
  LogCapture log;
  Config config = test_config();
  config.log = log.sink();
  TestServer server(handler, config);
  FcgiClient client(server.endpoint());

  std::string wire = begin_request(1, role);
  append_stream(wire, RecordType::Params, 1, encode_params({{"QUERY_STRING", ""}}));
  append_stream(wire, RecordType::Stdin, 1, {});
  const Response response = exchange(client, wire, 1);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::UnknownRole);
  CHECK(response.out.empty());
  check_responder_served(client, 1);
  server.stop();
}

// --- examples/authorizer.cpp ---------------------------------------------------------------------

// The authorizer example, started with a users file of three entries, on an ephemeral port.
class AuthorizerExample {
 public:
  AuthorizerExample() {
    std::ofstream(users_path()) << "# fcgimux test users\n"
                                   "basic:alice:wonder land:1\n"
                                   "\n"
                                   "basic:carol:pw\n"
                                   "bearer:robot:t0ken-of-the-robot\n";
    process_.emplace(std::vector<std::string>{FCGIMUX_AUTHORIZER_BINARY, "--users", users_path(),
                                              "--listen", "tcp:127.0.0.1:0"});
    address_ = announced_address(*process_);
  }

  // Sends an Authorizer request with `authorization` as its Authorization header (none when
  // empty) and returns the CGI response.
  CgiResponse authorize(std::string_view authorization) {
    FcgiClient client(address_);
    Params params{{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/private/"}};
    if (!authorization.empty()) params.emplace_back("HTTP_AUTHORIZATION", authorization);
    std::string wire = begin_request(1, Role::Authorizer);
    append_stream(wire, RecordType::Params, 1, encode_params(params));
    const Response response = exchange(client, wire, 1);
    REQUIRE(complete(response));
    return parse_cgi_response(response.out);
  }

  const std::string& address() const { return address_; }
  ChildProcess& process() { return *process_; }

 private:
  std::string users_path() const { return (dir_.path() / "users").string(); }

  TempDir dir_;
  std::optional<ChildProcess> process_;
  std::string address_;
};

TEST_CASE("the authorizer example lets listed credentials through with Variable-AUTH_USER",
          "[integration][roles]") {
  // Basic credentials whose base64 ends in two, one and no '=' (RFC 4648 §4), and a token.
  const auto [authorization, user] =
      GENERATE(table<std::string, std::string>({{"Basic YWxpY2U6d29uZGVyIGxhbmQ6MQ==", "alice"},
                                                {"Basic Y2Fyb2w6cHc=", "carol"},
                                                {"Bearer t0ken-of-the-robot", "robot"}}));
  CAPTURE(authorization);
  AuthorizerExample authorizer;
  const CgiResponse response = authorizer.authorize(authorization);
  CHECK(response.status == 200);
  // FastCGI 1.0 §6.3: a Variable-NAME header hands NAME on to the web server.
  CHECK(response.header("Variable-AUTH_USER") == user);
  CHECK_FALSE(response.header("WWW-Authenticate").has_value());
  authorizer.process().signal(SIGTERM);
  CHECK(authorizer.process().wait() == 0);
}

TEST_CASE("the authorizer example denies anything else with 401 and WWW-Authenticate",
          "[integration][roles]") {
  const std::string authorization =
      GENERATE(as<std::string>{},
               "",                                    // none
               "Basic YWxpY2U6d29uZGVyIGxhbmQ6Mg==",  // alice:wonder land:2
               "Basic YWxpY2U6d29uZGVy",              // alice:wonder
               "Basic ZGF2ZTpwYXNz",                  // dave:pass
               "Bearer t0ken-of-the-robo",            // a prefix
               "Bearer t0ken-of-the-robot!",          // one byte more
               "Basic t0ken-of-the-robot",            // wrong scheme
               "Bearer YWxpY2U6d29uZGVyIGxhbmQ6MQ==");
  CAPTURE(authorization);
  AuthorizerExample authorizer;
  const CgiResponse response = authorizer.authorize(authorization);
  CHECK(response.status == 401);
  CHECK(response.header("WWW-Authenticate").value_or("").starts_with("Basic realm="));
  CHECK_FALSE(response.header("Variable-AUTH_USER").has_value());
}

TEST_CASE("the authorizer example plays no other role", "[integration][roles]") {
  AuthorizerExample authorizer;
  FcgiClient client(authorizer.address());
  const Response response = client.request({{"QUERY_STRING", ""}});
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::UnknownRole);
}

TEST_CASE("the authorizer example refuses to start without a readable users file",
          "[integration][roles]") {
  const TempDir dir;
  const std::string bad = (dir.path() / "bad").string();
  std::ofstream(bad) << "plain:alice:secret\n";
  const std::vector<std::string> arguments =
      GENERATE_COPY(std::vector<std::string>{}, std::vector<std::string>{"--users"},
                    std::vector<std::string>{"--users", "/nonexistent/users"},
                    std::vector<std::string>{"--users", bad});
  CAPTURE(arguments);
  std::vector<std::string> argv{FCGIMUX_AUTHORIZER_BINARY};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  ChildProcess authorizer(argv);
  std::string output;
  while (const std::optional<std::string> line = authorizer.read_line()) output += *line + "\n";
  CHECK_THAT(output, Catch::Contains("authorizer"));
  CHECK(authorizer.wait() == 2);
}

// --- examples/filter.cpp -------------------------------------------------------------------------

// What the filter example answers for `data`: each line numbered as `cat -n` does. Written
// independently of the example, line by line rather than byte by byte.
std::string numbered(std::string_view data) {
  std::string out;
  for (std::size_t line = 1; !data.empty(); ++line) {
    const std::size_t newline = data.find('\n');
    const std::size_t end = newline == std::string_view::npos ? data.size() : newline + 1;
    out += fmt::format("{:>6}\t{}", line, data.substr(0, end));
    data.remove_prefix(end);
  }
  return out;
}

// Sends one Filter request to the filter example: `body` on STDIN, `data` on FCGI_DATA, and
// `announced` as FCGI_DATA_LENGTH.
Response filter(const std::string& address, std::string_view body, std::string_view data,
                std::size_t announced) {
  FcgiClient client(address);
  std::string wire = begin_request(1, Role::Filter);
  append_stream(wire, RecordType::Params, 1,
                encode_params({{"REQUEST_METHOD", "POST"},
                               {"CONTENT_LENGTH", std::to_string(body.size())},
                               {"FCGI_DATA_LENGTH", std::to_string(announced)},
                               {"FCGI_DATA_LAST_MOD", "784111777"}}));
  append_stream(wire, RecordType::Stdin, 1, body, {.record_sizes = {3}, .padding = std::nullopt});
  append_stream(wire, RecordType::Data, 1, data,
                {.record_sizes = {1, 5, 4099}, .padding = std::nullopt});
  return exchange(client, wire, 1);
}

TEST_CASE("the filter example numbers the lines of the FCGI_DATA file as it streams",
          "[integration][roles]") {
  ChildProcess process({FCGIMUX_FILTER_BINARY, "--listen", "tcp:127.0.0.1:0"});
  const std::string address = announced_address(process);

  SECTION("a short file whose last line has no newline") {
    const std::string data = "alpha\nbeta\n\ngamma";
    const Response response = filter(address, "form=1", data, data.size());
    REQUIRE(complete(response));
    const CgiResponse cgi = parse_cgi_response(response.out);
    CHECK(cgi.status == 200);
    // FastCGI 1.0 §6.4: FCGI_DATA_LAST_MOD is the file's mtime in seconds since the epoch.
    CHECK(cgi.header("Last-Modified") == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(cgi.body == "     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma");
    CHECK(response.end->app_status == 0);
  }
  SECTION("a 1 MiB file of random lines in odd record sizes") {
    std::string data = pattern(1024 * 1024, 9);
    for (std::size_t i = 0; i < data.size(); i += 1 + static_cast<unsigned char>(data[i]) % 97u) {
      data[i] = '\n';
    }
    const Response response = filter(address, {}, data, data.size());
    REQUIRE(complete(response));
    const std::string body = parse_cgi_response(response.out).body;
    CHECK(first_mismatch(body, numbered(data)) == std::string::npos);
  }
  SECTION("a file shorter than FCGI_DATA_LENGTH says that data is missing") {
    const Response response = filter(address, {}, "one\ntw", 100);
    REQUIRE(complete(response));
    CHECK(parse_cgi_response(response.out).body ==
          "     1\tone\n     2\ttw\nfilter: the file ended after 6 of 100 bytes\n");
    CHECK(response.end->app_status == 1);
    CHECK_THAT(response.err, Catch::Contains("FCGI_DATA ended after 6 of 100 bytes"));
  }
  process.signal(SIGTERM);
  CHECK(process.wait() == 0);
}

TEST_CASE("the filter example plays no other role", "[integration][roles]") {
  ChildProcess process({FCGIMUX_FILTER_BINARY, "--listen", "tcp:127.0.0.1:0"});
  FcgiClient client(announced_address(process));
  const Response response = client.request({{"QUERY_STRING", ""}});
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == ProtocolStatus::UnknownRole);
}

}  // namespace
}  // namespace fcgimux::test
