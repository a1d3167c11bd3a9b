// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fcgimux/log.hpp"
#include "fcgimux/protocol.hpp"

namespace fcgimux {

class Handler;

/// What to answer a request that arrives when Config::max_requests are already admitted.
enum class OverloadReply : unsigned char {
  /// FCGI_OVERLOADED on a connection that carries other requests right now (a multiplexing
  /// client such as HAProxy understands it), an HTTP 503 otherwise (nginx and most web servers
  /// turn FCGI_OVERLOADED into a bare 502).
  Automatic,
  ProtocolStatus,  ///< always END_REQUEST with FCGI_OVERLOADED
  Http503,         ///< always "Status: 503" with Retry-After, then END_REQUEST complete
};

/// A named worker pool: requests it matches run on its own workers, under its own admission
/// bound, so that a slow route cannot take the workers of the others (mod_wsgi's
/// WSGIDaemonProcess with WSGIProcessGroup, php-fpm's pools). See Config::pools.
/// Threading: Immutable after construction; safe to share.
struct Pool {
  /// Shown by the status page (`?pool=NAME`), the metrics' `pool` label, the access log's
  /// `pool=` field and Stats::pools. Not empty, unique, and not Config::pool_name.
  std::string name{};
  /// Worker threads of this pool; at least 1.
  unsigned workers = 1;
  /// Requests of this pool admitted at most, running plus queued; one past it is answered as
  /// Config::overload_reply says, whatever the other pools hold. At least 1.
  std::size_t max_requests = 64;
  /// As Config::queue_timeout, for this pool's requests. 0: off.
  std::chrono::milliseconds queue_timeout{0};
  /// As Config::request_timeout, for this pool's requests. 0: off.
  std::chrono::milliseconds request_timeout{0};
  /// As Config::slow_request_threshold, for this pool's requests. 0: off.
  std::chrono::milliseconds slow_request_threshold{0};

  // The match: the pool takes a request when every criterion set here holds; at least one
  // must be set.
  /// A path prefix, compared with SCRIPT_NAME, or with DOCUMENT_URI when the request has no
  /// SCRIPT_NAME. It matches at a path-segment boundary: "/slow" takes "/slow" and "/slow/x",
  /// not "/slower"; a prefix ending in '/' ("/slow/") is a plain prefix. Empty: any path.
  std::string prefix{};
  /// The request's role. Empty: any role.
  std::optional<protocol::Role> role{};
  /// A test over the request's complete params, for what a prefix cannot say (a header, a
  /// method). Runs on the server's I/O thread for every request the criteria above let
  /// through, before this pool's admission: it must be quick and must not block; the views
  /// are valid for the call only. An exception it throws closes the request's connection.
  /// Empty: any request.
  std::function<bool(std::span<const protocol::NameValue> params)> predicate{};
  /// The handler that runs this pool's requests; null: the Server's. Borrowed: it must outlive
  /// the Server as the Server's handler does (ownership rules in server.hpp).
  Handler* handler = nullptr;
};

/// Everything a Server needs to know. An aggregate with safe defaults: set what you need with
/// designated initializers, e.g. `Config{.listen = {"unix:/run/app.sock"}, .workers = 8}`.
/// The Server copies it; the copy is immutable while the server runs.
/// Threading: Immutable after construction; safe to share.
struct Config {
  /// Addresses to listen on:
  ///  - "tcp:HOST:PORT": HOST an IPv4 literal or a bracketed IPv6 literal ("tcp:[::1]:9000");
  ///    port 0 picks a free port (see Server::local_endpoints());
  ///  - "unix:PATH": a Unix socket; a stale socket file nobody listens on is replaced, a live
  ///    one is an error;
  ///  - "fd:N": a listening socket the process inherited on descriptor N;
  ///  - "systemd": every socket systemd passed by socket activation (LISTEN_FDS, LISTEN_PID).
  /// Empty (the default) takes what the process was started with, as FastCGI 1.0 §2.2 says:
  /// the systemd sockets if any, else a listening socket on descriptor 0
  /// (FCGI_LISTENSOCK_FILENO: spawn-fcgi, cgi-fcgi -start, lighttpd's bin-path, mod_fcgid),
  /// else "tcp:127.0.0.1:9000".
  std::vector<std::string> listen{};
  /// The permission bits of Unix sockets this server creates, e.g. 0660 so that only the web
  /// server's group may connect. 0 leaves what the umask gives.
  unsigned unix_socket_mode = 0;
  /// Sets SO_REUSEPORT on TCP listeners, so a new process can bind the same port while the old
  /// one drains (a zero-downtime restart). Both processes must set it.
  bool reuse_port = false;
  /// The web server addresses (IPv4 or IPv6 literals) allowed to connect. Empty (the default)
  /// takes the comma-separated list in the environment variable FCGI_WEB_SERVER_ADDRS when it
  /// is set (FastCGI 1.0 §3.2). With a list in force, a connection from any other address, or
  /// one that is not over TCP/IP at all, is closed at once and logged.
  std::vector<std::string> allowed_clients{};
  /// The roles this application plays; a request for any other is answered
  /// FCGI_UNKNOWN_ROLE.
  std::vector<protocol::Role> roles{protocol::Role::Responder, protocol::Role::Authorizer,
                                    protocol::Role::Filter};
  /// Worker threads of the default pool (each Pool has its own). 0 picks 2 × std::thread::hardware_concurrency(), at
  /// least 4: handlers usually wait on I/O (databases, files), so a few more threads than cores
  /// keep the cores busy.
  unsigned workers = 0;

  /// Processes serving requests, each with its own I/O thread and worker pools (the workers and
  /// pools this Config describes, per process): mod_wsgi's processes × threads. 1 (the default):
  /// this process serves, nothing is forked. N > 1: run() binds the listeners, then forks N
  /// children that serve on them (the kernel spreads the connections) while this process only
  /// supervises: a child that dies is logged and replaced at once (with a back-off, up to 10 s,
  /// when it dies within a second of starting), so a crashing handler costs its own process's
  /// requests, not the service. SIGHUP replaces the children one by one, each once its
  /// replacement is ready. Server::stats() and the status page sum every child's figures.
  /// docs/guide.md, "Processes and threads", says what may not be shared across the fork.
  unsigned processes = 1;
  /// With `processes` > 1, a child that has admitted this many requests is recycled (php-fpm's
  /// pm.max_requests): its replacement starts first, and once it is ready the child stops
  /// accepting, drains within `shutdown_timeout` and exits. 0: never.
  std::uint64_t max_requests_per_process = 0;
  /// With `processes` > 1, a child whose resident memory passes this many bytes is recycled as
  /// `max_requests_per_process` says (checked every second). 0: never.
  std::size_t max_rss_per_process = 0;
  /// With `processes` > 1, runs in each child after the fork, before its threads start, with
  /// the child's number (0 to processes - 1; a replacement gets the number of the child it
  /// replaces): open what each process needs its own of (database connections, random
  /// generators). An exception it throws ends the child, logged, and it is restarted with a
  /// back-off.
  std::function<void(unsigned process)> on_process_start{};
  /// Runs on run()'s thread once every listener is bound, with the addresses
  /// Server::local_endpoints() returns, before any connection is served (with `processes` > 1:
  /// in the supervising process, before the children are forked). A way to say where the
  /// server listens without a thread of one's own, which must not be alive at a fork (docs/
  /// guide.md, "Processes and threads"). An exception it throws is logged, and run() goes on.
  std::function<void(const std::vector<std::string>& endpoints)> on_listening{};

  /// Runs on the I/O thread once, as the server begins to stop (stop(), SIGINT or SIGTERM, and
  /// with `processes` > 1 in each child as it is stopped, recycled or replaced by SIGHUP), once
  /// the listeners are closed. The stop waits for detached responses (Response::detach()) until
  /// `shutdown_timeout`, and stops them only then: this is the moment to send each a last
  /// event and end() it, or to tell the thread that writes them to, so that stopping is quick.
  /// It must not block: the I/O thread serves every connection. An exception it throws is
  /// logged.
  std::function<void()> on_drain{};

  /// Named worker pools, tried in order: a request goes to the first whose match it meets,
  /// when its params are complete and before admission. A request no pool matches goes to the
  /// default pool, which the fields of this Config describe (Config::workers, max_requests,
  /// queue_timeout, request_timeout, slow_request_threshold, the Server's handler, named
  /// Config::pool_name): with no pools, the server has that one alone, as before. Admission,
  /// overload answers and queue time-outs are per pool; max_connections, the byte budgets and
  /// the status and ping pages are the server's. docs/guide.md, "Keep a slow route from
  /// starving the rest", shows a set-up with nginx.
  std::vector<Pool> pools{};

  /// Open connections at most; one past this is accepted and closed at once (and counted).
  std::size_t max_connections = 10'000;
  /// Requests of the default pool admitted at most (each Pool has its own), running plus
  /// queued for a worker. One past this is answered at
  /// once as `overload_reply` says, never queued.
  std::size_t max_requests = 1'024;
  /// Detached responses (Response::detach()) open at most. A detached request no longer
  /// counts against max_requests, nor holds a worker, so open streams never keep ordinary
  /// requests waiting; one detach past this bound answers its request as an overloaded one.
  /// Each open stream holds its request's params and its connection (a few KiB).
  std::size_t max_streams = 10'000;
  /// Requests in flight on one connection at most; one past this is answered
  /// FCGI_CANT_MPX_CONN. FCGI_GET_VALUES reports FCGI_MAX_REQS as what one connection may
  /// carry: the admission bounds of every pool added up (max_requests plus each Pool's), or
  /// this when it is smaller and multiplexing is on: multiplexing clients (HAProxy) read
  /// FCGI_MAX_REQS as the limit for one connection. With pools, a connection whose requests
  /// all go to one pool is still refused past that pool's bound before it reaches
  /// FCGI_MAX_REQS: the figure says what the server can hold, not what each pool can.
  std::size_t max_requests_per_connection = 100;
  /// Whether a connection may carry more than one request at a time (FCGI_MPXS_CONNS). When
  /// false, a second concurrent request is answered FCGI_CANT_MPX_CONN.
  bool multiplex = true;
  /// What a request past max_requests is answered; see OverloadReply.
  OverloadReply overload_reply = OverloadReply::Automatic;

  /// Bytes of name-value pairs one request may send in PARAMS; past it the request is answered
  /// 431 at once (and the rest of its records are ignored); the connection goes on. It also
  /// bounds what one connection holds for all its requests whose params have not ended yet: a
  /// PARAMS record that would take them past it is answered 431 the same way.
  /// The default, 1 MiB, takes what a web server raised for single sign-on sends (a 64 KiB
  /// Kerberos or SAML Authorization header and the rest): nginx's large_client_header_buffers
  /// up to 8 of 128k, Apache's LimitRequestFieldSize 65536 across a hundred fields, HAProxy's
  /// tune.bufsize up to 1 MiB. A web server's own header limits bound what its clients can
  /// send; this bounds the web server. Memory stays bounded by `pending_params_budget`, which
  /// counts the params of every request until it ends (SECURITY.md).
  std::size_t max_params_bytes = 1024 * 1024;
  /// Bytes of params held at once across every connection by requests not yet ended: still
  /// sending their params, queued or running (see Stats::params_pending). A PARAMS record that
  /// would take the total past this is refused: its request is answered at once as
  /// `overload_reply` says. Requests whose params never end are held until `idle_timeout`
  /// closes their connection. At least `max_params_bytes`, or a request at that limit could
  /// never be served.
  std::size_t pending_params_budget = 32 * 1024 * 1024;
  /// Unread body bytes buffered for one request. When a request holds this much, the server
  /// stops reading its connection (TCP pushes back on the client) until the handler reads.
  std::size_t request_body_budget = 256 * 1024;
  /// Unsent output bytes buffered for one connection. A handler writing past it blocks until
  /// the client reads (or the request is cancelled).
  std::size_t connection_output_budget = 256 * 1024;

  /// Largest request body, judged from CONTENT_LENGTH before the handler runs: a larger one is
  /// answered 413 at once and its body discarded as it arrives. 0: no limit.
  std::size_t max_body_bytes = 0;

  /// A connection with no request admitted (none running or queued) that has not completed a
  /// request's params for this long is closed: it is idle, or a client too slow to matter.
  std::chrono::milliseconds idle_timeout{60'000};
  /// An admitted request still running this long after its params completed is cancelled (its
  /// stop token fires). 0: no deadline.
  std::chrono::milliseconds request_timeout{0};
  /// A request that waited this long in the queue is answered 503 when a worker takes it,
  /// instead of being run: its client has likely given up. 0: no limit.
  std::chrono::milliseconds queue_timeout{0};
  /// On stop, running and queued requests get this long to finish; then they are cancelled.
  /// A handler still running one second after that is abandoned (see Server, ownership rule 5).
  std::chrono::milliseconds shutdown_timeout{10'000};
  /// Whether run() stops on SIGINT and SIGTERM (a second signal cancels every request).
  bool handle_signals = true;
  /// Whether to tell systemd about readiness and stopping (sd_notify READY=1, STOPPING=1, and
  /// WATCHDOG=1 when the unit has a watchdog), over the socket in NOTIFY_SOCKET when set.
  bool notify_systemd = true;

  /// The built-in status page, as php-fpm's pm.status_path: a Responder request whose
  /// SCRIPT_NAME is exactly this path (it must start with '/') is answered by the server itself,
  /// on its I/O thread, without a worker: it answers even when every worker is busy and the
  /// queue is full. php-fpm's fields and formats: plain text by default, `?json`, `?xml`,
  /// `?html` (a page that refreshes itself), `?openmetrics`, and `?prometheus` (the same
  /// metrics in Prometheus' text format, plus every Stats counter); `?full` adds one block per
  /// worker. docs/status.md lists the fields and how each maps to this server. Anyone who can
  /// reach the path sees the URIs being served: restrict it in the web server. Empty: off.
  std::string status_path{};
  /// The ping page, as php-fpm's ping.path: a Responder request whose SCRIPT_NAME is exactly
  /// this path (starting with '/') is answered 200 with `ping_response`, on the I/O thread.
  /// Empty: off.
  std::string ping_path{};
  /// What the ping page answers.
  std::string ping_response = "pong";
  /// The "pool" the status page names (php-fpm's pool name), e.g. to tell applications apart:
  /// the default pool's name (see `pools`).
  std::string pool_name = "www";
  /// A request still running this long after its handler started is logged once (Warning) with
  /// its URI, its worker and how long it has run, and counted in Stats::slow_requests (php-fpm's
  /// request_slowlog_timeout). Checked by the server's sweep, every quarter of this at most.
  /// The first one found also gets its worker's stack at that moment, one frame a line (at most
  /// one stack every 10 s): the server installs a SIGURG handler for it, unless the program has
  /// one of its own (docs/status.md says how it works). 0: off.
  std::chrono::milliseconds slow_request_threshold{0};
  /// One line per request, handed to `log` at LogLevel::Info whatever `log_level` says, in
  /// logfmt: `access method=GET uri="/x?y=1" status=200 bytes=12 duration_ms=1.234
  /// queue_ms=0.056 result=ok conn=3 req=1` (no time: the sink stamps it). A request the
  /// server refuses before a handler runs gets one with `result=refused reason=overload`
  /// (or body_too_large, params_too_large, bad_params). Written by the worker that ran the
  /// request once its END_REQUEST is on its way, and by the I/O thread for the status and
  /// ping pages and refused requests. docs/status.md lists the fields.
  bool access_log = false;

  /// Lines below this level are not formatted, let alone logged.
  LogLevel log_level = LogLevel::Warning;
  /// Where log lines go: one line to stderr each, by default. See LogSink for its threading.
  LogSink log = stderr_log_sink();
};

}  // namespace fcgimux
