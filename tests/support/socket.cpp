// SPDX-License-Identifier: MIT
#include "socket.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace fcgimux::test {
namespace {

[[noreturn]] void fail_errno(std::string_view what) {
  throw TestError(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Splits "tcp:HOST:PORT" or "tcp:[HOST]:PORT" into host and port.
std::pair<std::string, std::string> split_tcp(std::string_view address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) throw TestError(fmt::format("no port in '{}'", address));
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {std::string(host), std::string(address.substr(colon + 1))};
}

}  // namespace

Socket Socket::connect(std::string_view endpoint, std::chrono::milliseconds timeout) {
  sockaddr_storage address{};
  socklen_t address_size = 0;
  if (endpoint.starts_with("unix:")) {
    const std::string_view path = endpoint.substr(5);
    sockaddr_un unix_address{};
    if (path.size() >= sizeof(unix_address.sun_path)) throw TestError("unix path too long");
    unix_address.sun_family = AF_UNIX;
    path.copy(unix_address.sun_path, path.size());
    std::memcpy(&address, &unix_address, sizeof(unix_address));
    address_size = sizeof(unix_address);
  } else if (endpoint.starts_with("tcp:")) {
    const auto [host, port] = split_tcp(endpoint.substr(4));
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
      throw TestError(fmt::format("cannot resolve '{}': {}", endpoint, gai_strerror(error)));
    }
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
    std::memcpy(&address, found->ai_addr, found->ai_addrlen);
    address_size = found->ai_addrlen;
  } else {
    throw TestError(fmt::format("unknown endpoint '{}'", endpoint));
  }

  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  Socket socket(fd, timeout);
  if (address.ss_family != AF_UNIX) {
    // Requests are small writes answered at once: Nagle's delay would only slow tests down.
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), address_size) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) fail_errno(fmt::format("connect {}", endpoint));
    socket.wait(POLLOUT);
    int error = 0;
    socklen_t error_size = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_size);
    if (error != 0) {
      throw TestError(fmt::format("connect {}: {}", endpoint, std::strerror(error)));
    }
  }
  return socket;
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      timeout_(other.timeout_),
      peer_closed_(other.peer_closed_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    timeout_ = other.timeout_;
    peer_closed_ = other.peer_closed_;
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

void Socket::send_all(std::string_view bytes, std::string& received) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) fail_errno("send");
    const short ready = wait(peer_closed_ ? POLLOUT : POLLOUT | POLLIN);
    if ((ready & POLLIN) != 0) read_available(received);
  }
}

bool Socket::receive(std::string& received) {
  while (!read_available(received)) {
    if (peer_closed_) return false;
    wait(POLLIN);
  }
  return true;
}

void Socket::shutdown_write() {
  if (::shutdown(fd_, SHUT_WR) != 0) fail_errno("shutdown");
}

std::size_t Socket::send_some(std::string_view bytes) {
  for (;;) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) return static_cast<std::size_t>(sent);
    if (errno == EAGAIN) return 0;
    if (errno != EINTR) fail_errno("send");
  }
}

bool Socket::wait_writable(std::chrono::milliseconds timeout) {
  pollfd entry{.fd = fd_, .events = POLLOUT, .revents = 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
    if (ready >= 0) return ready > 0;
    if (errno != EINTR) fail_errno("poll");
  }
}

void Socket::shrink_buffers(int bytes) {
  for (const int option : {SO_SNDBUF, SO_RCVBUF}) {
    if (setsockopt(fd_, SOL_SOCKET, option, &bytes, sizeof(bytes)) != 0) fail_errno("setsockopt");
  }
}

void Socket::set_receive_buffer(int bytes) {
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) != 0) {
    fail_errno("setsockopt");
  }
}

short Socket::wait(short events) {
  pollfd entry{.fd = fd_, .events = events, .revents = 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, static_cast<int>(timeout_.count()));
    if (ready > 0) {
      // An error or hang-up is reported by the read or write that follows.
      return (entry.revents & (POLLERR | POLLHUP)) != 0 ? events : entry.revents;
    }
    if (ready == 0) {
      throw TestError(fmt::format("peer made no progress for {} ms", timeout_.count()));
    }
    if (errno != EINTR) fail_errno("poll");
  }
}

bool Socket::read_available(std::string& received) {
  std::array<char, 64 * 1024> buffer;
  for (;;) {
    const ssize_t count = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (count > 0) {
      received.append(buffer.data(), static_cast<std::size_t>(count));
      return true;
    }
    if (count == 0) {
      peer_closed_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return false;
    fail_errno("recv");
  }
}

}  // namespace fcgimux::test
