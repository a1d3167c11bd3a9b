// SPDX-License-Identifier: MIT
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "io/endpoint.hpp"
#include "io/stream_handle.hpp"
#include "util/logger.hpp"

namespace fcgimux::io {

// One listening socket (TCP or Unix), owned by the server. Calls back into the server when a
// connection waits.
//
// It accepts connections itself (a uv_poll_t on the socket), not through uv_listen: when
// accept() fails for want of descriptors (EMFILE, ENFILE) or memory, libuv would accept and
// close every waiting connection to shed them, or else retry in a loop. A Listener instead
// logs once, stops accepting for a while (100 ms, doubling up to 1 s while the failures go
// on) and then tries again; connections wait in the socket's backlog meanwhile, and are
// served once descriptors are free. The line it logs on recovering counts the failures.
// Threading: I/O thread only.
class Listener {
 public:
  // Called with a connection accepted and waiting for accept(client).
  using OnConnection = void (*)(void* server, Listener& listener) noexcept;
  // Asked before each accept: false leaves waiting connections to other processes sharing the
  // socket (see Options::share).
  using Share = bool (*)(void* server) noexcept;

  // `logger` must outlive the listener.
  Listener(Endpoint endpoint, OnConnection callback, void* server,
           const util::Logger& logger) noexcept
      : endpoint_(std::move(endpoint)),
        on_connection_(callback),
        server_(server),
        logger_(logger) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  struct Options {
    int backlog = 1024;
    bool reuse_port = false;  // SO_REUSEPORT on TCP sockets this listener creates
    unsigned unix_mode = 0;   // chmod of a Unix socket this listener creates; 0: umask's
    // For a process sharing the socket with sibling processes, all woken by the same
    // readiness: while it says no, the listener stops accepting for a millisecond at a time;
    // after 8 such pauses in a row with connections still waiting it takes one regardless (so
    // nothing waits long on a sibling that has stopped), and asks again.
    Share share = nullptr;
  };
  // Binds (or adopts the inherited descriptor) and listens. Returns 0 or a libuv error code,
  // with `what` naming the step that failed, or, where the code alone would mislead, what is
  // wrong ("the directory /run/app does not exist: cannot bind"): it is read followed by the
  // address and the code's message. close() it either way. A Unix socket it creates is
  // logged once with its owner and mode, as a warning when only root may connect to it.
  int open(uv_loop_t& loop, const Options& options, std::string& what) noexcept;
  // Opens the connection waiting in OnConnection into `client` (a handle initialised on the
  // same loop); without this call, the connection is closed when the callback returns.
  int accept(uv_stream_t& client) noexcept;
  // Takes one connection already queued in the socket's backlog, bypassing the loop; -1 when
  // none is. Used before closing, so queued connections are served rather than reset.
  int take_queued() noexcept;
  // The bound address, ports resolved ("tcp:127.0.0.1:40123").
  std::string local_address() const;
  const Endpoint& endpoint() const noexcept { return endpoint_; }
  // The listening socket's descriptor once open() succeeded (-1 before), for a child process
  // to serve on ("fd:N").
  int fd() const noexcept;
  // Whether connections arrive over TCP/IP (known once open() succeeded: an inherited
  // descriptor may be either).
  bool is_tcp() const noexcept { return tcp_; }
  // Closes the handles (and removes the socket file of a Unix listener it created). The
  // listener must stay alive until the loop has run the close (the next loop iteration).
  void close() noexcept;

 private:
  static void on_readable(uv_poll_t* poll, int status, int events) noexcept;
  static void on_backoff_end(uv_timer_t* timer) noexcept;
  int listen(uv_loop_t& loop, int backlog) noexcept;
  // accept() failed with `error` (an errno value): pause, and log when a pause begins.
  void back_off(int error) noexcept;
  // share_ said no: a pause of a millisecond.
  void yield() noexcept;

  Endpoint endpoint_;
  OnConnection on_connection_;
  void* server_;
  const util::Logger& logger_;
  StreamHandle handle_{};
  uv_poll_t poll_{};      // readiness of the listening socket
  uv_timer_t backoff_{};  // ends a pause in accepting
  Share share_ = nullptr;
  unsigned yields_ = 0;  // pauses in a row share_ asked for
  bool open_ = false;
  bool polling_ = false;  // poll_ and backoff_ are initialised
  bool tcp_ = false;
  bool created_socket_file_ = false;
  int accepted_fd_ = -1;        // the connection handed to OnConnection, until accept() takes it
  std::uint64_t failures_ = 0;  // failed accepts since the last success
  std::uint64_t pause_ms_ = 0;  // length of the current pause
  std::uint64_t failing_since_ = 0;  // loop time of the first failure
};

}  // namespace fcgimux::io
