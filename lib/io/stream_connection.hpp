// SPDX-License-Identifier: MIT
#pragma once

// A Connection over a libuv stream: a TCP connection or a Unix socket accepted by a Listener.
// Reads into the server's shared read buffer, writes with uv_try_write first (a response that
// fits the socket buffer needs no write request and no later callback), and falls back to
// uv_write for the rest. A worker's direct write (send_now) is one non-blocking send(2) on the
// descriptor, the only call not made on the I/O thread.
//
// Threading: I/O thread only, but for send_now() (see Connection::send_now).

#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "io/connection.hpp"
#include "io/stream_handle.hpp"

namespace fcgimux::io {

class Listener;

class StreamConnection final : public Connection {
 public:
  StreamConnection(ServerCore& server, std::uint64_t id, bool tcp) noexcept
      : Connection(server, id), tcp_(tcp) {}

  // Accepts the connection waiting on `listener` (or adopts `queued_fd`, one taken from its
  // backlog by Listener::take_queued()) and starts reading. Returns 0 or a libuv error: a
  // failed handle init leaves nothing to close (the caller deletes the connection); any later
  // failure leaves the connection closing, to be freed by its close callback.
  int accept(Listener& listener, int queued_fd) noexcept;

  bool peer_address(sockaddr_storage& out) const noexcept override;

 private:
  int write(std::span<const std::string> pieces) noexcept override;
  void pause_reading() noexcept override;
  int resume_reading() noexcept override;
  std::size_t unread_bytes() const noexcept override;
  void close_transport() noexcept override;
  std::ptrdiff_t send_now(std::string_view bytes) noexcept override;

  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* request, int status) noexcept;
  static void on_close(uv_handle_t* handle) noexcept;

  const bool tcp_;
  StreamHandle handle_{};
  int fd_ = -1;  // the handle's descriptor, set by accept() before any request exists
  std::vector<uv_buf_t> buffers_;              // the write in flight's unsent part
  std::unique_ptr<uv_write_t> write_request_;  // made with the first write that must wait
};

}  // namespace fcgimux::io
