// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "fcgimux/log.hpp"

namespace fcgimux {

// What to answer a request that arrives when Config::max_requests are already admitted.
enum class OverloadReply : unsigned char {
  // FCGI_OVERLOADED on a connection that carries other requests right now (a multiplexing
  // client such as HAProxy understands it), an HTTP 503 otherwise (nginx and most web servers
  // turn FCGI_OVERLOADED into a bare 502).
  Automatic,
  ProtocolStatus,  // always END_REQUEST with FCGI_OVERLOADED
  Http503,         // always "Status: 503" with Retry-After, then END_REQUEST complete
};

// Everything a Server needs to know. An aggregate with safe defaults: set what you need with
// designated initializers, e.g. `Config{.listen = {"unix:/run/app.sock"}, .workers = 8}`.
// The Server copies it; the copy is immutable while the server runs.
// Threading: Immutable after construction; safe to share.
struct Config {
  // Addresses to listen on: "tcp:HOST:PORT" (IPv4, or "[v6]:PORT"; port 0 picks a free port,
  // see Server::local_endpoints()) and "unix:PATH".
  std::vector<std::string> listen{"tcp:127.0.0.1:9000"};
  // Worker threads that run handlers. 0 picks 2 × std::thread::hardware_concurrency(), at
  // least 4: handlers usually wait on I/O (databases, files), so a few more threads than cores
  // keep the cores busy.
  unsigned workers = 0;

  // Open connections at most; one past this is accepted and closed at once (and counted).
  std::size_t max_connections = 10'000;
  // Requests admitted at most, running plus queued for a worker. One past this is answered at
  // once as `overload_reply` says, never queued.
  std::size_t max_requests = 1'024;
  // Requests in flight on one connection at most; one past this is answered
  // FCGI_CANT_MPX_CONN. Reported to clients as FCGI_MAX_REQS.
  std::size_t max_requests_per_connection = 100;
  // Whether a connection may carry more than one request at a time (FCGI_MPXS_CONNS). When
  // false, a second concurrent request is answered FCGI_CANT_MPX_CONN.
  bool multiplex = true;
  OverloadReply overload_reply = OverloadReply::Automatic;

  // Bytes of name-value pairs one request may send in PARAMS; past it the connection is
  // closed (the request cannot be understood).
  std::size_t max_params_bytes = 64 * 1024;
  // Unread body bytes buffered for one request. When a request holds this much, the server
  // stops reading its connection (TCP pushes back on the client) until the handler reads.
  std::size_t request_body_budget = 256 * 1024;
  // Unsent output bytes buffered for one connection. A handler writing past it blocks until
  // the client reads (or the request is cancelled).
  std::size_t connection_output_budget = 256 * 1024;

  // Largest request body, judged from CONTENT_LENGTH before the handler runs: a larger one is
  // answered 413 at once and its body discarded as it arrives. 0: no limit.
  std::size_t max_body_bytes = 0;

  // A connection with no request admitted (none running or queued) that has not completed a
  // request's params for this long is closed: it is idle, or a client too slow to matter.
  std::chrono::milliseconds idle_timeout{60'000};
  // An admitted request still running this long after its params completed is cancelled (its
  // stop token fires). 0: no deadline.
  std::chrono::milliseconds request_timeout{0};
  // A request that waited this long in the queue is answered 503 when a worker takes it,
  // instead of being run: its client has likely given up. 0: no limit.
  std::chrono::milliseconds queue_timeout{0};
  // On stop, running and queued requests get this long to finish; then they are cancelled.
  std::chrono::milliseconds shutdown_timeout{10'000};
  // Whether run() stops on SIGINT and SIGTERM.
  bool handle_signals = true;

  LogLevel log_level = LogLevel::Warning;
  LogSink log = stderr_log_sink();
};

}  // namespace fcgimux
