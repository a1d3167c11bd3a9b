// SPDX-License-Identifier: MIT
#pragma once

#include <sys/socket.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace fcgimux::io {

// The web server addresses allowed to connect (FastCGI 1.0 §3.2, FCGI_WEB_SERVER_ADDRS).
// Threading: Immutable after construction; safe to share.
class ClientFilter {
 public:
  // Builds the filter from `addresses` (IPv4 or IPv6 literals), or, when that is empty, from
  // the comma-separated FCGI_WEB_SERVER_ADDRS in the environment. Returns nothing, with
  // `error` naming the entry, when an address does not parse.
  static std::optional<ClientFilter> make(const std::vector<std::string>& addresses,
                                          std::string& error);

  // Whether a list is in force at all.
  bool active() const noexcept { return !v4_.empty() || !v6_.empty(); }
  // Whether a connection from `peer` may stay; nullptr means "not over TCP/IP", which FastCGI
  // 1.0 §3.2 refuses too when a list is in force. An IPv4-mapped IPv6 peer matches its IPv4
  // address.
  bool allows(const sockaddr* peer) const noexcept;

 private:
  std::vector<std::array<unsigned char, 4>> v4_;
  std::vector<std::array<unsigned char, 16>> v6_;
};

}  // namespace fcgimux::io
