// SPDX-License-Identifier: MIT
#include "io/endpoint.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include "fcgimux/protocol.hpp"

namespace fcgimux::io {

namespace {

// sd_listen_fds(3): passed sockets start at descriptor 3.
constexpr int kSystemdFirstFd = 3;

template <class Int>
bool parse_int(std::string_view text, Int& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

bool is_listening_socket(int fd) noexcept {
  int listening = 0;
  socklen_t length = sizeof listening;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening != 0;
}

}  // namespace

std::string Endpoint::to_string() const {
  switch (kind) {
    case Kind::Unix:
      return "unix:" + path;
    case Kind::Fd:
      return "fd:" + std::to_string(fd);
    case Kind::Tcp:
      break;
  }
  if (ipv6) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& error) {
  Endpoint endpoint;
  if (text.starts_with("unix:")) {
    endpoint.kind = Endpoint::Kind::Unix;
    endpoint.path = std::string(text.substr(5));
    if (endpoint.path.empty()) {
      error = "unix: wants a path, e.g. unix:/run/app/app.sock";
      return std::nullopt;
    }
    // unix(7): sun_path holds the path and its terminating NUL; a longer path cannot be bound
    // (libuv 1.44 would silently bind a truncated one).
    constexpr std::size_t kLongestPath = sizeof(sockaddr_un::sun_path) - 1;
    if (endpoint.path.size() > kLongestPath) {
      error = fmt::format(
          "the path is {} bytes long, and a Unix socket's path holds at most {}: choose a "
          "shorter one (e.g. under /run)",
          endpoint.path.size(), kLongestPath);
      return std::nullopt;
    }
    return endpoint;
  }
  if (text.starts_with("fd:")) {
    endpoint.kind = Endpoint::Kind::Fd;
    if (!parse_int(text.substr(3), endpoint.fd) || endpoint.fd < 0) {
      error = "fd: wants a descriptor number, e.g. fd:0";
      return std::nullopt;
    }
    return endpoint;
  }
  if (!text.starts_with("tcp:")) {
    error = "expected tcp:HOST:PORT, tcp:[V6]:PORT, unix:PATH, fd:N or systemd";
    return std::nullopt;
  }
  text.remove_prefix(4);
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.ends_with(']')) {
    error = "tcp: wants a host and a port, e.g. tcp:127.0.0.1:9000";
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    endpoint.ipv6 = true;
  }
  endpoint.host = std::string(host);
  const std::string_view port = text.substr(colon + 1);
  unsigned char address[sizeof(in6_addr)];
  if (inet_pton(endpoint.ipv6 ? AF_INET6 : AF_INET, endpoint.host.c_str(), address) != 1) {
    if (endpoint.ipv6) {
      error = fmt::format("\"{}\" in brackets is not an IPv6 address", host);
    } else if (host.find(':') != std::string_view::npos) {
      error = fmt::format("an IPv6 address goes in brackets: tcp:[{}]:{}", host, port);
    } else if (host.empty()) {
      error = fmt::format(
          "the host is missing: tcp:127.0.0.1:{} listens on loopback, tcp:0.0.0.0:{} "
          "on every IPv4 address",
          port, port);
    } else {
      // Names are not resolved: a name may stand for several addresses, or change.
      error = fmt::format(
          "the host \"{}\" is a name, not an IP address, and names are not resolved: write an "
          "IPv4 address (tcp:127.0.0.1:{}) or an IPv6 one in brackets (tcp:[::1]:{})",
          host, port, port);
    }
    return std::nullopt;
  }
  if (!parse_int(port, endpoint.port) || endpoint.port < 0 || endpoint.port > 65535) {
    error =
        fmt::format("the port \"{}\" is not a number from 0 to 65535 (0 picks a free one)", port);
    return std::nullopt;
  }
  return endpoint;
}

std::vector<Endpoint> systemd_endpoints() {
  std::vector<Endpoint> endpoints;
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  long listen_pid = 0;
  int count = 0;
  if (pid == nullptr || fds == nullptr || !parse_int(std::string_view(pid), listen_pid) ||
      listen_pid != ::getpid() || !parse_int(std::string_view(fds), count)) {
    return endpoints;
  }
  for (int i = 0; i < count; ++i) {
    Endpoint endpoint;
    endpoint.kind = Endpoint::Kind::Fd;
    endpoint.fd = kSystemdFirstFd + i;
    endpoints.push_back(endpoint);
  }
  return endpoints;
}

std::optional<std::vector<Endpoint>> resolve_listen(const std::vector<std::string>& listen,
                                                    std::string& error) {
  std::vector<Endpoint> endpoints;
  if (listen.empty()) {
    endpoints = systemd_endpoints();
    if (!endpoints.empty()) return endpoints;
    // FastCGI 1.0 §2.2: an application started by a web server finds its listening socket
    // on descriptor FCGI_LISTENSOCK_FILENO.
    if (is_listening_socket(protocol::kListenSockFileno)) {
      endpoints.push_back(*parse_endpoint("fd:0", error));
    } else {
      endpoints.push_back(*parse_endpoint("tcp:127.0.0.1:9000", error));
    }
    return endpoints;
  }
  for (const std::string& address : listen) {
    if (address == "systemd") {
      const std::vector<Endpoint> passed = systemd_endpoints();
      if (passed.empty()) {
        error = "Config::listen: \"systemd\", but systemd passed no socket (LISTEN_FDS)";
        return std::nullopt;
      }
      endpoints.insert(endpoints.end(), passed.begin(), passed.end());
      continue;
    }
    std::string why;
    std::optional<Endpoint> endpoint = parse_endpoint(address, why);
    if (!endpoint) {
      error = fmt::format("Config::listen: \"{}\": {}", address, why);
      return std::nullopt;
    }
    endpoints.push_back(std::move(*endpoint));
  }
  return endpoints;
}

}  // namespace fcgimux::io
