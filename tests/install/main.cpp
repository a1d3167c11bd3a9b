// SPDX-License-Identifier: MIT
// A program built against an installed fcgimux, as a user builds one: it serves one request on
// a free loopback port, sends that request itself with the public codec (fcgimux/protocol.hpp),
// and exits 0 only when the answer is the one the handler wrote. Run by tests/install/run.

#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <exception>
#include <fcgimux/fcgimux.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// Connects to "tcp:127.0.0.1:PORT", sends one Responder request, and returns its FCGI_STDOUT
// stream once FCGI_END_REQUEST arrives. Throws std::runtime_error on any failure.
std::string fetch(const std::string& endpoint) {
  namespace protocol = fcgimux::protocol;
  const std::string_view prefix = "tcp:127.0.0.1:";
  if (!endpoint.starts_with(prefix)) throw std::runtime_error("unexpected endpoint " + endpoint);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(prefix.size()))));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    throw std::runtime_error("cannot connect to " + endpoint);
  }

  std::string params;
  protocol::append_name_value(params, "REQUEST_METHOD", "GET");
  protocol::append_name_value(params, "QUERY_STRING", "name=installed");
  std::string request;
  protocol::append_begin_request(request, 1, static_cast<std::uint16_t>(protocol::Role::Responder),
                                 0);
  protocol::append_records(request, protocol::RecordType::Params, 1, params);
  protocol::append_records(request, protocol::RecordType::Params, 1, std::string_view());
  protocol::append_records(request, protocol::RecordType::Stdin, 1, std::string_view());
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    throw std::runtime_error("cannot send the request");
  }

  std::string out;
  protocol::Decoder decoder;
  std::vector<std::byte> buffer(64 * 1024);
  for (;;) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, 5'000) != 1) throw std::runtime_error("no answer within 5 s");
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n <= 0) throw std::runtime_error("the connection ended before FCGI_END_REQUEST");
    std::span<const std::byte> in(buffer.data(), static_cast<std::size_t>(n));
    protocol::Record record;
    for (protocol::DecodeStatus status;
         (status = decoder.next(in, record)) != protocol::DecodeStatus::NeedMore;) {
      if (status == protocol::DecodeStatus::Error) throw std::runtime_error("malformed answer");
      if (record.header.type == protocol::RecordType::Stdout) {
        out.append(reinterpret_cast<const char*>(record.content.data()), record.content.size());
      } else if (record.header.type == protocol::RecordType::EndRequest) {
        ::close(fd);
        return out;
      }
    }
  }
}

// Threading: Immutable; safe to share.
class Greeter : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    response.header("Content-Type", "text/plain");
    response.print("hello, {}", request.param("QUERY_STRING").value_or(""));
  }
};

}  // namespace

int main() {
  try {
    const fcgimux::Config config{.listen = {"tcp:127.0.0.1:0"},
                                 .workers = 1,
                                 .handle_signals = false,
                                 .notify_systemd = false};
    Greeter greeter;
    fcgimux::Server server(config, greeter);

    std::string answer;
    std::exception_ptr failure;
    std::jthread client([&] {
      try {
        const std::vector<std::string> endpoints = server.local_endpoints();
        if (endpoints.empty()) throw std::runtime_error("the server did not listen");
        answer = fetch(endpoints.front());
      } catch (...) {
        failure = std::current_exception();
      }
      server.stop();
    });
    server.run();
    client.join();
    if (failure) std::rethrow_exception(failure);

    if (answer.find("Content-Type: text/plain\r\n") == std::string::npos ||
        !answer.ends_with("\r\n\r\nhello, name=installed")) {
      fmt::print(stderr, "consumer: unexpected answer:\n{}\n", answer);
      return 1;
    }
    fmt::print("consumer: served and fetched one request\n");
    return 0;
  } catch (const std::exception& error) {
    fmt::print(stderr, "consumer: {}\n", error.what());
    return 1;
  }
}
