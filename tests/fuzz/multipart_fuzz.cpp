// SPDX-License-Identifier: MIT
// libFuzzer target for http::MultipartParser and http::form_data_boundary(). The input's first
// line (up to the first '\n') is a boundary and the rest a multipart/form-data body; an input
// without '\n' is a body for the boundary "AaB03x". Invariants, checked on every input (a
// failure aborts):
//  1. Fed whole, one byte at a time, and in slices whose sizes derive from the input, the
//     parser makes the same calls (a part's data joined) and ends with the same result.
//  2. Calls come in order: on_part_begin, then on_part_data with non-empty spans, then
//     on_part_end; at most max_parts parts; no more data than the body had; no part's data
//     holds the delimiter.
//  3. A failed parser stays failed: more input returns the same error and calls nothing.
//  4. A body that parsed is rebuilt from its parts and parses to the same parts.
//  5. A boundary that form_data_boundary() accepts is one the parser accepts.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/http.hpp"

namespace {

namespace http = fcgimux::http;

constexpr http::MultipartLimits kLimits{.max_parts = 16, .max_header_bytes = 512};

void check(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "multipart_fuzz: invariant failed: %s\n", invariant);
    std::abort();
  }
}

struct PartLog {
  std::string name = {};
  std::optional<std::string> filename = {};
  std::string content_type = {};
  std::string data = {};
  bool ended = false;

  bool operator==(const PartLog&) const = default;
};

struct Parsed {
  std::vector<PartLog> parts;
  http::Error error = http::Error::None;
  bool done = false;

  bool operator==(const Parsed&) const = default;
};

http::MultipartCallbacks recorder(std::vector<PartLog>& parts) {
  return {
      .on_part_begin =
          [&parts](const http::Part& part) {
            check(parts.empty() || parts.back().ended, "a part begins after the last one ended");
            check(parts.size() < kLimits.max_parts, "at most max_parts parts");
            parts.push_back({.name = std::string(part.name),
                             .filename = part.filename ? std::optional<std::string>(*part.filename)
                                                       : std::nullopt,
                             .content_type = std::string(part.content_type)});
          },
      .on_part_data =
          [&parts](std::span<const std::byte> data) {
            check(!parts.empty() && !parts.back().ended, "data belongs to an open part");
            check(!data.empty(), "data is never empty");
            parts.back().data.append(reinterpret_cast<const char*>(data.data()), data.size());
          },
      .on_part_end =
          [&parts] {
            check(!parts.empty() && !parts.back().ended, "an open part ends");
            parts.back().ended = true;
          },
  };
}

// Feeds `body` in slices of the sizes `next_size()` picks, stopping at the first error.
template <class NextSize>
Parsed parse(std::string_view boundary, std::string_view body, NextSize next_size,
             const http::MultipartLimits& limits = kLimits) {
  Parsed parsed;
  http::MultipartParser parser(boundary, recorder(parsed.parts), limits);
  std::size_t offset = 0;
  while (offset < body.size() && parsed.error == http::Error::None) {
    const std::size_t size = std::min(next_size(), body.size() - offset);
    parsed.error = parser.feed(body.substr(offset, size));
    offset += size;
  }
  if (parsed.error == http::Error::None) parsed.error = parser.finish();
  parsed.done = parser.done();
  check(parsed.done == (parsed.error == http::Error::None), "done exactly when it succeeded");
  if (parsed.error != http::Error::None) {
    const auto parts = parsed.parts;
    check(parser.feed(body) == parsed.error && parser.finish() == parsed.error &&
              parsed.parts == parts,
          "a failed parser stays failed and calls nothing");
  }
  return parsed;
}

// Slice sizes from a xorshift generator seeded with the input's FNV-1a hash: deterministic
// for a given input, varied across inputs, often 1 byte so every state boundary gets hit.
class SliceSizes {
 public:
  explicit SliceSizes(std::string_view input) {
    for (const char c : input) state_ = (state_ ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  }
  std::size_t operator()() {
    state_ ^= state_ << 13u;
    state_ ^= state_ >> 7u;
    state_ ^= state_ << 17u;
    return state_ % 4 == 0 ? 1 : static_cast<std::size_t>(state_ >> 32u) % 100 + 1;
  }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325;
};

std::string rebuild(std::string_view boundary, const std::vector<PartLog>& parts) {
  std::string body;
  for (const auto& part : parts) {
    body.append("--").append(boundary).append("\r\n");
    body.append("Content-Disposition: form-data; name=\"").append(part.name).append("\"");
    if (part.filename) body.append("; filename=\"").append(*part.filename).append("\"");
    body.append("\r\n");
    if (!part.content_type.empty()) {
      body.append("Content-Type: ").append(part.content_type).append("\r\n");
    }
    body.append("\r\n").append(part.data).append("\r\n");
  }
  return body.append("--").append(boundary).append("--\r\n");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view boundary =
      newline == std::string_view::npos ? "AaB03x" : input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? input : input.substr(newline + 1);

  const auto whole = parse(boundary, body, [&] { return body.size(); });
  check(parse(boundary, body, [] { return std::size_t{1}; }) == whole,
        "whole and byte-by-byte parsing agree");
  SliceSizes slice_sizes(input);
  check(parse(boundary, body, slice_sizes) == whole, "whole and sliced parsing agree");

  std::size_t data_bytes = 0;
  const std::string delimiter = "\r\n--" + std::string(boundary);
  for (const auto& part : whole.parts) {
    data_bytes += part.data.size();
    check(part.data.find(delimiter) == std::string::npos, "no part's data holds the delimiter");
  }
  check(data_bytes <= body.size(), "no more data than the body had");

  if (whole.error == http::Error::None) {
    const std::string again = rebuild(boundary, whole.parts);
    // The rebuilt header blocks may be a little longer (quotes, spaces) than the originals.
    const http::MultipartLimits roomier{.max_parts = kLimits.max_parts,
                                        .max_header_bytes = kLimits.max_header_bytes + 64};
    const auto reparsed = parse(
        boundary, again, [&] { return again.size(); }, roomier);
    check(reparsed == whole, "a rebuilt body parses to the same parts");
  }

  const std::string content_type = "multipart/form-data; " + std::string(boundary);
  if (const auto found = http::form_data_boundary(content_type)) {
    http::MultipartParser parser(*found, {});
    check(parser.feed("") == http::Error::None, "an accepted boundary makes a working parser");
  }
  return 0;
}
