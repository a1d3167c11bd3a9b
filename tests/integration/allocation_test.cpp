// SPDX-License-Identifier: MIT
// The steady path of a small GET allocates nothing on the heap: a real server on loopback, a
// client sending the params nginx sends, one keep-alive connection, and every operator new in
// the process counted (this program replaces the global allocation functions). After a warm-up
// that fills the server's pools and buffers, 10,000 requests must make no allocation at all:
// not on the I/O thread, not on the workers, not in the library's code around the handler.
// The handler itself allocates nothing either, so any count is the library's.
//
// The pools fill as far as requests overlap: on one connection, a request may arrive while the
// notice that ends the one before it is still on its way (its worker was preempted), or a
// worker may find another still sending, which takes one more exchange or queued piece from a
// pool, once. So the warm-up first runs requests on many connections at once and many on one
// connection, which fills the pools deeper than one connection ever needs, then goes on in
// rounds until a whole round allocates nothing (or gives up).
//
// Prints the count per request; exits 1 when it is not zero. (Allocations through malloc by
// libuv or the C library are not counted: the library's own code allocates with new.)

#include <execinfo.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"
#include "fcgimux/request.hpp"
#include "fcgimux/response.hpp"
#include "test_server.hpp"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};
// Where the first allocations counted came from, printed when the test fails.
constexpr int kTraced = 4;
constexpr int kTraceDepth = 24;
void* g_traces[kTraced][kTraceDepth];
int g_trace_depths[kTraced];

void* allocate(std::size_t size, std::align_val_t align = std::align_val_t{0}) {
  if (g_counting.load(std::memory_order_relaxed)) {
    const std::uint64_t n = g_allocations.fetch_add(1, std::memory_order_relaxed);
    // backtrace() itself allocates only through malloc, which is not counted.
    if (n < kTraced) g_trace_depths[n] = backtrace(g_traces[n], kTraceDepth);
  }
  if (size == 0) size = 1;
  void* memory = nullptr;
  const auto alignment = static_cast<std::size_t>(align);
  if (alignment > alignof(std::max_align_t)) {
    if (posix_memalign(&memory, alignment, size) != 0) memory = nullptr;
  } else {
    memory = std::malloc(size);
  }
  return memory;
}

}  // namespace

void* operator new(std::size_t size) {
  if (void* memory = allocate(size)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* memory = allocate(size, align)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) { return operator new(size, align); }
// These replace the global functions: memory from operator new above comes from malloc, so
// free is its match. (GCC's check sees only the names, and warns.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::align_val_t) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t, std::align_val_t) noexcept { std::free(memory); }

namespace {

using fcgimux::protocol::kHeaderSize;
using fcgimux::protocol::RecordType;

constexpr int kWarmupRound = 2000;
constexpr int kMostWarmupRounds = 25;
constexpr int kCrowd = 32;  // connections at once in the first warm-up
constexpr int kRequests = 10000;
constexpr std::string_view kBody =
    "a small response body, the size of a short JSON answer or a redirect page, about one "
    "hundred bytes\n";

// Answers every request as a small dynamic page would, without allocating.
class SmallHandler final : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    if (request.param("QUERY_STRING") == "large") return write_large(response);
    response.header("Content-Type", "text/plain");
    response.write(kBody);
  }

 private:
  // 8 MiB, more than the socket buffers take at once: the connection's output finishes it
  // with an asynchronous write, whose state a connection makes when it first needs it.
  static void write_large(fcgimux::Response& response) {
    static const std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 128; ++i) response.write(chunk);
  }
};

// One request as nginx sends it: BEGIN_REQUEST with FCGI_KEEP_CONN, its usual params, an
// empty body.
std::string request_bytes(std::uint16_t id = 1, std::string_view query = "id=42") {
  std::string params;
  const std::array<std::pair<std::string_view, std::string_view>, 17> pairs{{
      {"QUERY_STRING", query},
      {"REQUEST_METHOD", "GET"},
      {"CONTENT_TYPE", ""},
      {"CONTENT_LENGTH", ""},
      {"SCRIPT_NAME", "/app"},
      {"REQUEST_URI", "/app?id=42"},
      {"DOCUMENT_URI", "/app"},
      {"DOCUMENT_ROOT", "/var/www/html"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"REQUEST_SCHEME", "http"},
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_SOFTWARE", "nginx/1.22.1"},
      {"REMOTE_ADDR", "127.0.0.1"},
      {"REMOTE_PORT", "51234"},
      {"SERVER_ADDR", "127.0.0.1"},
      {"SERVER_PORT", "80"},
      {"HTTP_USER_AGENT", "curl/7.88.1"},
  }};
  for (const auto& [name, value] : pairs) fcgimux::protocol::append_name_value(params, name, value);
  std::string out;
  fcgimux::protocol::append_begin_request(out, id, 1, fcgimux::protocol::kKeepConn);
  fcgimux::protocol::append_records(out, RecordType::Params, id, params);
  fcgimux::protocol::append_records(out, RecordType::Params, id, std::string_view());
  fcgimux::protocol::append_records(out, RecordType::Stdin, id, std::string_view());
  return out;
}

// A blocking loopback client that allocates nothing per request.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      std::perror("connect");
      std::exit(2);
    }
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` and reads records until END_REQUEST. False on a failure.
  bool exchange(std::string_view request) { return send(request) && await_end(); }
  bool send(std::string_view request) {
    return ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(request.size());
  }
  // Reads records until `ends` END_REQUESTs came.
  bool await_end(int ends = 1) {
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer_.data() + filled_, buffer_.size() - filled_, 0);
      if (n <= 0) return false;
      filled_ += static_cast<std::size_t>(n);
      // Walk the complete records; keep a partial one at the front.
      std::size_t at = 0;
      while (filled_ - at >= kHeaderSize) {
        const auto* header = reinterpret_cast<const unsigned char*>(buffer_.data() + at);
        const std::size_t length = (std::size_t{header[4]} << 8 | header[5]) + header[6];
        if (filled_ - at < kHeaderSize + length) break;
        if (header[1] == static_cast<unsigned char>(RecordType::EndRequest)) --ends;
        at += kHeaderSize + length;
      }
      std::copy(buffer_.begin() + static_cast<std::ptrdiff_t>(at),
                buffer_.begin() + static_cast<std::ptrdiff_t>(filled_), buffer_.begin());
      filled_ -= at;
      if (ends == 0) return filled_ == 0;
    }
  }

 private:
  int fd_ = -1;
  std::array<char, 65536> buffer_{};
  std::size_t filled_ = 0;
};

}  // namespace

int main() {
  SmallHandler handler;
  fcgimux::Config config = fcgimux::test::test_config();
  config.log_level = fcgimux::LogLevel::Warning;
  fcgimux::test::TestServer server(handler, config);
  const std::string& endpoint = server.endpoint();
  const auto port = static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  const std::string request = request_bytes();
  Client client(port);
  {
    std::vector<std::unique_ptr<Client>> crowd;
    for (int i = 0; i < kCrowd; ++i) crowd.push_back(std::make_unique<Client>(port));
    for (int round = 0; round < 100; ++round) {
      for (const auto& c : crowd) {
        if (!c->send(request)) return 2;
      }
      for (const auto& c : crowd) {
        if (!c->await_end()) return 2;
      }
    }
    // Requests multiplexed on one connection, whose workers queue behind each other's sends.
    std::string burst;
    for (std::uint16_t id = 1; id <= kCrowd; ++id) burst += request_bytes(id);
    for (int round = 0; round < 100; ++round) {
      if (!crowd.front()->send(burst) || !crowd.front()->await_end(kCrowd)) return 2;
    }
  }
  // Responses larger than the socket takes at once, on the connection measured.
  for (int i = 0; i < 3; ++i) {
    if (!client.exchange(request_bytes(1, "large"))) return 2;
  }
  for (int round = 0; round < kMostWarmupRounds; ++round) {
    g_allocations = 0;
    g_counting = true;
    for (int i = 0; i < kWarmupRound; ++i) {
      if (!client.exchange(request)) {
        std::fprintf(stderr, "allocation_test: warm-up request %d failed\n", i);
        return 2;
      }
    }
    g_counting = false;
    if (g_allocations.load() == 0) break;
  }
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < kRequests; ++i) {
    if (!client.exchange(request)) {
      std::fprintf(stderr, "allocation_test: request %d failed\n", i);
      return 2;
    }
  }
  g_counting = false;
  const std::uint64_t allocations = g_allocations.load();
  std::printf("allocation_test: %llu allocations over %d small GETs: %.2f per request\n",
              static_cast<unsigned long long>(allocations), kRequests,
              static_cast<double>(allocations) / kRequests);
  server.stop();
  if (allocations == 0) return 0;
  for (int i = 0; i < kTraced && i < static_cast<int>(allocations); ++i) {
    std::fprintf(stderr, "allocation_test: allocation %d from:\n", i + 1);
    backtrace_symbols_fd(g_traces[i], g_trace_depths[i], 2);
  }
  return 1;
}
