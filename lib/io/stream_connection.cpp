// SPDX-License-Identifier: MIT
#include "io/stream_connection.hpp"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

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
  if (rc == 0 && tcp_) {
    // Responses are written whole (one writev per batch), so Nagle's algorithm only adds
    // latency: a small response would wait for the previous one's ACK.
    rc = uv_tcp_nodelay(&handle_.tcp, 1);
  }
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

int StreamConnection::write(std::span<const std::string> pieces) noexcept {
  buffers_.clear();
  for (const std::string& piece : pieces) {
    // uv_buf_t's base is not const, but libuv only reads what it writes.
    buffers_.push_back(
        uv_buf_init(const_cast<char*>(piece.data()), static_cast<unsigned>(piece.size())));
  }
  // Most responses fit the socket's send buffer: one writev, no write request, no callback.
  int rc = uv_try_write(&handle_.stream, buffers_.data(), static_cast<unsigned>(buffers_.size()));
  if (rc < 0 && rc != UV_EAGAIN) return rc;
  auto sent = static_cast<std::size_t>(rc < 0 ? 0 : rc);
  std::size_t first = 0;
  while (first < buffers_.size() && sent >= buffers_[first].len) sent -= buffers_[first++].len;
  if (first == buffers_.size()) return 1;
  buffers_.erase(buffers_.begin(), buffers_.begin() + static_cast<std::ptrdiff_t>(first));
  buffers_.front().base += sent;
  buffers_.front().len -= sent;
  if (!write_request_) {
    write_request_ = std::make_unique<uv_write_t>();
    write_request_->data = this;
  }
  rc = uv_write(write_request_.get(), &handle_.stream, buffers_.data(),
                static_cast<unsigned>(buffers_.size()), on_write);
  return rc < 0 ? rc : 0;
}

void StreamConnection::on_write(uv_write_t* request, int status) noexcept {
  static_cast<StreamConnection*>(request->data)->written(status);
}

std::ptrdiff_t StreamConnection::send_now(std::string_view bytes) noexcept {
  // libuv made the descriptor non-blocking; MSG_NOSIGNAL: a vanished peer is an EPIPE here,
  // left for the I/O thread's next write to report.
  return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
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
