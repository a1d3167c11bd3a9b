// SPDX-License-Identifier: MIT
#include "io/systemd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fcgimux::io {

namespace {

template <class Int>
bool parse_env(const char* name, Int& out) noexcept {
  const char* text = std::getenv(name);
  if (text == nullptr) return false;
  const char* end = text + std::strlen(text);
  const auto [stop, error] = std::from_chars(text, end, out);
  return text != end && error == std::errc() && stop == end;
}

}  // namespace

bool notify_systemd(std::string_view state) noexcept {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) return false;
  const std::size_t length = std::strlen(path);
  sockaddr_un address{};
  if (length == 0 || length >= sizeof address.sun_path) return false;
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path, length);
  // "@name" is Linux's abstract namespace: a leading NUL byte in sun_path.
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const auto address_length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), address_length);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

std::uint64_t systemd_watchdog_usec() noexcept {
  std::uint64_t usec = 0;
  if (!parse_env("WATCHDOG_USEC", usec)) return 0;
  long pid = 0;
  if (std::getenv("WATCHDOG_PID") != nullptr && (!parse_env("WATCHDOG_PID", pid) || pid != ::getpid())) {
    return 0;
  }
  return usec;
}

}  // namespace fcgimux::io
