// SPDX-License-Identifier: MIT
#include "io/listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

}  // namespace

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
      rc = tcp_ ? uv_tcp_open(&handle_.tcp, endpoint_.fd) : uv_pipe_open(&handle_.pipe, endpoint_.fd);
      if (rc != 0) return what = "open", rc;
      break;
    }
    case Endpoint::Kind::Tcp: {
      tcp_ = true;
      sockaddr_storage address{};
      rc = endpoint_.ipv6
               ? uv_ip6_addr(endpoint_.host.c_str(), endpoint_.port,
                             reinterpret_cast<sockaddr_in6*>(&address))
               : uv_ip4_addr(endpoint_.host.c_str(), endpoint_.port,
                             reinterpret_cast<sockaddr_in*>(&address));
      if (rc != 0) return what = "address", rc;
      // init_ex creates the socket now, so options can be set before bind.
      rc = uv_tcp_init_ex(&loop, &handle_.tcp, address.ss_family);
      if (rc != 0) return what = "init", rc;
      open_ = true;
      if (options.reuse_port) {
        uv_os_fd_t fd = -1;
        const int on = 1;
        rc = uv_fileno(&handle_.handle, &fd);
        if (rc == 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
          rc = uv_translate_sys_error(errno);
        }
        if (rc != 0) return what = "SO_REUSEPORT", rc;
      }
      rc = uv_tcp_bind(&handle_.tcp, reinterpret_cast<const sockaddr*>(&address),
                       endpoint_.ipv6 ? unsigned{UV_TCP_IPV6ONLY} : 0u);
      if (rc != 0) return what = "bind", rc;
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
      if (rc != 0) return what = "bind", rc;
      created_socket_file_ = true;
      if (options.unix_mode != 0 && ::chmod(endpoint_.path.c_str(), options.unix_mode) != 0) {
        return what = "chmod", uv_translate_sys_error(errno);
      }
      break;
    }
  }
  handle_.handle.data = this;
  rc = uv_listen(&handle_.stream, options.backlog, on_incoming);
  if (rc != 0) return what = "listen", rc;
  return 0;
}

int Listener::accept(uv_stream_t& client) noexcept { return uv_accept(&handle_.stream, &client); }

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
  uv_close(&handle_.handle, nullptr);
  if (created_socket_file_) ::unlink(endpoint_.path.c_str());
}

void Listener::on_incoming(uv_stream_t* stream, int status) noexcept {
  auto* self = static_cast<Listener*>(stream->data);
  self->on_connection_(self->server_, *self, status);
}

}  // namespace fcgimux::io
