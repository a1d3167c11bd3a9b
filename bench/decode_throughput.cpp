// SPDX-License-Identifier: MIT
// How fast does the codec take in requests as nginx 1.22 sends them?
//
// One request stream as nginx writes it for a small POST (BEGIN_REQUEST for request id 1,
// Responder, FCGI_KEEP_CONN; one PARAMS record of 22 typical params; an empty PARAMS; 1 KiB of
// STDIN; an empty STDIN) is decoded over and over by one decoder, as on a keep-alive
// connection. Each request also gathers its PARAMS content into a fresh NameValueBlock and
// parses it into NameValues, as the connection layer does per request. The same stream is then
// fed in 100-byte and in 1-byte slices (reads that split records and lengths anywhere).
//
// The sliced cases are reported as a ratio against the whole case measured in the same run:
// the cost of reads that split records. Every case stops after a fixed number of requests or a
// time budget, whichever comes first; all decoded data feeds a checksum that is printed, so the
// optimizer cannot discard the work.
//
// Usage: fcgimux_bench_decode_throughput [seconds per case, default 1]

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace {

namespace protocol = fcgimux::protocol;
using Clock = std::chrono::steady_clock;

#ifdef __OPTIMIZE__
constexpr bool kOptimized = true;
#else
constexpr bool kOptimized = false;
#endif

constexpr std::size_t kMaxRequests = 10'000'000;
constexpr std::size_t kParamsLimit = 64 * 1024;  // Config::max_params_bytes' default

std::string nginx_request() {
  const std::string body(1024, 'b');
  const std::vector<std::pair<std::string_view, std::string_view>> params{
      {"SCRIPT_FILENAME", "/srv/www/app/public/index.php"},
      {"QUERY_STRING", "page=2&sort=desc&filter=active"},
      {"REQUEST_METHOD", "POST"},
      {"CONTENT_TYPE", "application/x-www-form-urlencoded"},
      {"CONTENT_LENGTH", "1024"},
      {"SCRIPT_NAME", "/index.php"},
      {"REQUEST_URI", "/orders?page=2&sort=desc&filter=active"},
      {"DOCUMENT_URI", "/index.php"},
      {"DOCUMENT_ROOT", "/srv/www/app/public"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"REQUEST_SCHEME", "https"},
      {"HTTPS", "on"},
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_SOFTWARE", "nginx/1.22.1"},
      {"REMOTE_ADDR", "203.0.113.54"},
      {"REMOTE_PORT", "51324"},
      {"SERVER_ADDR", "192.0.2.10"},
      {"SERVER_PORT", "443"},
      {"SERVER_NAME", "shop.example.org"},
      {"HTTP_HOST", "shop.example.org"},
      {"HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"},
      {"HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
  };
  std::string block;
  for (const auto& [name, value] : params) protocol::append_name_value(block, name, value);

  std::string stream;
  protocol::append_begin_request(stream, 1, static_cast<std::uint16_t>(protocol::Role::Responder),
                                 protocol::kKeepConn);
  protocol::append_records(stream, protocol::RecordType::Params, 1, block);
  protocol::append_records(stream, protocol::RecordType::Params, 1, std::string_view());
  protocol::append_records(stream, protocol::RecordType::Stdin, 1, body);
  protocol::append_records(stream, protocol::RecordType::Stdin, 1, std::string_view());
  return stream;
}

struct Tally {
  std::size_t records = 0;
  std::size_t params = 0;
  std::uint64_t checksum = 0;
};

// The per-request state the connection layer keeps.
struct Request {
  protocol::NameValueBlock params_block{kParamsLimit};
  std::vector<protocol::NameValue> params;
};

void on_record(const protocol::Record& record, Request& request, Tally& tally) {
  ++tally.records;
  tally.checksum += static_cast<std::uint8_t>(record.header.type) + record.content.size();
  if (record.header.type != protocol::RecordType::Params) return;
  if (!record.content.empty()) {
    if (request.params_block.append(record.content) != protocol::Error::None) std::abort();
    return;
  }
  if (request.params_block.parse(request.params) != protocol::Error::None) std::abort();
  tally.params += request.params.size();
  for (const auto& pair : request.params) {
    tally.checksum += pair.name.size() * 31 + pair.value.size() +
                      static_cast<unsigned char>(pair.value.empty() ? 0 : pair.value.back());
  }
}

// Decodes one request's stream, `slice` bytes per call (0: all at once).
void decode_request(protocol::Decoder& decoder, std::span<const std::byte> stream,
                    std::size_t slice, Tally& tally) {
  Request request;
  protocol::Record record;
  const auto step = slice == 0 ? stream.size() : slice;
  for (std::size_t offset = 0; offset < stream.size(); offset += step) {
    auto piece = stream.subspan(offset, std::min(step, stream.size() - offset));
    protocol::DecodeStatus status;
    while ((status = decoder.next(piece, record)) == protocol::DecodeStatus::Record) {
      on_record(record, request, tally);
    }
    if (status != protocol::DecodeStatus::NeedMore) std::abort();
  }
}

struct Result {
  std::size_t requests = 0;
  double seconds = 0;
};

// Runs `one_request` until kMaxRequests or `budget` has passed (checked every 256 requests).
template <class OneRequest>
Result run(Clock::duration budget, OneRequest one_request) {
  Result result;
  const auto start = Clock::now();
  auto now = start;
  while (result.requests < kMaxRequests && now - start < budget) {
    for (int i = 0; i < 256; ++i) one_request();
    result.requests += 256;
    now = Clock::now();
  }
  result.seconds = std::chrono::duration<double>(now - start).count();
  return result;
}

double requests_per_second(const Result& result) {
  return static_cast<double>(result.requests) / result.seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  if (!(seconds > 0)) {
    fmt::print(stderr, "usage: {} [seconds per case, default 1]\n", argv[0]);
    return 2;
  }
  const auto budget =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  const auto stream_text = nginx_request();
  const auto stream = std::as_bytes(std::span(stream_text));

  // One request first, to check that the stream decodes as intended.
  protocol::Decoder decoder;
  Tally tally;
  decode_request(decoder, stream, 0, tally);
  if (tally.records != 5 || tally.params != 22 || !decoder.at_record_boundary()) std::abort();
  fmt::print("one request: {} bytes in {} records, {} params{}\n", stream.size(), tally.records,
             tally.params, kOptimized ? "" : " (WARNING: built without optimization)");
  fmt::print("{:<16} {:>12} {:>14} {:>9} {:>9}\n", "case", "requests/s", "bytes/s", "MB/s",
             "vs whole");
  double whole = 0;
  const std::pair<std::string_view, std::size_t> cases[] = {
      {"whole", 0}, {"100-byte slices", 100}, {"1-byte slices", 1}};
  for (const auto& [name, slice_size] : cases) {
    const auto slice = slice_size;  // clang 14 cannot capture a structured binding
    const auto rate =
        requests_per_second(run(budget, [&] { decode_request(decoder, stream, slice, tally); }));
    if (slice == 0) whole = rate;
    const auto bytes_per_second = rate * static_cast<double>(stream.size());
    fmt::print("{:<16} {:>12.0f} {:>14.0f} {:>9.1f} {:>9.3f}\n", name, rate, bytes_per_second,
               bytes_per_second / 1e6, rate / whole);
  }
  fmt::print("checksum {} over {} records\n", tally.checksum, tally.records);
  return 0;
}
