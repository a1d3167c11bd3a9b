// SPDX-License-Identifier: MIT
// MIME types by extension: lib/http/mime.cpp.

#include <catch2/catch.hpp>
#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

TEST_CASE("an extension gives its MIME type with or without the dot, in any case", "[http]") {
  CHECK(mime_type_for_extension("html") == "text/html; charset=utf-8");
  CHECK(mime_type_for_extension(".html") == "text/html; charset=utf-8");
  CHECK(mime_type_for_extension(".HTML") == "text/html; charset=utf-8");
  CHECK(mime_type_for_extension("Png") == "image/png");
  CHECK(mime_type_for_extension("json") == "application/json");
  CHECK(mime_type_for_extension("js") == "text/javascript; charset=utf-8");
  CHECK(mime_type_for_extension("woff2") == "font/woff2");
  CHECK(mime_type_for_extension("svg") == "image/svg+xml");
}

TEST_CASE("an unknown or empty extension is application/octet-stream", "[http]") {
  const auto extension = GENERATE(as<std::string_view>{}, "", ".", "exe", "htm l", "..html",
                                  "html.", "tar.gz", "woff3");
  CHECK(mime_type_for_extension(extension) == "application/octet-stream");
}

TEST_CASE("a path's MIME type comes from the extension of its last segment", "[http]") {
  CHECK(mime_type_for_path("index.html") == "text/html; charset=utf-8");
  CHECK(mime_type_for_path("/static/app.min.css") == "text/css; charset=utf-8");
  CHECK(mime_type_for_path("/a/b.tar.gz") == "application/gzip");
  CHECK(mime_type_for_path("/a.json/b") == "application/octet-stream");
  CHECK(mime_type_for_path("/a.json/") == "application/octet-stream");
  CHECK(mime_type_for_path("/a/README") == "application/octet-stream");
  CHECK(mime_type_for_path("/a/file.") == "application/octet-stream");
  CHECK(mime_type_for_path("/a/.txt") == "text/plain; charset=utf-8");
  CHECK(mime_type_for_path("") == "application/octet-stream");
}

}  // namespace
}  // namespace fcgimux::http
