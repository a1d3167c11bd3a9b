// SPDX-License-Identifier: MIT
#include "observe/access_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace fcgimux::observe {

namespace {

bool bare(char c) noexcept { return c > ' ' && c < 0x7F && c != '"' && c != '\\' && c != '='; }

double milliseconds(std::chrono::nanoseconds time) {
  return static_cast<double>(time.count()) / 1e6;
}

}  // namespace

std::string_view param(std::span<const protocol::NameValue> params,
                       std::string_view name) noexcept {
  return protocol::value_of(params, name).value_or(std::string_view());
}

std::string request_uri(std::span<const protocol::NameValue> params) {
  if (const std::string_view uri = param(params, "REQUEST_URI"); !uri.empty()) {
    return std::string(uri);
  }
  std::string uri(param(params, "SCRIPT_NAME"));
  uri.append(param(params, "PATH_INFO"));
  if (const std::string_view query = param(params, "QUERY_STRING"); !query.empty()) {
    uri.append("?").append(query);
  }
  return uri;
}

std::string logfmt_value(std::string_view value) {
  if (!value.empty() && std::all_of(value.begin(), value.end(), bare)) return std::string(value);
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c >= ' ' && c < 0x7F) {
      out += c;
    } else {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  out += '"';
  return out;
}

std::string access_line(const AccessEntry& entry) {
  std::string line = fmt::format(
      "access method={} uri={} status={} bytes={} duration_ms={:.3f} queue_ms={:.3f} result={}",
      logfmt_value(entry.method), logfmt_value(entry.uri), entry.status, entry.bytes,
      milliseconds(entry.duration), milliseconds(entry.queue_wait), entry.result);
  if (!entry.reason.empty()) fmt::format_to(std::back_inserter(line), " reason={}", entry.reason);
  fmt::format_to(std::back_inserter(line), " conn={} req={}", entry.connection_id,
                 entry.request_id);
  if (!entry.pool.empty()) {
    fmt::format_to(std::back_inserter(line), " pool={}", logfmt_value(entry.pool));
  }
  return line;
}

}  // namespace fcgimux::observe
