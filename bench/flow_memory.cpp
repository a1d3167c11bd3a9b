// SPDX-License-Identifier: MIT
// How much memory does a server hold while a large upload goes to a handler that reads slowly
// and a large download goes to a client that reads slowly, both at once? With flow control it
// should be the configured budgets plus a small fixed overhead, whatever the sizes.
//
//   fcgimux_bench_flow_memory [--bytes N] [--seconds LIMIT]
//
// The server runs in this process (so its RSS is this process's RSS); the two clients stream
// from and into fixed buffers, so they add nothing that grows. Prints the baseline RSS, the
// peak RSS during the transfers and the largest input/output buffered counts the server saw.
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <thread>

#include "fcgimux/fcgimux.hpp"

namespace {

using namespace std::chrono_literals;
using fcgimux::protocol::RecordType;
constexpr std::size_t kPiece = 64 * 1024;

std::size_t rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  }
  return 0;
}

// Reads slowly from its body, or writes a large body, as the query string says.
class SlowHandler : public fcgimux::Handler {
 public:
  explicit SlowHandler(std::uint64_t bytes) : bytes_(bytes) {}
  std::atomic<std::uint64_t> uploaded{0};  // what the upload handler read
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    response.header("Content-Type", "application/octet-stream");
    std::string piece(kPiece, 'x');
    if (request.param("QUERY_STRING") == "upload") {
      std::uint64_t total = 0;
      while (const std::size_t n = request.read(std::span(piece.data(), piece.size()))) {
        total += n;
        std::this_thread::sleep_for(200us);  // a slow consumer: ~300 MB/s at most
      }
      uploaded = total;
      response.print("{}\n", total);
    } else {
      for (std::uint64_t left = bytes_; left > 0 && !request.stop_token().stop_requested();) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, kPiece));
        response.write(std::string_view(piece.data(), n));
        left -= n;
      }
    }
  }

 private:
  std::uint64_t bytes_;
};

int connect_to(const std::string& endpoint) {
  const std::size_t colon = endpoint.rfind(':');
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("connect failed");
  }
  return fd;
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string request_head(std::string_view query) {
  std::string out;
  fcgimux::protocol::append_begin_request(out, 1, 1, 0);
  std::string params;
  fcgimux::protocol::append_name_value(params, "QUERY_STRING", query);
  fcgimux::protocol::append_records(out, RecordType::Params, 1, params);
  fcgimux::protocol::append_records(out, RecordType::Params, 1, std::string_view());
  return out;
}

// Reads the whole response, slowly, and returns the STDOUT bytes seen.
std::uint64_t read_response(int fd, std::chrono::microseconds pause) {
  fcgimux::protocol::Decoder decoder;
  std::string buffer(kPiece, '\0');
  std::uint64_t stdout_bytes = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) return stdout_bytes;
    std::span<const std::byte> in =
        std::as_bytes(std::span(buffer.data(), static_cast<std::size_t>(n)));
    fcgimux::protocol::Record record;
    while (decoder.next(in, record) == fcgimux::protocol::DecodeStatus::Record) {
      if (record.header.type == RecordType::Stdout) stdout_bytes += record.content.size();
      if (record.header.type == RecordType::EndRequest) return stdout_bytes;
    }
    std::this_thread::sleep_for(pause);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t bytes = 1ull << 30;
  int limit_seconds = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string_view value = argv[i + 1];
    if (flag == "--bytes") std::from_chars(value.data(), value.data() + value.size(), bytes);
    if (flag == "--seconds")
      std::from_chars(value.data(), value.data() + value.size(), limit_seconds);
  }
  SlowHandler handler(bytes);
  fcgimux::Config config{.listen = {"tcp:127.0.0.1:0"}, .workers = 4, .handle_signals = false};
  fcgimux::Server server(config, handler);
  std::jthread runner([&] { server.run(); });
  const std::string endpoint = server.local_endpoints().at(0);
  const std::size_t baseline = rss_kib();

  std::atomic<bool> done{false};
  std::uint64_t downloaded = 0;
  std::jthread upload([&] {
    const int fd = connect_to(endpoint);
    send_all(fd, request_head("upload"));
    const std::string piece(kPiece, 'u');
    std::string records;
    for (std::uint64_t left = bytes; left > 0 && !done;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, 65528));
      records.clear();
      fcgimux::protocol::append_records(records, RecordType::Stdin, 1,
                                        std::string_view(piece.data(), n));
      send_all(fd, records);
      left -= n;
    }
    records.clear();
    fcgimux::protocol::append_records(records, RecordType::Stdin, 1, std::string_view());
    send_all(fd, records);
    read_response(fd, 0us);
    ::close(fd);
  });
  std::jthread download([&] {
    const int fd = connect_to(endpoint);
    std::string head = request_head("download");
    fcgimux::protocol::append_records(head, RecordType::Stdin, 1, std::string_view());
    send_all(fd, head);
    downloaded = read_response(fd, 200us);
    ::close(fd);
  });

  std::size_t peak = baseline;
  std::uint64_t most_in = 0;
  std::uint64_t most_out = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limit_seconds);
  const auto started = std::chrono::steady_clock::now();
  while (server.stats().requests_completed < 2 && std::chrono::steady_clock::now() < deadline) {
    peak = std::max(peak, rss_kib());
    const fcgimux::Stats stats = server.stats();
    most_in = std::max(most_in, stats.input_buffered);
    most_out = std::max(most_out, stats.output_buffered);
    std::this_thread::sleep_for(20ms);
  }
  done = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  upload.join();
  download.join();
  server.stop();
  runner.join();
  fmt::print(
      "bytes each way {}  seconds {:.1f}\n"
      "rss baseline {} KiB  peak {} KiB  growth {} KiB\n"
      "budgets: request_body {} KiB  connection_output {} KiB\n"
      "largest input_buffered {} KiB  output_buffered {} KiB\n"
      "upload read by the handler: {} bytes  download received: {} bytes\n",
      bytes, seconds, baseline, peak, peak - baseline, config.request_body_budget / 1024,
      config.connection_output_budget / 1024, most_in / 1024, most_out / 1024,
      handler.uploaded.load(), downloaded);
  return 0;
}
