// SPDX-License-Identifier: MIT
// MIME types by file extension: the common web types, as the IANA media type registry and the
// WHATWG MIME Sniffing Standard name them.

#include <array>
#include <string_view>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {
namespace {

struct MimeType {
  std::string_view extension;
  std::string_view type;
};

// Text types carry their charset: without one, browsers guess (WHATWG Encoding §4.2), and a
// guess is how UTF-7 XSS happened. JSON needs none (RFC 8259 §11: no charset parameter).
constexpr std::array<MimeType, 37> kTypes{{
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"yaml", "application/yaml"},
    {"zip", "application/zip"},
}};

constexpr std::string_view kOctetStream = "application/octet-stream";

}  // namespace

std::string_view mime_type_for_extension(std::string_view extension) noexcept {
  if (extension.starts_with('.')) extension.remove_prefix(1);
  for (const auto& [known, type] : kTypes) {
    if (ascii::iequals(known, extension)) return type;
  }
  return kOctetStream;
}

std::string_view mime_type_for_path(std::string_view path) noexcept {
  const auto slash = path.rfind('/');
  const auto segment = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = segment.rfind('.');
  if (dot == std::string_view::npos) return kOctetStream;
  return mime_type_for_extension(segment.substr(dot + 1));
}

}  // namespace fcgimux::http
