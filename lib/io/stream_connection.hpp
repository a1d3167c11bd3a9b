// SPDX-License-Identifier: MIT
#pragma once

// A Connection over a libuv stream: a TCP connection or a Unix socket accepted by a Listener.
// Reads into the server's shared read buffer. The output's sends (send()) are one
// non-blocking sendmsg(2) on the descriptor, from whichever thread writes; what the socket did
// not take, the I/O thread writes with uv_write, which waits for room.
//
// Threading: I/O thread only, but for send() (see ConnectionOutput::Transport).

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
  int write(std::span<const std::string_view> pieces) noexcept override;
  void pause_reading() noexcept override;
  int resume_reading() noexcept override;
  std::size_t unread_bytes() const noexcept override;
  void close_transport() noexcept override;
  std::ptrdiff_t send(std::span<const std::string_view> pieces) noexcept override;

  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* request, int status) noexcept;
  static void on_close(uv_handle_t* handle) noexcept;

  const bool tcp_;
  StreamHandle handle_{};
  int fd_ = -1;  // the handle's descriptor, set by accept() before any request exists
  std::vector<uv_buf_t> buffers_;              // the asynchronous write's pieces
  std::unique_ptr<uv_write_t> write_request_;  // made with the first write that must wait
};

}  // namespace fcgimux::io
