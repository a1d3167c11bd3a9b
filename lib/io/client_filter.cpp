// SPDX-License-Identifier: MIT
#include "io/client_filter.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace fcgimux::io {

namespace {

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> entries;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view entry = text.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    if (!entry.empty()) entries.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return entries;
}

}  // namespace

std::optional<ClientFilter> ClientFilter::make(const std::vector<std::string>& addresses,
                                               std::string& error) {
  std::vector<std::string> entries = addresses;
  if (entries.empty()) {
    if (const char* env = std::getenv("FCGI_WEB_SERVER_ADDRS")) entries = split_list(env);
  }
  ClientFilter filter;
  for (const std::string& entry : entries) {
    std::array<unsigned char, 4> v4{};
    std::array<unsigned char, 16> v6{};
    if (::inet_pton(AF_INET, entry.c_str(), v4.data()) == 1) {
      filter.v4_.push_back(v4);
    } else if (::inet_pton(AF_INET6, entry.c_str(), v6.data()) == 1) {
      filter.v6_.push_back(v6);
    } else {
      error = "allowed client \"" + entry + "\" is not an IPv4 or IPv6 address";
      return std::nullopt;
    }
  }
  return filter;
}

bool ClientFilter::allows(const sockaddr* peer) const noexcept {
  if (!active()) return true;
  if (peer == nullptr) return false;
  if (peer->sa_family == AF_INET) {
    std::array<unsigned char, 4> v4{};
    std::memcpy(v4.data(), &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, v4.size());
    return std::find(v4_.begin(), v4_.end(), v4) != v4_.end();
  }
  if (peer->sa_family != AF_INET6) return false;
  const in6_addr& address = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&address)) {
    std::array<unsigned char, 4> v4{};
    std::memcpy(v4.data(), address.s6_addr + 12, v4.size());
    return std::find(v4_.begin(), v4_.end(), v4) != v4_.end();
  }
  std::array<unsigned char, 16> v6{};
  std::memcpy(v6.data(), address.s6_addr, v6.size());
  return std::find(v6_.begin(), v6_.end(), v6) != v6_.end();
}

}  // namespace fcgimux::io
