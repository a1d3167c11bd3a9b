// SPDX-License-Identifier: MIT
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fcgimux::io {

// A parsed listen address: "tcp:HOST:PORT" (HOST an IPv4 literal, or an IPv6 literal in
// brackets), "unix:PATH" or "fd:N" (an inherited listening socket).
// Threading: Immutable after construction; safe to share.
struct Endpoint {
  enum class Kind : unsigned char { Tcp, Unix, Fd };
  Kind kind = Kind::Tcp;
  std::string host;  // Tcp: without brackets
  int port = 0;      // Tcp
  bool ipv6 = false; // Tcp
  std::string path;  // Unix
  int fd = -1;       // Fd

  // The canonical text, as Config::listen and Server::local_endpoints() spell it.
  std::string to_string() const;
};

// Parses one address. Returns nothing when it does not parse, with `error` saying what is
// wrong in words a user can act on ("the host \"localhost\" is a name, not an IP address; ...").
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& error);

// The listening sockets systemd passed to this process (LISTEN_PID is ours, LISTEN_FDS > 0:
// descriptors 3, 4, ...), as Fd endpoints; empty when there are none.
std::vector<Endpoint> systemd_endpoints();

// Turns Config::listen into endpoints: "systemd" expands to systemd_endpoints(), and an empty
// list picks what the process was started with (see Config::listen). Returns nothing, with
// `error` saying why, when an address does not parse or "systemd" finds no socket.
std::optional<std::vector<Endpoint>> resolve_listen(const std::vector<std::string>& listen,
                                                    std::string& error);

}  // namespace fcgimux::io
