// SPDX-License-Identifier: MIT
#include "io/listener.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace fcgimux::io {

namespace {

// Whether something accepts connections on the Unix socket at `path`. A socket file nobody
// listens on is left over from a process that died; one that answers belongs to a live
// server and must not be taken over.
bool unix_socket_is_live(const std::string& path) noexcept {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // cannot tell: assume live, never remove what might be in use
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int error = errno;
  ::close(fd);
  return rc == 0 || error != ECONNREFUSED;
}

bool is_socket_file(const std::string& path) noexcept {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

// The directory a socket file at `path` goes in.
std::string parent_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Binding the Unix socket `path` failed with libuv error `rc`: says what is wrong in `what`
// (read as "<what> unix:PATH: <error>") and returns the error to report. libuv reports a
// missing directory as EACCES (uv_pipe_bind turns ENOENT into EACCES, as Windows says), and a
// file in the way as EADDRINUSE, like a live server: both would send a user the wrong way.
// ENOTDIR does not say which part of the path is no directory.
int explain_unix_bind_failure(const std::string& path, int rc, std::string& what) {
  what = "bind";
  if (rc == UV_EACCES || rc == UV_ENOTDIR) {
    const std::string dir = parent_directory(path);
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0) {
      const int error = errno;
      if (error == ENOENT) {
        what = fmt::format("the directory {} does not exist: cannot bind", dir);
        return UV_ENOENT;
      }
      if (error == ENOTDIR) {
        what = fmt::format("{} is not a directory: cannot bind", dir);
        return UV_ENOTDIR;
      }
    } else if (!S_ISDIR(info.st_mode)) {
      what = fmt::format("{} is not a directory: cannot bind", dir);
      return UV_ENOTDIR;
    } else if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
      what = fmt::format("this process (uid {}) may not create files in {}: cannot bind",
                         ::geteuid(), dir);
    }
    return rc;
  }
  if (rc == UV_EADDRINUSE) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return rc;
    if (S_ISSOCK(info.st_mode)) {
      what = "another process listens on this socket: cannot bind";
    } else {
      what = fmt::format("{} is {}, not a socket (remove it, or choose another path): cannot bind",
                         path, S_ISDIR(info.st_mode) ? "a directory" : "a file");
    }
  }
  return rc;
}

// The name of user `uid` ("root"), or its number when it has none.
std::string user_name(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  std::array<char, 4096> buffer;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return entry.pw_name;
  }
  return std::to_string(uid);
}

// The name of group `gid` ("www-data"), or its number when it has none.
std::string group_name(gid_t gid) {
  group entry{};
  group* found = nullptr;
  std::array<char, 4096> buffer;
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return entry.gr_name;
  }
  return std::to_string(gid);
}

// Logs who may connect to the Unix socket this listener created at `path`: connect(2) needs
// write permission on the socket file (unix(7)). A web server's workers never run as root
// (nginx's run as www-data), so a socket only root may write to, which is what a root process
// gets with the usual umask (srwxr-xr-x root root), answers every request with a 502 and
// nothing in this server's log: that case is a warning, the others are information.
void log_socket_access(const std::string& path, const util::Logger& logger) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return;
  const unsigned mode = info.st_mode & 07777;
  const bool others_write = (mode & S_IWOTH) != 0;
  const bool group_write = (mode & S_IWGRP) != 0 && info.st_gid != 0;
  if (::geteuid() == 0 && info.st_uid == 0 && !others_write && !group_write) {
    logger.log(LogLevel::Warning,
               "unix:{}: socket owner {}, group {}, mode {:04o}: only root may connect, so a web "
               "server whose workers run as another user (nginx: www-data) answers 502; set "
               "Config::unix_socket_mode to 0660 and give the socket the web server's group "
               "(create it in a directory of that group with the set-group-ID bit: chmod 2750)",
               path, user_name(info.st_uid), group_name(info.st_gid), mode);
    return;
  }
  logger.log(LogLevel::Info, "unix:{}: socket owner {}, group {}, mode {:04o}", path,
             user_name(info.st_uid), group_name(info.st_gid), mode);
}

// Linux's accept(2) reports network errors already pending on the new connection; the page
// says to treat them like EAGAIN and try again.
bool pending_network_error(int error) noexcept {
  switch (error) {
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

int set_option(int fd, int level, int name) noexcept {
  const int on = 1;
  return ::setsockopt(fd, level, name, &on, sizeof on) == 0 ? 0 : uv_translate_sys_error(errno);
}

// Connections accepted per wake-up at most, so one busy listener cannot starve the loop's
// other work: the poll fires again while connections wait.
constexpr int kAcceptBatch = 128;
constexpr std::uint64_t kFirstPauseMs = 100;
constexpr std::uint64_t kLongestPauseMs = 1'000;

}  // namespace

int Listener::fd() const noexcept {
  uv_os_fd_t fd = -1;
  if (!open_ || uv_fileno(&handle_.handle, &fd) != 0) return -1;
  return fd;
}

int Listener::open(uv_loop_t& loop, const Options& options, std::string& what) noexcept {
  int rc = 0;
  switch (endpoint_.kind) {
    case Endpoint::Kind::Fd: {
      // An inherited socket may be TCP or Unix: ask it.
      sockaddr_storage address{};
      socklen_t length = sizeof address;
      if (::getsockname(endpoint_.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return what = "getsockname", uv_translate_sys_error(errno);
      }
      tcp_ = address.ss_family != AF_UNIX;
      rc = tcp_ ? uv_tcp_init(&loop, &handle_.tcp) : uv_pipe_init(&loop, &handle_.pipe, 0);
      if (rc != 0) return what = "init", rc;
      open_ = true;
      rc = tcp_ ? uv_tcp_open(&handle_.tcp, endpoint_.fd)
                : uv_pipe_open(&handle_.pipe, endpoint_.fd);
      if (rc != 0) return what = "open", rc;
      if (tcp_ && (rc = set_option(endpoint_.fd, IPPROTO_TCP, TCP_NODELAY)) != 0) {
        return what = "TCP_NODELAY", rc;
      }
      break;
    }
    case Endpoint::Kind::Tcp: {
      tcp_ = true;
      sockaddr_storage address{};
      rc = endpoint_.ipv6 ? uv_ip6_addr(endpoint_.host.c_str(), endpoint_.port,
                                        reinterpret_cast<sockaddr_in6*>(&address))
                          : uv_ip4_addr(endpoint_.host.c_str(), endpoint_.port,
                                        reinterpret_cast<sockaddr_in*>(&address));
      if (rc != 0) return what = "address", rc;
      // init_ex creates the socket now, so options can be set before bind.
      rc = uv_tcp_init_ex(&loop, &handle_.tcp, address.ss_family);
      if (rc != 0) return what = "init", rc;
      open_ = true;
      uv_os_fd_t fd = -1;
      rc = uv_fileno(&handle_.handle, &fd);
      if (rc != 0) return what = "fileno", rc;
      // Bound here rather than by uv_tcp_bind, which reports EADDRINUSE only at uv_listen
      // (not used: see the class comment). SO_REUSEADDR as libuv sets it.
      rc = set_option(fd, SOL_SOCKET, SO_REUSEADDR);
      if (rc != 0) return what = "SO_REUSEADDR", rc;
      if (options.reuse_port && (rc = set_option(fd, SOL_SOCKET, SO_REUSEPORT)) != 0) {
        return what = "SO_REUSEPORT", rc;
      }
      if (endpoint_.ipv6 && (rc = set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY)) != 0) {
        return what = "IPV6_V6ONLY", rc;
      }
      // Responses go out whole, so Nagle's algorithm would only delay a small one behind the
      // previous one's ACK. Set here, it comes with every accepted socket (Linux copies it
      // from the listener), which saves a system call per connection.
      if ((rc = set_option(fd, IPPROTO_TCP, TCP_NODELAY)) != 0) return what = "TCP_NODELAY", rc;
      const socklen_t length = endpoint_.ipv6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
        return what = "bind", uv_translate_sys_error(errno);
      }
      break;
    }
    case Endpoint::Kind::Unix: {
      rc = uv_pipe_init(&loop, &handle_.pipe, 0);
      if (rc != 0) return what = "init", rc;
      open_ = true;
      rc = uv_pipe_bind(&handle_.pipe, endpoint_.path.c_str());
      if (rc == UV_EADDRINUSE && is_socket_file(endpoint_.path) &&
          !unix_socket_is_live(endpoint_.path)) {
        ::unlink(endpoint_.path.c_str());
        rc = uv_pipe_bind(&handle_.pipe, endpoint_.path.c_str());
      }
      if (rc != 0) return explain_unix_bind_failure(endpoint_.path, rc, what);
      created_socket_file_ = true;
      if (options.unix_mode != 0 && ::chmod(endpoint_.path.c_str(), options.unix_mode) != 0) {
        return what = "chmod", uv_translate_sys_error(errno);
      }
      log_socket_access(endpoint_.path, logger_);
      break;
    }
  }
  handle_.handle.data = this;
  share_ = options.share;
  rc = listen(loop, options.backlog);
  if (rc != 0) return what = "listen", rc;
  return 0;
}

int Listener::listen(uv_loop_t& loop, int backlog) noexcept {
  uv_os_fd_t fd = -1;
  int rc = uv_fileno(&handle_.handle, &fd);
  if (rc != 0) return rc;
  if (::listen(fd, backlog) != 0) return uv_translate_sys_error(errno);
  // The stream handle never reads or listens, so the poll handle is the socket's only
  // watcher in the loop.
  rc = uv_poll_init_socket(&loop, &poll_, fd);
  if (rc != 0) return rc;
  uv_timer_init(&loop, &backoff_);
  poll_.data = this;
  backoff_.data = this;
  polling_ = true;
  return uv_poll_start(&poll_, UV_READABLE, on_readable);
}

int Listener::accept(uv_stream_t& client) noexcept {
  const int fd = std::exchange(accepted_fd_, -1);
  if (fd < 0) return UV_EAGAIN;
  const int rc = tcp_ ? uv_tcp_open(reinterpret_cast<uv_tcp_t*>(&client), fd)
                      : uv_pipe_open(reinterpret_cast<uv_pipe_t*>(&client), fd);
  if (rc != 0) ::close(fd);
  return rc;
}

int Listener::take_queued() noexcept {
  uv_os_fd_t fd = -1;
  if (!open_ || uv_fileno(&handle_.handle, &fd) != 0) return -1;
  return ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

std::string Listener::local_address() const {
  if (endpoint_.kind == Endpoint::Kind::Unix) return endpoint_.to_string();
  if (!tcp_) {
    char path[sizeof(sockaddr_un::sun_path) + 1] = {};
    std::size_t length = sizeof path;
    if (uv_pipe_getsockname(&handle_.pipe, path, &length) != 0) return endpoint_.to_string();
    return "unix:" + std::string(path, length);
  }
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getsockname(&handle_.tcp, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return endpoint_.to_string();
  }
  Endpoint bound;
  char host[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    uv_ip6_name(in6, host, sizeof host);
    bound.port = ntohs(in6->sin6_port);
    bound.ipv6 = true;
  } else {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(&address);
    uv_ip4_name(in4, host, sizeof host);
    bound.port = ntohs(in4->sin_port);
  }
  bound.host = host;
  return bound.to_string();
}

void Listener::close() noexcept {
  if (!open_) return;
  open_ = false;
  // The poll first: it must leave the loop before the stream handle closes the socket.
  if (polling_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&backoff_), nullptr);
  }
  uv_close(&handle_.handle, nullptr);
  if (created_socket_file_) ::unlink(endpoint_.path.c_str());
}

void Listener::on_readable(uv_poll_t* poll, int status, int) noexcept {
  auto* self = static_cast<Listener*>(poll->data);
  if (status < 0) return self->back_off(status);
  uv_os_fd_t fd = -1;
  if (uv_fileno(&self->handle_.handle, &fd) != 0) return;
  for (int i = 0; i < kAcceptBatch && self->open_; ++i) {
    if (self->share_ != nullptr) {
      // A sibling with fewer connections takes this one; but one that has left connections
      // waiting for kPatience pauses in a row (stopped, or starved of the CPU) is not waited
      // for: one is taken, and the question asked again.
      constexpr unsigned kPatience = 8;
      if (self->share_(self->server_) || ++self->yields_ == kPatience) {
        self->yields_ = 0;
      } else {
        return self->yield();
      }
    }
    const int accepted = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (accepted < 0) {
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (error == EINTR || error == ECONNABORTED || pending_network_error(error)) continue;
      // Out of descriptors or memory, or anything unforeseen: retrying at once would spin.
      return self->back_off(uv_translate_sys_error(error));
    }
    if (self->failures_ > 0) {
      self->logger_.log(LogLevel::Warning,
                        "accept on {}: accepting again; {} more attempts failed after the "
                        "first, over {} ms",
                        self->local_address(), self->failures_ - 1,
                        uv_now(poll->loop) - self->failing_since_);
      self->failures_ = 0;
    }
    self->accepted_fd_ = accepted;
    self->on_connection_(self->server_, *self);
    // Not taken by the server (it failed before accept()): closed, as a refusal.
    if (self->accepted_fd_ >= 0) ::close(std::exchange(self->accepted_fd_, -1));
  }
}

void Listener::back_off(int error) noexcept {
  pause_ms_ = failures_ == 0 ? kFirstPauseMs : std::min(2 * pause_ms_, kLongestPauseMs);
  if (failures_++ == 0) {
    failing_since_ = uv_now(poll_.loop);
    logger_.log(LogLevel::Error,
                "accept on {}: {}: pausing accepts for {} ms, then retrying at most every {} ms "
                "until one succeeds; new connections wait in the backlog",
                local_address(), uv_strerror(error), pause_ms_, kLongestPauseMs);
  }
  uv_poll_stop(&poll_);
  uv_timer_start(&backoff_, on_backoff_end, pause_ms_, 0);
}

void Listener::yield() noexcept {
  constexpr std::uint64_t kYieldMs = 1;
  uv_poll_stop(&poll_);
  uv_timer_start(&backoff_, on_backoff_end, kYieldMs, 0);
}

void Listener::on_backoff_end(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Listener*>(timer->data);
  if (self->open_) uv_poll_start(&self->poll_, UV_READABLE, on_readable);
}

}  // namespace fcgimux::io
