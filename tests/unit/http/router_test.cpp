// SPDX-License-Identifier: MIT
// The Router: lib/http/router.cpp. Each test routes one request, given as literal CGI params,
// through a real Request and Response, and checks the CGI response on FCGI_STDOUT.

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "exchange_runner.hpp"
#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

using test::run_handler;

// A handler that answers 200 with `name` and the segments it names, "name a=1 b=2".
RouteHandler answer(std::string name, std::vector<std::string> segment_names = {}) {
  return [name, segment_names](Request&, Response& response, const PathParams& params) {
    std::string body = name;
    for (const std::string& segment : segment_names) {
      body.append(" ").append(segment).append("=").append(params[segment]);
    }
    send(response, 200, "text/plain", body);
  };
}

// The CGI response `router` gives to `method` `uri`.
std::string route(Router& router, std::string_view method, std::string_view uri) {
  return run_handler(
      {{"REQUEST_METHOD", std::string(method)}, {"REQUEST_URI", std::string(uri)}},
      [&](Request& request, Response& response) { router.handle(request, response); });
}

// A route's answer to GET (the server adds its length) or to HEAD (it does not).
std::string ok(std::string_view body) {
  return "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}
std::string ok_head(std::string_view body) {
  return "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n" + std::string(body);
}

constexpr std::string_view kNotFound =
    "Status: 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n"
    "\r\n404 Not Found\n";

TEST_CASE("a named segment gets the percent-decoded segment of the path", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})}});
  CHECK(route(router, "GET", "/items/%31") == ok("item id=1"));
  CHECK(route(router, "GET", "/items/42?id=7") == ok("item id=42"));
  CHECK(route(router, "GET", "/items/a%20b") == ok("item id=a b"));
  CHECK(route(router, "GET", "/items/a+b") == ok("item id=a+b"));
}

TEST_CASE("literal segments match the percent-decoded path", "[http]") {
  Router router({{"GET", "/items/{id}/tags", answer("tags", {"id"})}});
  CHECK(route(router, "GET", "/it%65ms/7/t%61gs") == ok("tags id=7"));
  CHECK(route(router, "GET", "/items/7/tags") == ok("tags id=7"));
}

TEST_CASE("several named segments are each given their own value", "[http]") {
  Router router({{"GET", "/users/{user}/items/{item}", answer("x", {"user", "item", "other"})}});
  CHECK(route(router, "GET", "/users/ann/items/3") == ok("x user=ann item=3 other="));
}

TEST_CASE("a path no route matches is answered 404", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})}, {"GET", "/", answer("root")}});
  CHECK(route(router, "GET", "/") == ok("root"));
  CHECK(route(router, "GET", "/other") == kNotFound);
  CHECK(route(router, "GET", "/items") == kNotFound);
  CHECK(route(router, "GET", "/items/1/more") == kNotFound);
  CHECK(route(router, "GET", "") == kNotFound);
  CHECK(route(router, "GET", "*") == kNotFound);
  CHECK(run_handler({}, [&](Request& request, Response& response) {
          router.handle(request, response);
        }) == kNotFound);
}

TEST_CASE("a trailing slash makes another path: /items and /items/ are distinct routes", "[http]") {
  Router router({{"GET", "/items", answer("list")}, {"GET", "/dir/", answer("dir")}});
  CHECK(route(router, "GET", "/items") == ok("list"));
  CHECK(route(router, "GET", "/items/") == kNotFound);
  CHECK(route(router, "GET", "/dir/") == ok("dir"));
  CHECK(route(router, "GET", "/dir") == kNotFound);
}

TEST_CASE("empty segments are kept: a named segment never matches an empty one", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})}, {"GET", "/a", answer("a")}});
  CHECK(route(router, "GET", "/items/") == kNotFound);
  CHECK(route(router, "GET", "//a") == kNotFound);
  CHECK(route(router, "GET", "/a/") == kNotFound);
  CHECK(route(router, "GET", "/items//") == kNotFound);
}

TEST_CASE("%2F stays inside its segment: it is part of a value, never a separator", "[http]") {
  Router router({{"GET", "/files/{name}", answer("file", {"name"})},
                 {"GET", "/files/{dir}/{name}", answer("nested", {"dir", "name"})},
                 {"GET", "/a/b", answer("ab")}});
  CHECK(route(router, "GET", "/files/a%2Fb") == ok("file name=a/b"));
  CHECK(route(router, "GET", "/files/a/b") == ok("nested dir=a name=b"));
  CHECK(route(router, "GET", "/a%2Fb") == kNotFound);
  CHECK(route(router, "GET", "/a/b") == ok("ab"));
}

TEST_CASE("dot segments are ordinary segments, not normalized", "[http]") {
  Router router({{"GET", "/files/{name}", answer("file", {"name"})}});
  CHECK(route(router, "GET", "/files/..") == ok("file name=.."));
  CHECK(route(router, "GET", "/files/../etc") == kNotFound);
}

TEST_CASE("a malformed percent escape in the path is answered 400", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})}});
  const std::string bad_request =
      "Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 16\r\n\r\n400 Bad Request\n";
  CHECK(route(router, "GET", "/items/%") == bad_request);
  CHECK(route(router, "GET", "/items/%4") == bad_request);
  CHECK(route(router, "GET", "/items/%zz") == bad_request);
  CHECK(route(router, "GET", "/nowhere/%zz") == bad_request);
}

TEST_CASE("a path routes have but not with this method is answered 405 with Allow", "[http]") {
  Router router({{"PUT", "/items/{id}", answer("put")},
                 {"GET", "/items/{id}", answer("get")},
                 {"DELETE", "/items/{id}", answer("delete")},
                 {"POST", "/items", answer("post")}});
  CHECK(route(router, "POST", "/items/1") ==
        "Status: 405 Method Not Allowed\r\nAllow: DELETE, GET, HEAD, PUT\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\n"
        "405 Method Not Allowed\n");
  CHECK(route(router, "GET", "/items") ==
        "Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\n"
        "405 Method Not Allowed\n");
  CHECK(route(router, "DELETE", "/items/1") == ok("delete"));
}

TEST_CASE("methods are case-sensitive", "[http]") {
  Router router({{"GET", "/", answer("root")}});
  CHECK(route(router, "get", "/") ==
        "Status: 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\n"
        "405 Method Not Allowed\n");
}

TEST_CASE("HEAD runs the GET route unless the path has a HEAD route of its own", "[http]") {
  Router router({{"GET", "/a", answer("get a")},
                 {"GET", "/b", answer("get b")},
                 {"HEAD", "/b", answer("head b")},
                 {"POST", "/c", answer("post c")}});
  CHECK(route(router, "HEAD", "/a") == ok_head("get a"));
  CHECK(route(router, "HEAD", "/b") == ok_head("head b"));
  CHECK(route(router, "HEAD", "/c") ==
        "Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n405 Method Not Allowed\n");
  CHECK(route(router, "PUT", "/b") ==
        "Status: 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\n"
        "405 Method Not Allowed\n");
}

TEST_CASE("a literal segment wins over a named one, whichever route was given first", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})},
                 {"GET", "/items/new", answer("form")},
                 {"GET", "/{kind}/new", answer("kind", {"kind"})}});
  CHECK(route(router, "GET", "/items/new") == ok("form"));
  CHECK(route(router, "GET", "/items/7") == ok("item id=7"));
  CHECK(route(router, "GET", "/users/new") == ok("kind kind=users"));
}

TEST_CASE("the most specific route with the request's method is the one that runs", "[http]") {
  Router router(
      {{"GET", "/items/new", answer("form")}, {"POST", "/items/{id}", answer("update", {"id"})}});
  CHECK(route(router, "POST", "/items/new") == ok("update id=new"));
  CHECK(route(router, "GET", "/items/7") ==
        "Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\n"
        "405 Method Not Allowed\n");
}

TEST_CASE("a JSON router answers 400, 404 and 405 in JSON", "[http]") {
  Router router({{"GET", "/items/{id}", answer("item", {"id"})}}, StatusBody::Json);
  CHECK(route(router, "GET", "/nothing") ==
        "Status: 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n"
        R"({"status":404,"error":"Not Found"})");
  CHECK(route(router, "POST", "/items/1") ==
        "Status: 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
        "Content-Type: application/json\r\nContent-Length: 43\r\n\r\n"
        R"({"status":405,"error":"Method Not Allowed"})");
  CHECK(route(router, "GET", "/items/%") ==
        "Status: 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n"
        R"({"status":400,"error":"Bad Request"})");
}

TEST_CASE("a route that breaks the pattern rules is refused, naming the route", "[http]") {
  struct Case {
    std::string method;
    std::string pattern;
    std::string message;
  };
  const Case c = GENERATE(
      Case{"GET", "items", R"(http::Router: route "GET items": the pattern must start with '/')"},
      Case{"GET", "", R"(http::Router: route "GET ": the pattern must start with '/')"},
      Case{"", "/", R"(http::Router: route " /": the method is not a token)"},
      Case{"GE T", "/", R"(http::Router: route "GE T /": the method is not a token)"},
      Case{"GET", "/items/{}",
           R"(http::Router: route "GET /items/{}": a segment name is letters, digits and '_', )"
           R"(not first a digit)"},
      Case{"GET", "/items/{1st}",
           R"(http::Router: route "GET /items/{1st}": a segment name is letters, digits and )"
           R"('_', not first a digit)"},
      Case{"GET", "/items/{id}.json",
           R"(http::Router: route "GET /items/{id}.json": a named segment "{name}" must be a )"
           R"(whole segment)"},
      Case{"GET", "/{id}/{id}", R"(http::Router: route "GET /{id}/{id}": a segment name repeats)"},
      Case{
          "GET", "/a%20b",
          R"(http::Router: route "GET /a%20b": literal segments are written decoded, without '%')"},
      Case{"GET", "//items",
           R"(http::Router: route "GET //items": only the last segment may be empty)"});
  CAPTURE(c.pattern);
  CHECK_THROWS_MATCHES(Router({{c.method, c.pattern, answer("x")}}), std::invalid_argument,
                       Catch::Message(c.message));
}

TEST_CASE("two routes that would match the same requests are refused", "[http]") {
  CHECK_THROWS_MATCHES(
      Router({{"GET", "/items/{id}", answer("a")}, {"GET", "/items/{name}", answer("b")}}),
      std::invalid_argument,
      Catch::Message(R"(http::Router: route "GET /items/{name}": another route with this method )"
                     R"(matches the same paths)"));
  CHECK_THROWS_MATCHES(Router(std::vector<Route>{{"GET", "/items", RouteHandler()}}),
                       std::invalid_argument,
                       Catch::Message(R"(http::Router: route "GET /items": the handler is empty)"));
  CHECK_NOTHROW(Router({{"GET", "/items/{id}", answer("a")},
                        {"PUT", "/items/{id}", answer("b")},
                        {"GET", "/items/new", answer("c")},
                        {"GET", "/other/{id}", answer("d")}}));
}

}  // namespace
}  // namespace fcgimux::http
