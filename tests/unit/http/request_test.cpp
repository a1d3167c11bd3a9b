// SPDX-License-Identifier: MIT
// The request helpers over a Request: lib/http/request.cpp.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "exchange_runner.hpp"
#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

using test::run_handler;

TEST_CASE("the request helpers read a Request's params", "[http]") {
  std::string seen;
  run_handler({{"REQUEST_METHOD", "PUT"},
               {"REQUEST_URI", "/items/%37?x=1"},
               {"QUERY_STRING", "x=1"},
               {"CONTENT_TYPE", "text/plain"},
               {"HTTP_ACCEPT", "*/*"}},
              [&](Request& request, Response&) {
                seen.append(method(request)).append(" ").append(raw_path(request));
                seen.append(" ").append(path(request).value_or("-"));
                seen.append(" ").append(query(request));
                seen.append(" ").append(header(request, "accept").value_or("-"));
                seen.append(" ").append(header(request, "Host").value_or("-"));
                for (const Header& h : headers(request)) seen.append(" ").append(h.name());
              });
  CHECK(seen == "PUT /items/%37 /items/7 x=1 */* - Content-Type Accept");
}

}  // namespace
}  // namespace fcgimux::http
