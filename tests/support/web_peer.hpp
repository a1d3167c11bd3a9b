// SPDX-License-Identifier: MIT
#pragma once

// Helpers for tests that start a real program next to the server (an example program, a web
// server, spawn-fcgi): whether it is installed, where it listens, a free loopback port for it,
// waiting until it accepts, and one HTTP/1.0 exchange with it.

#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "child_process.hpp"
#include "eventually.hpp"
#include "fcgi_client.hpp"
#include "socket.hpp"

namespace fcgimux::test {

// Whether the program at `path` is installed. In CI (CI=true) its absence fails the test,
// since scripts/dev installs the Debian package `package`; elsewhere the test is skipped with
// a warning.
inline bool installed(std::string_view path, std::string_view package) {
  if (std::filesystem::exists(path)) return true;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string_view(ci) == "true") {
    FAIL(path << " is missing: scripts/dev installs it (Debian package " << package << ")");
  }
  WARN("skipped: " << path << " is missing (install the Debian package " << package << ")");
  return false;
}

// Reads a child's output up to its "listening on ADDRESS" line (as the example programs print
// it) and returns ADDRESS. Throws TestError when the output ends first.
inline std::string announced_address(ChildProcess& child) {
  constexpr std::string_view kPrefix = "listening on ";
  for (;;) {
    const std::optional<std::string> line = child.read_line();
    if (!line) throw TestError("the output ended without a 'listening on' line");
    if (line->starts_with(kPrefix)) return line->substr(kPrefix.size());
  }
}

// A loopback port that was free a moment ago.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  const bool bound = fd >= 0 &&
                     ::bind(fd, reinterpret_cast<const sockaddr*>(&address), size) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  if (fd >= 0) ::close(fd);
  if (!bound) throw TestError("cannot find a free loopback port");
  return ntohs(address.sin_port);
}

// Waits until `endpoint` accepts a connection; throws TestError after `timeout`. For programs
// that cannot say when they listen.
inline void wait_accepting(const std::string& endpoint, std::string_view what,
                           std::chrono::milliseconds timeout = kTimeout) {
  const bool accepting = eventually(
      [&] {
        try {
          Socket::connect(endpoint);
          return true;
        } catch (const TestError&) {
          return false;
        }
      },
      timeout);
  if (!accepting) throw TestError(fmt::format("{} did not accept on {}", what, endpoint));
}

struct HttpResponse {
  int status = 0;
  CgiResponse message;  // headers and body; its status field is unused
};

// Sends `request` over a new connection to `endpoint` ("tcp:HOST:PORT") and reads the
// response up to the close (HTTP/1.0). Throws TestError when the peer makes no progress for
// `timeout`.
inline HttpResponse http_exchange(const std::string& endpoint, std::string_view request,
                                  std::chrono::milliseconds timeout = kTimeout) {
  Socket socket = Socket::connect(endpoint, timeout);
  std::string received;
  socket.send_all(request, received);
  while (socket.receive(received)) {
  }
  const std::size_t line_end = received.find("\r\n");
  if (!received.starts_with("HTTP/1.") || line_end == std::string::npos || line_end < 12) {
    throw TestError("not an HTTP response: " + received.substr(0, 200));
  }
  HttpResponse response;
  response.status = std::stoi(received.substr(9, 3));
  response.message = parse_cgi_response(std::string_view(received).substr(line_end + 2));
  return response;
}

}  // namespace fcgimux::test
