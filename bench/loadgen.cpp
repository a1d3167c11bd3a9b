// SPDX-License-Identifier: MIT
// loadgen: a FastCGI load generator that plays a web server against any FastCGI application.
//
// C connections each keep M requests in flight (closed loop: a request that ends is replaced at
// once). With M > 1 the connection is multiplexed and the records of its requests go out
// interleaved, one record of each request in turn, as a multiplexing client (HAProxy) sends
// them. Each request carries about 20 params as nginx's fastcgi_params sends them, an optional
// QUERY_STRING and an optional body (a POST). Every END_REQUEST is checked (protocol status,
// HTTP status from the CGI header block); with --verify every response body is checked too:
// for "size=N" in the query it must be N bytes of 'x', for a POST without size= it must be the
// body sent, byte for byte (the echo contract, examples/echo_handler.hpp).
//
// A run stops issuing requests at --duration or after --requests, whichever comes first, then
// waits up to --timeout-ms for those in flight. A request unanswered after --timeout-ms counts
// as a timeout and its connection is closed and opened again (so are connections that fail).
//
// --idle N opens N connections, sends one keep-conn request on each, then holds them idle for
// --hold seconds: the application's memory per idle connection can be read meanwhile. A line
// goes out when every connection has its answer (or has failed), another when the hold ends.
//
// --streams N does the same with requests whose responses do not end (an event stream, e.g.
// "--query stream=1" against bench/echo_server.cpp): a stream counts as open once its CGI
// header block has arrived, and is never timed out after that. While it holds them, it counts
// the events (blank-line-terminated, text/event-stream) the streams receive.
//
// Output: one line of key=value pairs on stdout per report, for scripts (bench/run).
// Usage: see kUsage. Depends only on the public codec (fcgimux/protocol.hpp) and POSIX.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace {

namespace protocol = fcgimux::protocol;
using Clock = std::chrono::steady_clock;
using protocol::RecordType;

constexpr std::string_view kUsage =
    "usage: loadgen --connect ADDRESS [options]\n"
    "  ADDRESS           tcp:IPV4:PORT or unix:PATH\n"
    "  --connections C   connections (default 16)\n"
    "  --inflight M      requests in flight per connection, 1..1000 (default 1; > 1 multiplexes)\n"
    "  --duration S      seconds of load, at most 600 (default 10)\n"
    "  --requests N      stop after N requests (default: no count limit)\n"
    "  --warmup S        seconds of load before measuring (default 0)\n"
    "  --body-size B     POST a body of B bytes (default 0: a GET)\n"
    "  --query Q         QUERY_STRING, e.g. size=13 (see examples/echo_handler.hpp)\n"
    "  --path P          SCRIPT_NAME and DOCUMENT_URI (default /echo), e.g. to reach a pool\n"
    "  --expect-status N HTTP status every response must have (default 200)\n"
    "  --verify          check every response body (size=N: N bytes of 'x'; POST: the body)\n"
    "  --timeout-ms T    a request unanswered for T ms is a timeout (default 5000)\n"
    "  --threads T       client threads, each with its share of the connections (default 1)\n"
    "  --idle N          open N connections, one request each, then hold them idle\n"
    "  --streams N       open N connections, one streaming request each, then hold them\n"
    "  --hold S          seconds to hold idle connections or streams, at most 600 (default 10)\n";

constexpr double kMaxSeconds = 600;
constexpr std::size_t kMaxInflight = 1000;
// Bytes queued for a socket before the writer stops copying records: enough for a full
// loopback send buffer, small enough that records of new requests interleave quickly.
constexpr std::size_t kOutputHighWater = 256 * 1024;
// A CGI header block longer than this is malformed for our purposes.
constexpr std::size_t kMaxHeaderBlock = 16 * 1024;
// Connections whose connect() is still pending at once: a listener's backlog overflows past a
// few hundred simultaneous handshakes.
constexpr std::size_t kMaxPendingConnects = 256;
constexpr auto kReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kTimeoutScanInterval = std::chrono::milliseconds(20);

struct Options {
  std::string connect;
  std::size_t connections = 16;
  std::size_t inflight = 1;
  double duration_s = 10;
  std::optional<std::uint64_t> requests;
  double warmup_s = 0;
  std::size_t body_size = 0;
  std::string query;
  std::string path = "/echo";
  int expect_status = 200;
  bool verify = false;
  std::chrono::milliseconds timeout{5000};
  std::size_t threads = 1;
  std::optional<std::size_t> idle;
  std::optional<std::size_t> streams;
  double hold_s = 10;
};

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

// std::from_chars for double is in libstdc++ 12, but keep seconds simple: whole or with a
// fractional part in milliseconds.
bool parse_seconds(std::string_view text, double& out) {
  const std::size_t dot = text.find('.');
  std::uint64_t whole = 0;
  if (!parse_number(text.substr(0, dot), whole)) return false;
  double fraction = 0;
  if (dot != std::string_view::npos) {
    std::string_view digits = text.substr(dot + 1);
    std::uint64_t value = 0;
    if (digits.empty() || digits.size() > 3 || !parse_number(digits, value)) return false;
    fraction = static_cast<double>(value);
    for (std::size_t i = 0; i < digits.size(); ++i) fraction /= 10;
  }
  out = static_cast<double>(whole) + fraction;
  return out <= kMaxSeconds;
}

std::optional<Options> parse_options(std::span<char*> args) {
  Options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--verify") {
      options.verify = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "loadgen: %s wants a value\n", args[i]);
      return std::nullopt;
    }
    const std::string_view value = args[++i];
    std::uint64_t number = 0;
    bool ok = true;
    if (flag == "--connect") {
      options.connect = value;
    } else if (flag == "--connections") {
      ok = parse_number(value, options.connections) && options.connections > 0;
    } else if (flag == "--inflight") {
      ok = parse_number(value, options.inflight) && options.inflight > 0 &&
           options.inflight <= kMaxInflight;
    } else if (flag == "--duration") {
      ok = parse_seconds(value, options.duration_s);
    } else if (flag == "--requests") {
      ok = parse_number(value, number) && number > 0;
      options.requests = number;
    } else if (flag == "--warmup") {
      ok = parse_seconds(value, options.warmup_s);
    } else if (flag == "--body-size") {
      ok = parse_number(value, options.body_size);
    } else if (flag == "--query") {
      options.query = value;
    } else if (flag == "--path") {
      options.path = value;
    } else if (flag == "--expect-status") {
      ok = parse_number(value, options.expect_status);
    } else if (flag == "--timeout-ms") {
      ok = parse_number(value, number) && number > 0;
      options.timeout = std::chrono::milliseconds(number);
    } else if (flag == "--threads") {
      ok = parse_number(value, options.threads) && options.threads > 0;
    } else if (flag == "--idle") {
      std::size_t count = 0;
      ok = parse_number(value, count) && count > 0;
      options.idle = count;
    } else if (flag == "--streams") {
      std::size_t count = 0;
      ok = parse_number(value, count) && count > 0;
      options.streams = count;
    } else if (flag == "--hold") {
      ok = parse_seconds(value, options.hold_s);
    } else {
      std::fprintf(stderr, "loadgen: unknown flag %s\n%s", args[i - 1], kUsage.data());
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "loadgen: bad value '%s' for %s\n", args[i], args[i - 1]);
      return std::nullopt;
    }
  }
  if (options.connect.empty()) {
    std::fprintf(stderr, "%s", kUsage.data());
    return std::nullopt;
  }
  return options;
}

// The value of `key` in a query string such as "a=1&size=42", when it is a decimal number.
std::optional<std::size_t> query_number(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.size() > key.size() && pair.starts_with(key) && pair[key.size()] == '=') {
      std::size_t number = 0;
      if (parse_number(pair.substr(key.size() + 1), number)) return number;
    }
  }
  return std::nullopt;
}

// Where to connect: a sockaddr of either family.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  bool tcp = false;
};

std::optional<Address> parse_address(std::string_view text) {
  Address address;
  if (text.starts_with("unix:")) {
    const std::string_view path = text.substr(5);
    sockaddr_un un{};
    if (path.empty() || path.size() >= sizeof(un.sun_path)) return std::nullopt;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&address.storage, &un, sizeof(un));
    address.length = sizeof(un);
    return address;
  }
  if (!text.starts_with("tcp:")) return std::nullopt;
  text.remove_prefix(4);
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string host(text.substr(0, colon));
  std::uint16_t port = 0;
  if (!parse_number(text.substr(colon + 1), port) || port == 0) return std::nullopt;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) return std::nullopt;
  std::memcpy(&address.storage, &in, sizeof(in));
  address.length = sizeof(in);
  address.tcp = true;
  return address;
}

// Latencies in microseconds, log-linear: exact below 1024 µs, then 512 buckets per power of
// two (under 0.2% error), so memory stays fixed whatever the run length.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}

  void record(std::uint64_t micros) {
    ++counts_[index(std::min(micros, kMaxValue))];
    ++total_;
    max_ = std::max(max_, micros);
  }
  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }
  // The smallest recorded value v such that `fraction` of values are <= v (bucket lower
  // bound); 0 when empty.
  std::uint64_t percentile(double fraction) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(fraction * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(lower_bound(i), max_);
    }
    return max_;
  }
  std::uint64_t max() const noexcept { return max_; }

 private:
  static constexpr int kSubBits = 9;
  static constexpr std::uint64_t kLinear = std::uint64_t{1} << (kSubBits + 1);
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << 40) - 1;
  static constexpr std::size_t kBuckets = (40 - kSubBits) * (std::size_t{1} << kSubBits) + kLinear;

  static std::size_t index(std::uint64_t v) {
    if (v < kLinear) return static_cast<std::size_t>(v);
    const auto shift = static_cast<int>(std::bit_width(v)) - 1 - kSubBits;
    return static_cast<std::size_t>(shift) * (std::size_t{1} << kSubBits) +
           static_cast<std::size_t>(v >> shift);
  }
  static std::uint64_t lower_bound(std::size_t i) {
    if (i < kLinear) return i;
    const std::size_t shift = i / (std::size_t{1} << kSubBits) - 1;
    const std::size_t mantissa = i - shift * (std::size_t{1} << kSubBits);
    return std::uint64_t{mantissa} << shift;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// What one thread counted; merged at the end.
struct Stats {
  std::uint64_t ok = 0;
  std::uint64_t err_connect = 0;   // connect() failed
  std::uint64_t err_timeout = 0;   // no END_REQUEST within the timeout
  std::uint64_t err_closed = 0;    // the server closed a connection with requests in flight
  std::uint64_t err_record = 0;    // malformed stream, or a record out of place
  std::uint64_t err_protocol = 0;  // END_REQUEST with a protocol status other than complete
  std::uint64_t err_http = 0;      // HTTP status other than expected
  std::uint64_t err_body = 0;      // body differs from what the echo contract says
  std::uint64_t body_bytes = 0;    // response body bytes of completed requests
  Histogram latency;               // of every request that got its END_REQUEST

  std::uint64_t errors() const {
    return err_connect + err_timeout + err_closed + err_record + err_protocol + err_http + err_body;
  }
  void merge(const Stats& other) {
    ok += other.ok;
    err_connect += other.err_connect;
    err_timeout += other.err_timeout;
    err_closed += other.err_closed;
    err_record += other.err_record;
    err_protocol += other.err_protocol;
    err_http += other.err_http;
    err_body += other.err_body;
    body_bytes += other.body_bytes;
    latency.merge(other.latency);
  }
};

// What a response body must be, from the echo contract.
struct Expectation {
  enum class Kind : std::uint8_t { Unchecked, Size, Echo } kind = Kind::Unchecked;
  std::size_t size = 0;
};

// The byte stream of one request per request id, built once: every request a slot sends is
// the same bytes. Params are those nginx 1.22's /etc/nginx/fastcgi_params sends, plus the
// usual client headers.
struct Workload {
  std::string body;
  std::vector<std::string> wire;  // wire[id - 1]
  Expectation expect;
  int expect_status = 200;
  bool verify = false;
};

std::string make_body(std::size_t size) {
  // A pattern with a long period, so that a chunk echoed out of place does not match.
  std::string body(size, '\0');
  std::uint32_t state = 2463534242U;
  for (char& c : body) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    c = static_cast<char>('a' + state % 26);
  }
  return body;
}

Workload make_workload(const Options& options, std::size_t slots) {
  Workload workload;
  workload.body = make_body(options.body_size);
  workload.expect_status = options.expect_status;
  workload.verify = options.verify;
  if (const auto size = query_number(options.query, "size")) {
    workload.expect = {Expectation::Kind::Size, *size};
  } else if (options.body_size > 0) {
    workload.expect = {Expectation::Kind::Echo, options.body_size};
  }
  const bool post = options.body_size > 0;
  const std::string uri = options.query.empty() ? options.path : options.path + "?" + options.query;
  const std::string length = post ? std::to_string(options.body_size) : "";
  const std::vector<std::pair<std::string_view, std::string_view>> params{
      {"SCRIPT_FILENAME", "/srv/www/echo"},
      {"QUERY_STRING", options.query},
      {"REQUEST_METHOD", post ? "POST" : "GET"},
      {"CONTENT_TYPE", post ? "application/octet-stream" : ""},
      {"CONTENT_LENGTH", length},
      {"SCRIPT_NAME", options.path},
      {"REQUEST_URI", uri},
      {"DOCUMENT_URI", options.path},
      {"DOCUMENT_ROOT", "/srv/www"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"REQUEST_SCHEME", "http"},
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_SOFTWARE", "nginx/1.22.1"},
      {"REMOTE_ADDR", "127.0.0.1"},
      {"REMOTE_PORT", "51324"},
      {"SERVER_ADDR", "127.0.0.1"},
      {"SERVER_PORT", "8080"},
      {"SERVER_NAME", "localhost"},
      {"REDIRECT_STATUS", "200"},
      {"HTTP_HOST", "localhost:8080"},
      {"HTTP_USER_AGENT", "loadgen"},
      {"HTTP_ACCEPT", "*/*"},
  };
  std::string block;
  for (const auto& [name, value] : params) protocol::append_name_value(block, name, value);
  for (std::size_t id = 1; id <= slots; ++id) {
    const auto request_id = static_cast<std::uint16_t>(id);
    std::string& wire = workload.wire.emplace_back();
    protocol::append_begin_request(wire, request_id,
                                   static_cast<std::uint16_t>(protocol::Role::Responder),
                                   protocol::kKeepConn);
    protocol::append_records(wire, RecordType::Params, request_id, block);
    protocol::append_records(wire, RecordType::Params, request_id, std::string_view());
    if (post) protocol::append_records(wire, RecordType::Stdin, request_id, workload.body);
    protocol::append_records(wire, RecordType::Stdin, request_id, std::string_view());
  }
  return workload;
}

// The length of the record that starts at `offset` of a well-formed stream we built.
std::size_t record_length(std::string_view wire, std::size_t offset) {
  std::array<std::byte, protocol::kHeaderSize> bytes;
  std::memcpy(bytes.data(), wire.data() + offset, bytes.size());
  const protocol::Header header = protocol::decode_header(bytes);
  return protocol::kHeaderSize + header.content_length + header.padding_length;
}

// One request id on one connection.
struct Slot {
  bool active = false;
  Clock::time_point started;
  std::size_t sent = 0;  // bytes of the request's wire stream queued for the socket
  // The response so far.
  std::string header_block;
  bool headers_done = false;
  bool out_ended = false;
  bool malformed = false;
  bool body_ok = true;
  int http_status = 200;
  std::size_t body_bytes = 0;
  char last_body_byte = 0;  // streams: to find a "\n\n" split between two reads
};

struct Connection {
  enum class State : std::uint8_t { Waiting, Connecting, Open };
  State state = State::Waiting;
  int fd = -1;
  Clock::time_point retry_at;  // when Waiting
  std::vector<Slot> slots;
  std::size_t active = 0;
  std::size_t next_slot = 0;  // round-robin position for interleaving records
  protocol::Decoder decoder;
  std::string out;
  std::size_t out_offset = 0;
  bool writable = false;
  std::uint64_t started_requests = 0;
};

// Shared by every thread of a run.
struct Shared {
  Clock::time_point start;
  Clock::time_point measure_from;
  Clock::time_point stop_issuing;
  std::optional<std::uint64_t> budget;  // requests left to issue, when counted
  std::atomic<std::uint64_t> issued{0};
};

// Runs a share of the connections on one epoll instance.
// Threading: one per thread; touches only its own connections and the atomics in Shared.
class Client {
 public:
  // `streaming`: responses do not end (see --streams).
  Client(const Address& address, const Workload& workload, std::size_t connections,
         std::size_t inflight, std::chrono::milliseconds timeout, Shared& shared,
         std::optional<std::uint64_t> per_connection, bool streaming = false)
      : address_(address),
        workload_(workload),
        timeout_(timeout),
        shared_(shared),
        per_connection_(per_connection),
        streaming_(streaming),
        connections_(connections),
        epoll_(epoll_create1(EPOLL_CLOEXEC)),
        buffer_(256 * 1024) {
    for (Connection& connection : connections_) connection.slots.resize(inflight);
  }
  ~Client() {
    for (Connection& connection : connections_) close_connection(connection);
    if (epoll_ >= 0) close(epoll_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Load: until shared.stop_issuing (or the budget) and then until nothing is in flight or the
  // timeout has passed since.
  void run_load() {
    bool measuring = shared_.measure_from <= shared_.start;
    for (;;) {
      const Clock::time_point now = Clock::now();
      if (!measuring && now >= shared_.measure_from) {
        stats_ = Stats{};
        measuring = true;
      }
      if (!stopping_ && (now >= shared_.stop_issuing || budget_spent())) {
        stopping_ = true;
        stopped_at_ = now;
        drain_until_ = now + timeout_;
      }
      if (stopping_ && (in_flight() == 0 || now >= drain_until_)) break;
      poll_once(now);
    }
    for (Connection& connection : connections_) fail_connection(connection, &Stats::err_timeout);
  }

  // Idle: every connection makes one request, then all stay open until `hold_until`.
  // `on_ready` runs once every connection has its answer (streaming: its header block) or has
  // failed.
  template <class OnReady>
  void run_idle(std::chrono::duration<double> hold, OnReady on_ready) {
    std::optional<Clock::time_point> hold_until;
    for (;;) {
      const Clock::time_point now = Clock::now();
      if (!hold_until && settled()) {
        on_ready(stats_, open_connections());
        hold_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(hold);
      }
      if (hold_until && now >= *hold_until) break;
      poll_once(now);
    }
  }

  const Stats& stats() const noexcept { return stats_; }
  // The end of the measured window: when issuing stopped, or the last answer after that. A
  // server that stalls is measured over the whole run, not until its last answer.
  Clock::time_point measured_until() const noexcept {
    return std::max(stopped_at_, last_completion_);
  }
  std::size_t open_connections() const {
    return static_cast<std::size_t>(
        std::count_if(connections_.begin(), connections_.end(),
                      [](const Connection& c) { return c.state == Connection::State::Open; }));
  }
  // Streaming: responses whose header block arrived and that have not ended.
  std::size_t open_streams() const {
    std::size_t count = 0;
    for (const Connection& connection : connections_) {
      count += static_cast<std::size_t>(
          std::count_if(connection.slots.begin(), connection.slots.end(),
                        [](const Slot& s) { return s.active && s.headers_done; }));
    }
    return count;
  }
  // Streaming: events received so far, over every stream.
  std::uint64_t events() const noexcept { return events_; }

 private:
  bool budget_spent() const {
    return shared_.budget && shared_.issued.load(std::memory_order_relaxed) >= *shared_.budget;
  }
  std::size_t in_flight() const {
    std::size_t count = 0;
    for (const Connection& connection : connections_) count += connection.active;
    return count;
  }
  // Whether `slot` waits for an answer: a request in flight, but not a stream already open.
  bool unanswered(const Slot& slot) const {
    return slot.active && !(streaming_ && slot.headers_done);
  }
  std::size_t unanswered_in(const Connection& connection) const {
    return static_cast<std::size_t>(std::count_if(connection.slots.begin(), connection.slots.end(),
                                                  [&](const Slot& s) { return unanswered(s); }));
  }
  // Idle mode: every connection has made its request and has it answered, or has failed.
  bool settled() const {
    return std::all_of(connections_.begin(), connections_.end(), [&](const Connection& c) {
      return c.fd < 0 ? c.state == Connection::State::Waiting && c.started_requests > 0
                      : c.state == Connection::State::Open && unanswered_in(c) == 0 &&
                            c.started_requests > 0;
    });
  }

  void poll_once(Clock::time_point now) {
    open_waiting(now);
    if (now >= next_timeout_scan_) {
      expire(now);
      next_timeout_scan_ = now + kTimeoutScanInterval;
    }
    std::array<epoll_event, 256> events;
    const int count = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
    for (int i = 0; i < count; ++i) {
      const epoll_event& event = events[static_cast<std::size_t>(i)];
      Connection& connection = connections_[event.data.u64];
      if (connection.state == Connection::State::Connecting) {
        finish_connect(connection);
      } else if (connection.state == Connection::State::Open) {
        if ((event.events & EPOLLOUT) != 0) connection.writable = true;
        if ((event.events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) {
          read_from(connection);
        }
        if (connection.state == Connection::State::Open) flush(connection);
      }
    }
  }

  // Connects connections that are waiting for their (re)connect time. In idle mode a
  // connection that has made its request does not come back after failing.
  // In idle mode, requests in flight count against the same cap as pending connects: ten
  // thousand requests at once would measure the server's overload answer, not idle memory.
  void open_waiting(Clock::time_point now) {
    std::size_t busy = pending_connects_;
    if (per_connection_) {
      for (const Connection& connection : connections_) busy += unanswered_in(connection);
    }
    for (std::size_t i = 0; i < connections_.size() && busy < kMaxPendingConnects; ++i) {
      Connection& connection = connections_[i];
      if (connection.state != Connection::State::Waiting || now < connection.retry_at) continue;
      if (stopping_ || (per_connection_ && connection.started_requests >= *per_connection_)) {
        continue;
      }
      start_connect(connection, i, now);
      ++busy;
    }
  }

  void start_connect(Connection& connection, std::size_t index, Clock::time_point now) {
    const int family = address_.storage.ss_family;
    const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      connect_failed(connection, now);
      return;
    }
    if (address_.tcp) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.u64 = index;
    const int rc =
        connect(fd, reinterpret_cast<const sockaddr*>(&address_.storage), address_.length);
    if ((rc != 0 && errno != EINPROGRESS) || epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
      close(fd);
      connect_failed(connection, now);
      return;
    }
    connection.fd = fd;
    connection.state = Connection::State::Connecting;
    ++pending_connects_;
  }

  void connect_failed(Connection& connection, Clock::time_point now) {
    ++stats_.err_connect;
    // In idle mode the attempt counts as the connection's one request: it is not retried.
    if (per_connection_) connection.started_requests = *per_connection_;
    connection.retry_at = now + kReconnectDelay;
  }

  void finish_connect(Connection& connection) {
    --pending_connects_;
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      close_connection(connection);
      connect_failed(connection, Clock::now());
      return;
    }
    connection.state = Connection::State::Open;
    connection.writable = true;
    connection.decoder = protocol::Decoder();
    for (std::size_t i = 0; i < connection.slots.size(); ++i) start_request(connection, i);
    flush(connection);
  }

  // Starts a request in slot `index` unless the run (or this connection's share) is over.
  void start_request(Connection& connection, std::size_t index) {
    if (stopping_) return;
    if (per_connection_ && connection.started_requests >= *per_connection_) return;
    if (shared_.budget) {
      if (shared_.issued.fetch_add(1, std::memory_order_relaxed) >= *shared_.budget) return;
    }
    ++connection.started_requests;
    Slot& slot = connection.slots[index];
    slot = Slot{};
    slot.active = true;
    slot.started = Clock::now();
    ++connection.active;
  }

  // Copies records of the slots' pending requests into the output, one record of each in
  // turn (so a multiplexed connection interleaves them), then writes what the socket takes.
  void flush(Connection& connection) {
    for (;;) {
      fill(connection);
      if (connection.out_offset == connection.out.size() || !connection.writable) return;
      const std::string_view pending =
          std::string_view(connection.out).substr(connection.out_offset);
      const ssize_t written = send(connection.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (written < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          connection.writable = false;
          return;
        }
        if (errno == EINTR) continue;
        fail_connection(connection, &Stats::err_closed);
        return;
      }
      connection.out_offset += static_cast<std::size_t>(written);
      if (connection.out_offset == connection.out.size()) {
        connection.out.clear();
        connection.out_offset = 0;
      }
    }
  }

  void fill(Connection& connection) {
    const std::size_t slots = connection.slots.size();
    std::size_t idle_turns = 0;
    while (connection.out.size() - connection.out_offset < kOutputHighWater && idle_turns < slots) {
      const std::size_t index = connection.next_slot;
      connection.next_slot = (index + 1) % slots;
      Slot& slot = connection.slots[index];
      const std::string& wire = workload_.wire[index];
      if (!slot.active || slot.sent == wire.size()) {
        ++idle_turns;
        continue;
      }
      idle_turns = 0;
      const std::size_t length = record_length(wire, slot.sent);
      connection.out.append(wire, slot.sent, length);
      slot.sent += length;
    }
  }

  void read_from(Connection& connection) {
    for (;;) {
      const ssize_t count = recv(connection.fd, buffer_.data(), buffer_.size(), 0);
      if (count > 0) {
        std::span<const std::byte> in(buffer_.data(), static_cast<std::size_t>(count));
        if (!decode(connection, in)) {
          fail_connection(connection, &Stats::err_record);
          return;
        }
        continue;
      }
      if (count < 0 && errno == EINTR) continue;
      if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // EOF or a reset: the requests still in flight are lost.
      fail_connection(connection, &Stats::err_closed);
      return;
    }
  }

  // Returns false when the stream is malformed or a record is out of place.
  bool decode(Connection& connection, std::span<const std::byte> in) {
    protocol::Record record;
    for (;;) {
      const protocol::DecodeStatus status = connection.decoder.next(in, record);
      if (status == protocol::DecodeStatus::NeedMore) return true;
      if (status == protocol::DecodeStatus::Error) return false;
      const std::size_t id = record.header.request_id;
      if (id == 0 || id > connection.slots.size()) return false;
      Slot& slot = connection.slots[id - 1];
      if (!slot.active) return false;
      const std::string_view content(reinterpret_cast<const char*>(record.content.data()),
                                     record.content.size());
      switch (record.header.type) {
        case RecordType::Stdout:
          if (slot.out_ended) return false;
          if (content.empty()) {
            slot.out_ended = true;
          } else {
            take_stdout(slot, content);
          }
          break;
        case RecordType::Stderr:
          break;
        case RecordType::EndRequest: {
          protocol::EndRequestBody end;
          if (protocol::parse_end_request(record.content, end) != protocol::Error::None) {
            return false;
          }
          complete(connection, id - 1, end);
          break;
        }
        default:
          return false;
      }
    }
  }

  void take_stdout(Slot& slot, std::string_view content) {
    if (!slot.headers_done) {
      slot.header_block.append(content);
      std::size_t end = slot.header_block.find("\r\n\r\n");
      std::size_t separator = 4;
      const std::size_t bare = slot.header_block.find("\n\n");
      if (bare < end) {
        end = bare;
        separator = 2;
      }
      if (end == std::string::npos) {
        slot.malformed = slot.header_block.size() > kMaxHeaderBlock;
        return;
      }
      slot.headers_done = true;
      slot.http_status = status_of(std::string_view(slot.header_block).substr(0, end));
      content = std::string_view(slot.header_block).substr(end + separator);
    }
    take_body(slot, content);
  }

  // The "Status" header of a CGI header block (RFC 3875 §6.3.3), 200 without one.
  static int status_of(std::string_view block) {
    while (!block.empty()) {
      const std::size_t newline = block.find('\n');
      std::string_view line = block.substr(0, newline);
      block.remove_prefix(std::min(block.size(), line.size() + 1));
      if (line.size() < 7 || strncasecmp(line.data(), "status:", 7) != 0) continue;
      line.remove_prefix(7);
      line.remove_prefix(std::min(line.size(), line.find_first_not_of(' ')));
      int status = 0;
      std::from_chars(line.data(), line.data() + line.size(), status);
      return status;
    }
    return 200;
  }

  void take_body(Slot& slot, std::string_view bytes) {
    if (streaming_) {
      // text/event-stream (HTML Living Standard §9.2.6): a blank line dispatches an event.
      for (const char c : bytes) {
        if (c == '\n' && slot.last_body_byte == '\n') {
          ++events_;
          slot.last_body_byte = 0;
        } else {
          slot.last_body_byte = c;
        }
      }
    }
    if (workload_.verify && slot.body_ok) {
      const Expectation& expect = workload_.expect;
      if (slot.body_bytes + bytes.size() > expect.size &&
          expect.kind != Expectation::Kind::Unchecked) {
        slot.body_ok = false;
      } else if (expect.kind == Expectation::Kind::Size) {
        slot.body_ok = bytes.find_first_not_of('x') == std::string_view::npos;
      } else if (expect.kind == Expectation::Kind::Echo) {
        slot.body_ok =
            std::string_view(workload_.body).substr(slot.body_bytes, bytes.size()) == bytes;
      }
    }
    slot.body_bytes += bytes.size();
  }

  void complete(Connection& connection, std::size_t index, const protocol::EndRequestBody& end) {
    Slot& slot = connection.slots[index];
    const Clock::time_point now = Clock::now();
    stats_.latency.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - slot.started).count()));
    last_completion_ = now;
    stats_.body_bytes += slot.body_bytes;
    const Expectation& expect = workload_.expect;
    if (end.protocol_status != protocol::ProtocolStatus::RequestComplete) {
      ++stats_.err_protocol;
    } else if (slot.malformed || !slot.headers_done || !slot.out_ended) {
      ++stats_.err_record;
    } else if (slot.http_status != workload_.expect_status) {
      ++stats_.err_http;
    } else if (workload_.verify && (!slot.body_ok || (expect.kind != Expectation::Kind::Unchecked &&
                                                      slot.body_bytes != expect.size))) {
      ++stats_.err_body;
    } else {
      ++stats_.ok;
    }
    slot.active = false;
    slot.header_block = std::string();
    --connection.active;
    start_request(connection, index);
  }

  // Closes connections holding a request older than the timeout; each such request is a
  // timeout, and so is every other request in flight on the same connection.
  void expire(Clock::time_point now) {
    for (Connection& connection : connections_) {
      if (connection.state == Connection::State::Connecting) continue;
      const bool late =
          std::any_of(connection.slots.begin(), connection.slots.end(),
                      [&](const Slot& s) { return unanswered(s) && now - s.started > timeout_; });
      if (late) fail_connection(connection, &Stats::err_timeout);
    }
  }

  // Counts every request in flight as `kind`, closes the connection and schedules a new one.
  void fail_connection(Connection& connection, std::uint64_t Stats::*kind) {
    for (Slot& slot : connection.slots) {
      if (slot.active) ++(stats_.*kind);
      slot.active = false;
    }
    connection.active = 0;
    if (connection.state == Connection::State::Connecting) --pending_connects_;
    close_connection(connection);
    connection.retry_at = Clock::now() + (kind == &Stats::err_timeout ? std::chrono::milliseconds(0)
                                                                      : kReconnectDelay);
  }

  void close_connection(Connection& connection) {
    if (connection.fd >= 0) close(connection.fd);
    connection.fd = -1;
    connection.state = Connection::State::Waiting;
    connection.out.clear();
    connection.out_offset = 0;
    connection.writable = false;
  }

  const Address& address_;
  const Workload& workload_;
  std::chrono::milliseconds timeout_;
  Shared& shared_;
  std::optional<std::uint64_t> per_connection_;
  bool streaming_;
  std::vector<Connection> connections_;
  int epoll_;
  std::vector<std::byte> buffer_;
  Stats stats_;
  std::size_t pending_connects_ = 0;
  bool stopping_ = false;
  Clock::time_point stopped_at_;
  Clock::time_point drain_until_;
  Clock::time_point next_timeout_scan_;
  Clock::time_point last_completion_;
  std::uint64_t events_ = 0;  // streaming
};

// Raises the soft limit on open files to `wanted`, and the hard limit when allowed (root).
void raise_file_limit(std::size_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) return;
  if (limit.rlim_max < wanted) limit.rlim_max = wanted;
  limit.rlim_cur = wanted;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    std::fprintf(stderr, "loadgen: could only raise the open file limit to %llu\n",
                 static_cast<unsigned long long>(limit.rlim_cur));
  }
}

double to_ms(std::uint64_t micros) { return static_cast<double>(micros) / 1000.0; }

void print_errors(const Stats& stats) {
  std::printf(
      " errors=%llu err_connect=%llu err_timeout=%llu err_closed=%llu err_record=%llu"
      " err_protocol=%llu err_http=%llu err_body=%llu",
      static_cast<unsigned long long>(stats.errors()),
      static_cast<unsigned long long>(stats.err_connect),
      static_cast<unsigned long long>(stats.err_timeout),
      static_cast<unsigned long long>(stats.err_closed),
      static_cast<unsigned long long>(stats.err_record),
      static_cast<unsigned long long>(stats.err_protocol),
      static_cast<unsigned long long>(stats.err_http),
      static_cast<unsigned long long>(stats.err_body));
}

int run_idle(const Options& options, const Address& address) {
  const std::size_t count = *options.idle;
  raise_file_limit(count + 64);
  const Workload workload = make_workload(options, 1);
  Shared shared;
  shared.start = shared.measure_from = Clock::now();
  shared.stop_issuing = Clock::time_point::max();
  Client client(address, workload, count, 1, options.timeout, shared, 1);
  client.run_idle(std::chrono::duration<double>(options.hold_s),
                  [&](const Stats& stats, std::size_t open) {
                    std::printf("phase=ready connections=%zu open=%zu ok=%llu", count, open,
                                static_cast<unsigned long long>(stats.ok));
                    print_errors(stats);
                    std::printf("\n");
                    std::fflush(stdout);
                  });
  std::printf("phase=end connections=%zu open=%zu\n", count, client.open_connections());
  return 0;
}

// Holds options.streams streams for options.hold_s seconds once all are open (or failed).
// Prints "phase=ready" then, after the hold, "phase=end" with the events the open streams
// received during the hold, per stream and second.
int run_streams(const Options& options, const Address& address) {
  const std::size_t count = *options.streams;
  raise_file_limit(count + 64);
  const Workload workload = make_workload(options, 1);
  Shared shared;
  shared.start = shared.measure_from = Clock::now();
  shared.stop_issuing = Clock::time_point::max();
  Client client(address, workload, count, 1, options.timeout, shared, 1, true);
  std::uint64_t events_at_ready = 0;
  Clock::time_point ready_at;
  client.run_idle(std::chrono::duration<double>(options.hold_s),
                  [&](const Stats& stats, std::size_t open) {
                    events_at_ready = client.events();
                    ready_at = Clock::now();
                    std::printf("phase=ready connections=%zu open=%zu streams=%zu", count, open,
                                client.open_streams());
                    print_errors(stats);
                    std::printf("\n");
                    std::fflush(stdout);
                  });
  const std::size_t streams = client.open_streams();
  const double held = std::chrono::duration<double>(Clock::now() - ready_at).count();
  const auto events = client.events() - events_at_ready;
  std::printf(
      "phase=end connections=%zu open=%zu streams=%zu events=%llu"
      " events_per_stream_s=%.3f\n",
      count, client.open_connections(), streams, static_cast<unsigned long long>(events),
      streams > 0 && held > 0 ? static_cast<double>(events) / static_cast<double>(streams) / held
                              : 0.0);
  return 0;
}

int run_load(const Options& options, const Address& address) {
  raise_file_limit(options.connections + 64);
  const Workload workload = make_workload(options, options.inflight);
  const std::size_t threads = std::min(options.threads, options.connections);
  Shared shared;
  shared.start = Clock::now();
  const auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  shared.measure_from = shared.start + seconds(options.warmup_s);
  shared.stop_issuing = shared.measure_from + seconds(options.duration_s);
  shared.budget = options.requests;

  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t t = 0; t < threads; ++t) {
    const std::size_t share = options.connections / threads + (t < options.connections % threads);
    clients.push_back(std::make_unique<Client>(address, workload, share, options.inflight,
                                               options.timeout, shared, std::nullopt));
  }
  {
    std::vector<std::jthread> runners;
    for (auto& client : clients) runners.emplace_back([&client] { client->run_load(); });
  }
  Stats total;
  Clock::time_point end = shared.measure_from;
  for (const auto& client : clients) {
    total.merge(client->stats());
    end = std::max(end, client->measured_until());
  }
  const double elapsed = std::chrono::duration<double>(end - shared.measure_from).count();
  const double per_second = elapsed > 0 ? 1.0 / elapsed : 0;
  std::printf(
      "connections=%zu inflight=%zu body_size=%zu query=%s requests=%llu ok=%llu rps=%.0f"
      " p50_ms=%.3f p99_ms=%.3f max_ms=%.3f mb_per_s=%.1f elapsed_s=%.3f",
      options.connections, options.inflight, options.body_size,
      options.query.empty() ? "-" : options.query.c_str(),
      static_cast<unsigned long long>(total.ok + total.errors()),
      static_cast<unsigned long long>(total.ok), static_cast<double>(total.ok) * per_second,
      to_ms(total.latency.percentile(0.50)), to_ms(total.latency.percentile(0.99)),
      to_ms(total.latency.max()), static_cast<double>(total.body_bytes) * per_second / 1e6,
      elapsed);
  print_errors(total);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      parse_options(std::span<char*>(argv + 1, static_cast<std::size_t>(argc - 1)));
  if (!options) return 2;
  const auto address = parse_address(options->connect);
  if (!address) {
    std::fprintf(stderr, "loadgen: bad address '%s'\n", options->connect.c_str());
    return 2;
  }
  if (options->streams) return run_streams(*options, *address);
  return options->idle ? run_idle(*options, *address) : run_load(*options, *address);
}
