// SPDX-License-Identifier: MIT
#pragma once

#include <uv.h>

#include <string>

#include "io/endpoint.hpp"
#include "io/stream_handle.hpp"

namespace fcgimux::io {

// One listening socket (TCP or Unix), owned by the server. Calls back into the server when a
// connection waits.
// Threading: I/O thread only.
class Listener {
 public:
  // `status` is 0, or the libuv error that the listening socket reported.
  using OnConnection = void (*)(void* server, Listener& listener, int status) noexcept;

  Listener(Endpoint endpoint, OnConnection callback, void* server) noexcept
      : endpoint_(std::move(endpoint)), on_connection_(callback), server_(server) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  struct Options {
    int backlog = 1024;
    bool reuse_port = false;     // SO_REUSEPORT on TCP sockets this listener creates
    unsigned unix_mode = 0;      // chmod of a Unix socket this listener creates; 0: umask's
  };
  // Binds (or adopts the inherited descriptor) and listens. Returns 0 or a libuv error code,
  // with `what` naming the step that failed; close() it either way.
  int open(uv_loop_t& loop, const Options& options, std::string& what) noexcept;
  // Accepts the waiting connection into `client` (a handle initialised on the same loop).
  int accept(uv_stream_t& client) noexcept;
  // Takes one connection already queued in the socket's backlog, bypassing the loop; -1 when
  // none is. Used before closing, so queued connections are served rather than reset.
  int take_queued() noexcept;
  // The bound address, ports resolved ("tcp:127.0.0.1:40123").
  std::string local_address() const;
  const Endpoint& endpoint() const noexcept { return endpoint_; }
  // Whether connections arrive over TCP/IP (known once open() succeeded: an inherited
  // descriptor may be either).
  bool is_tcp() const noexcept { return tcp_; }
  // Closes the handle (and removes the socket file of a Unix listener it created). The
  // listener must stay alive until the loop has run the close (the next loop iteration).
  void close() noexcept;

 private:
  static void on_incoming(uv_stream_t* stream, int status) noexcept;

  Endpoint endpoint_;
  OnConnection on_connection_;
  void* server_;
  StreamHandle handle_{};
  bool open_ = false;
  bool tcp_ = false;
  bool created_socket_file_ = false;
};

}  // namespace fcgimux::io
