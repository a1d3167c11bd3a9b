// SPDX-License-Identifier: MIT
#include "io/stream_connection.hpp"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "io/listener.hpp"
#include "io/server_core.hpp"

namespace fcgimux::io {

int StreamConnection::accept(Listener& listener, int queued_fd) noexcept {
  int rc = tcp_ ? uv_tcp_init(&server_.loop, &handle_.tcp)
                : uv_pipe_init(&server_.loop, &handle_.pipe, 0);
  if (rc != 0) {
    if (queued_fd >= 0) ::close(queued_fd);
    return rc;  // nothing to close: the handle never opened
  }
  handle_.handle.data = this;
  if (queued_fd < 0) {
    rc = listener.accept(handle_.stream);
  } else {
    rc = tcp_ ? uv_tcp_open(&handle_.tcp, queued_fd) : uv_pipe_open(&handle_.pipe, queued_fd);
    if (rc != 0) ::close(queued_fd);
  }
  // TCP_NODELAY comes with the socket: Linux copies it from the listener (Listener::open).
  if (rc == 0) rc = uv_fileno(&handle_.handle, &fd_);
  if (rc == 0) rc = resume_reading();
  if (rc != 0) close(LogLevel::Warning, uv_strerror(rc));
  return rc;
}

bool StreamConnection::peer_address(sockaddr_storage& out) const noexcept {
  int length = sizeof out;
  return tcp_ && uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&out), &length) == 0;
}

// --- reading -----------------------------------------------------------------------------------

void StreamConnection::pause_reading() noexcept { uv_read_stop(&handle_.stream); }

int StreamConnection::resume_reading() noexcept {
  return uv_read_start(&handle_.stream, on_alloc, on_read);
}

std::size_t StreamConnection::unread_bytes() const noexcept {
  uv_os_fd_t fd = -1;
  int unread = 0;
  if (uv_fileno(&handle_.handle, &fd) != 0 || ::ioctl(fd, FIONREAD, &unread) != 0) return 0;
  return unread > 0 ? static_cast<std::size_t>(unread) : 0;
}

void StreamConnection::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<StreamConnection*>(handle->data);
  const std::span<char> buffer = self->server_.read_buffer();
  *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

void StreamConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<StreamConnection*>(stream->data);
  if (nread > 0) {
    self->received(std::as_bytes(std::span(buf->base, static_cast<std::size_t>(nread))));
  } else if (nread < 0) {
    self->read_ended(nread == UV_EOF ? 0 : static_cast<int>(nread));
  }
}

// --- writing -----------------------------------------------------------------------------------

int StreamConnection::write(std::span<const std::string_view> pieces) noexcept {
  buffers_.clear();
  for (const std::string_view piece : pieces) {
    // uv_buf_t's base is not const, but libuv only reads what it writes.
    buffers_.push_back(
        uv_buf_init(const_cast<char*>(piece.data()), static_cast<unsigned>(piece.size())));
  }
  if (!write_request_) {
    write_request_ = std::make_unique<uv_write_t>();
    write_request_->data = this;
  }
  // The output just found the socket full: libuv tries once more, then waits for room.
  const int rc = uv_write(write_request_.get(), &handle_.stream, buffers_.data(),
                          static_cast<unsigned>(buffers_.size()), on_write);
  return rc < 0 ? rc : 0;
}

void StreamConnection::on_write(uv_write_t* request, int status) noexcept {
  static_cast<StreamConnection*>(request->data)->written(status);
}

std::ptrdiff_t StreamConnection::send(std::span<const std::string_view> pieces) noexcept {
  std::array<iovec, ConnectionOutput::kMaxPieces> vectors;
  const std::size_t count = std::min(pieces.size(), vectors.size());
  for (std::size_t i = 0; i < count; ++i) {
    vectors[i] = iovec{const_cast<char*>(pieces[i].data()), pieces[i].size()};
  }
  msghdr message{};
  message.msg_iov = vectors.data();
  message.msg_iovlen = count;
  // libuv made the descriptor non-blocking; MSG_NOSIGNAL: a vanished peer is an EPIPE here,
  // left for the I/O thread's write to report.
  for (;;) {
    const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) return sent;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno != EINTR) return -1;
  }
}

// --- closing -----------------------------------------------------------------------------------

void StreamConnection::close_transport() noexcept {
  // accept() opened the handle before anything could close the connection.
  uv_close(&handle_.handle, on_close);
}

void StreamConnection::on_close(uv_handle_t* handle) noexcept {
  static_cast<StreamConnection*>(handle->data)->transport_closed();
}

}  // namespace fcgimux::io
