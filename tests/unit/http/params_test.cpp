// SPDX-License-Identifier: MIT
// The request from its CGI params: lib/http/params.cpp.

#include <catch2/catch.hpp>
#include <iterator>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

using protocol::NameValue;

// What nginx's fastcgi_params sends for "POST /up%2Fload?a=1&b=2 HTTP/1.1", plus the request
// headers it passes as HTTP_* (nginx sends HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH too).
const std::vector<NameValue> kNginx{
    {"QUERY_STRING", "a=1&b=2"},
    {"REQUEST_METHOD", "POST"},
    {"CONTENT_TYPE", "application/x-www-form-urlencoded"},
    {"CONTENT_LENGTH", "7"},
    {"SCRIPT_NAME", "/up/load"},
    {"REQUEST_URI", "/up%2Fload?a=1&b=2"},
    {"DOCUMENT_URI", "/up/load"},
    {"SERVER_PROTOCOL", "HTTP/1.1"},
    {"HTTP_HOST", "example.com"},
    {"HTTP_USER_AGENT", "curl/7.88.1"},
    {"HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"},
    {"HTTP_CONTENT_LENGTH", "7"},
    {"HTTP_X_FORWARDED_FOR", "192.0.2.1"},
    {"HTTP_", "not a header: no name"},
};

TEST_CASE("method, path and query come from REQUEST_METHOD, REQUEST_URI and QUERY_STRING",
          "[http]") {
  CHECK(method(kNginx) == "POST");
  CHECK(raw_path(kNginx) == "/up%2Fload");
  CHECK(path(kNginx) == "/up/load");
  CHECK(query(kNginx) == "a=1&b=2");
}

TEST_CASE("the raw path ends at the first '?' or '#' and keeps its percent-encoding", "[http]") {
  const auto raw_path_of = [](std::string_view uri) {
    const std::vector<NameValue> params{{"REQUEST_URI", uri}};
    return std::string(raw_path(params));
  };
  CHECK(raw_path_of("/") == "/");
  CHECK(raw_path_of("/a/b") == "/a/b");
  CHECK(raw_path_of("/a?") == "/a");
  CHECK(raw_path_of("/a?b?c") == "/a");
  CHECK(raw_path_of("/a#frag?x") == "/a");
  CHECK(raw_path_of("/a%3Fb") == "/a%3Fb");
  CHECK(raw_path_of("") == "");
}

TEST_CASE("the path is the raw path percent-decoded, and nothing when an escape is malformed",
          "[http]") {
  const auto path_of = [](std::string_view uri) {
    const std::vector<NameValue> params{{"REQUEST_URI", uri}};
    return path(params);
  };
  CHECK(path_of("/items/%31") == "/items/1");
  CHECK(path_of("/it%65ms/1?q=%31") == "/items/1");
  CHECK(path_of("/a%2Fb") == "/a/b");
  CHECK(path_of("/a+b%20c") == "/a+b c");
  CHECK(path_of("/a/../b/") == "/a/../b/");
  CHECK(path_of("/%00") == std::string("/\0", 2));
  CHECK(path_of("/a%") == std::nullopt);
  CHECK(path_of("/a%4") == std::nullopt);
  CHECK(path_of("/a%zz") == std::nullopt);
  CHECK(path_of("") == "");
}

TEST_CASE("missing request params read as empty", "[http]") {
  const std::vector<NameValue> none;
  CHECK(method(none).empty());
  CHECK(raw_path(none).empty());
  CHECK(path(none) == "");
  CHECK(query(none).empty());
  CHECK_FALSE(header(none, "Host"));
  CHECK(headers(none).begin() == headers(none).end());
}

TEST_CASE("a header is found by its HTTP name in any case", "[http]") {
  CHECK(header(kNginx, "Host") == "example.com");
  CHECK(header(kNginx, "host") == "example.com");
  CHECK(header(kNginx, "USER-AGENT") == "curl/7.88.1");
  CHECK(header(kNginx, "X-Forwarded-For") == "192.0.2.1");
  CHECK_FALSE(header(kNginx, "Accept"));
  CHECK_FALSE(header(kNginx, ""));
  CHECK_FALSE(header(kNginx, "Forwarded-For"));
}

// RFC 3875 §4.1.2, §4.1.3: the body's type and length have their own meta-variables.
TEST_CASE("Content-Type and Content-Length come from CONTENT_TYPE and CONTENT_LENGTH", "[http]") {
  const std::vector<NameValue> params{
      {"HTTP_CONTENT_TYPE", "forged"}, {"CONTENT_TYPE", "text/plain"}, {"CONTENT_LENGTH", "42"}};
  CHECK(header(params, "Content-Type") == "text/plain");
  CHECK(header(params, "content-length") == "42");
  const std::vector<NameValue> only_http{{"HTTP_CONTENT_TYPE", "text/plain"}};
  CHECK_FALSE(header(only_http, "Content-Type"));
}

// RFC 3875 §4.1.18: "-" becomes "_" in meta-variable names, so both spellings find one param.
TEST_CASE("CGI header names cannot tell '-' from '_'", "[http]") {
  CHECK(header(kNginx, "x_forwarded_for") == "192.0.2.1");
  CHECK(header(kNginx, "Content_Type") == "application/x-www-form-urlencoded");
}

TEST_CASE("a header name is not matched by a param that merely resembles it", "[http]") {
  const std::vector<NameValue> params{{"HOST", "no prefix"},
                                      {"HTTP_HOSTS", "longer"},
                                      {"http_host", "lower case"},
                                      {"HTTP_HOS", "shorter"}};
  CHECK_FALSE(header(params, "Host"));
}

TEST_CASE("the first of repeated header params wins", "[http]") {
  const std::vector<NameValue> params{{"HTTP_ACCEPT", "a"}, {"HTTP_ACCEPT", "b"}};
  CHECK(header(params, "Accept") == "a");
}

TEST_CASE("headers() lists the header params in order without the HTTP_CONTENT_* repeats",
          "[http]") {
  std::vector<Header> listed;
  for (const Header& h : headers(kNginx)) listed.push_back(h);
  CHECK(listed == std::vector<Header>{{"CONTENT_TYPE", "application/x-www-form-urlencoded"},
                                      {"CONTENT_LENGTH", "7"},
                                      {"HTTP_HOST", "example.com"},
                                      {"HTTP_USER_AGENT", "curl/7.88.1"},
                                      {"HTTP_X_FORWARDED_FOR", "192.0.2.1"}});
}

TEST_CASE("a header's name is rebuilt in the usual spelling", "[http]") {
  CHECK(Header{"CONTENT_TYPE", ""}.name() == "Content-Type");
  CHECK(Header{"CONTENT_LENGTH", ""}.name() == "Content-Length");
  CHECK(Header{"HTTP_USER_AGENT", ""}.name() == "User-Agent");
  CHECK(Header{"HTTP_X_FORWARDED_FOR", ""}.name() == "X-Forwarded-For");
  CHECK(Header{"HTTP_DNT", ""}.name() == "Dnt");
  CHECK(Header{"HTTP_A__B_", ""}.name() == "A--B-");
}

TEST_CASE("headers() is a forward range usable with the standard algorithms", "[http]") {
  STATIC_REQUIRE(std::ranges::forward_range<HeaderRange>);
  const auto range = headers(kNginx);
  CHECK(std::ranges::distance(range) == 5);
  auto it = range.begin();
  const auto before = it++;
  CHECK((*before).param == "CONTENT_TYPE");
  CHECK((*it).param == "CONTENT_LENGTH");
  const auto host = std::ranges::find(range, "example.com", &Header::value);
  REQUIRE(host != range.end());
  CHECK((*host).name() == "Host");
}

TEST_CASE("headers() of params with no header is empty", "[http]") {
  const std::vector<NameValue> params{{"REQUEST_METHOD", "GET"}, {"HTTP_", "x"}};
  CHECK(std::ranges::distance(headers(params)) == 0);
}

}  // namespace
}  // namespace fcgimux::http
