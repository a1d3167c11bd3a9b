// SPDX-License-Identifier: MIT
#include "io/endpoint.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <charconv>

namespace fcgimux::io {

std::string Endpoint::to_string() const {
  if (kind == Kind::Unix) return "unix:" + path;
  if (ipv6) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint endpoint;
  if (text.starts_with("unix:")) {
    endpoint.kind = Endpoint::Kind::Unix;
    endpoint.path = std::string(text.substr(5));
    // sun_path holds the path and its terminating NUL.
    if (endpoint.path.empty() || endpoint.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return std::nullopt;
    }
    return endpoint;
  }
  if (!text.starts_with("tcp:")) return std::nullopt;
  text.remove_prefix(4);
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    endpoint.ipv6 = true;
  }
  endpoint.host = std::string(host);
  unsigned char address[sizeof(in6_addr)];
  if (inet_pton(endpoint.ipv6 ? AF_INET6 : AF_INET, endpoint.host.c_str(), address) != 1) {
    return std::nullopt;
  }
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), endpoint.port);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() ||
      endpoint.port < 0 || endpoint.port > 65535) {
    return std::nullopt;
  }
  return endpoint;
}

}  // namespace fcgimux::io
