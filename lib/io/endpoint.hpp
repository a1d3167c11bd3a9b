// SPDX-License-Identifier: MIT
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fcgimux::io {

// A parsed listen address: "tcp:HOST:PORT" (HOST an IPv4 literal, or an IPv6 literal in
// brackets) or "unix:PATH".
// Threading: Immutable after construction; safe to share.
struct Endpoint {
  enum class Kind : unsigned char { Tcp, Unix };
  Kind kind = Kind::Tcp;
  std::string host;  // without brackets
  int port = 0;
  bool ipv6 = false;
  std::string path;  // Unix only

  // The canonical text, as Config::listen and Server::local_endpoints() spell it.
  std::string to_string() const;
};

// Parses one address; nothing when it does not parse (the caller says why, with the text).
std::optional<Endpoint> parse_endpoint(std::string_view text);

}  // namespace fcgimux::io
