// SPDX-License-Identifier: MIT
#pragma once

// The Server: listeners, connections and the FastCGI protocol on one I/O thread, handlers on
// a pool of worker threads.
//
// Ownership rules, stated once:
//  1. The library owns every Request and Response; a handler gets references valid for one
//     call of Handler::handle().
//  2. The Handler is borrowed and must outlive the Server, and every call of handle() (see
//     rule 5).
//  3. string_views and spans the library returns are valid until handle() returns.
//  4. Nothing in the public API is allocated by the user or returned as an owning pointer.
//  5. A handler that ignores its stop token cannot hold up a stop forever: one second after
//     the shutdown deadline (or a second SIGINT/SIGTERM) cancelled it, run() logs it
//     (connection, request id, URI, how long it ran, which worker), detaches its worker
//     thread and returns. Its Request and Response stay valid (reads return 0, writes are
//     dropped) until it returns, even after the Server is destroyed; the Handler, and
//     whatever Config::log's sink refers to, must then stay valid too.
//     Stats::requests_abandoned counts such requests: a program that sees it non-zero
//     should end the process rather than free what those handlers use.
//  6. A ResponseStream (Response::detach()) belongs to the application and may outlive
//     handle() and the Server: it keeps alive what it needs. Its request ends when it is
//     ended or dropped; until then the request counts for the drain, which at the shutdown
//     deadline stops it (its writes answer Closed). One second later run() gives up on the
//     streams still not ended, as on handlers in rule 5.
//
// Signals: run() ignores SIGPIPE for the whole process (a peer that vanishes must not kill
// it; the write then fails with EPIPE) and, when Config::handle_signals is set, stops on
// SIGINT and SIGTERM. With Config::processes > 1 it also replaces its child processes one by
// one on SIGHUP, and puts back the handlers it found when it returns; each child ignores
// SIGHUP and stops on SIGINT and SIGTERM as a single server does.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fcgimux/config.hpp"
#include "fcgimux/handler.hpp"

/// The FastCGI application server: Server, Config, Handler, Request, Response.
namespace fcgimux {

/// One worker pool's figures (see Config::pools), in Stats::pools.
struct PoolStats {
  std::string name{};                       ///< Config::pool_name for the default pool
  unsigned workers = 0;                     ///< its worker threads
  std::uint64_t max_requests = 0;           ///< its admission bound
  std::uint64_t requests_admitted = 0;      ///< total: given to its workers
  std::uint64_t requests_overloaded = 0;    ///< total: refused past its max_requests
  std::uint64_t requests_running = 0;       ///< now: in its handlers
  std::uint64_t requests_queued = 0;        ///< now: admitted, waiting for one of its workers
  std::uint64_t requests_running_max = 0;   ///< most of its requests running at once
  std::uint64_t requests_queued_max = 0;    ///< most of its requests queued at once
  std::uint64_t slow_requests = 0;          ///< total: ran past its slow_request_threshold
};

/// Counters, read at any time with Server::stats(). Totals count since construction; "now"
/// fields are a snapshot. Each field is read on its own, so a snapshot taken while the server
/// runs need not add up exactly.
struct Stats {
  std::uint64_t connections_accepted = 0;  ///< total
  std::uint64_t connections_refused = 0;   ///< total: past max_connections
  std::uint64_t connections_open = 0;      ///< now
  std::uint64_t requests_admitted = 0;     ///< total: given to the worker pool
  std::uint64_t requests_completed = 0;    ///< total: handler returned normally
  std::uint64_t requests_failed = 0;       ///< total: handler threw (LimitExceeded aside)
  /// total: handler let Request::read_all()'s LimitExceeded out: answered 413, a client error
  std::uint64_t requests_body_too_large = 0;
  std::uint64_t requests_aborted = 0;     ///< total: cancelled by abort, close or deadline
  std::uint64_t requests_overloaded = 0;  ///< total: refused past max_requests (or params budget)
  /// total: refused before admission for any reason but overload: unknown role, multiplexing,
  /// malformed params, and the two below
  std::uint64_t requests_refused = 0;
  std::uint64_t requests_refused_params = 0;  ///< total: 431, params past max_params_bytes
  std::uint64_t requests_refused_body = 0;    ///< total: 413, CONTENT_LENGTH past max_body_bytes
  std::uint64_t requests_abandoned = 0;       ///< total: still running when run() gave up on them
  std::uint64_t requests_running = 0;         ///< now: in a handler
  std::uint64_t requests_queued = 0;          ///< now: admitted, waiting for a worker
  std::uint64_t bytes_in = 0;                 ///< total read from clients
  std::uint64_t bytes_out = 0;                ///< total written to clients
  std::uint64_t input_buffered = 0;           ///< now: body bytes read but not yet read by handlers
  std::uint64_t output_buffered = 0;          ///< now: bytes handlers wrote, not yet sent
  std::uint64_t params_pending = 0;           ///< now: params held by requests not yet ended
  std::uint64_t requests_running_max = 0;     ///< most requests_running seen at once
  std::uint64_t requests_queued_max = 0;      ///< most requests_queued seen at once
  std::uint64_t slow_requests = 0;            ///< total: ran past Config::slow_request_threshold
  std::uint64_t streams_open = 0;  ///< now: detached responses not yet ended (Config::max_streams)
  std::uint64_t stream_writes_dropped = 0;  ///< total: stream writes after a stop or end
  /// now: processes serving (Config::processes; 1 when this process serves itself). A process
  /// past its recycling limit counts until its replacement is ready.
  std::uint64_t processes_running = 0;
  std::uint64_t process_restarts = 0;  ///< total: children that died unasked, replaced
  /// total: children replaced for max_requests_per_process, max_rss_per_process or SIGHUP
  std::uint64_t process_recycles = 0;
  /// Each pool's share of the request figures above, the default pool first, then
  /// Config::pools in order. A request refused before a pool was chosen (its params past a
  /// budget) counts in the totals only.
  std::vector<PoolStats> pools{};
};

/// Threading: construct, run() and destroy on one thread; stop(), local_endpoints() and
/// stats() from any thread (stop() also from a signal handler).
class Server {
 public:
  /// Throws std::invalid_argument on a bad Config (an address that does not parse, a zero
  /// limit).
  Server(Config config, Handler& handler);
  /// Stops and waits for run() to return when it is running elsewhere; never throws.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener, then serves until stop() or SIGINT/SIGTERM, then drains: stops
  /// accepting, lets admitted requests finish within Config::shutdown_timeout, cancels the
  /// rest, and returns once every connection is closed and every worker has returned (or was
  /// abandoned one second after the cancel: ownership rule 5). Throws
  /// std::system_error when a listener cannot be bound (nothing is left listening then), and
  /// std::logic_error when called twice.
  void run();
  /// Asks run() to stop and drain. Returns at once; safe before run() (run() then returns as
  /// soon as it has bound) and repeatedly.
  void stop() noexcept;

  /// Blocks until run() has bound its listeners (or failed: then empty), and returns their
  /// addresses with ports resolved, e.g. "tcp:127.0.0.1:40123", "tcp:[::1]:40124",
  /// "unix:/tmp/app.sock".
  std::vector<std::string> local_endpoints() const;

  /// The counters now (see Stats). Throws std::bad_alloc when out of memory for Stats::pools.
  Stats stats() const;

 private:
  struct Impl;  ///< lib/io/server.cpp: the only place that sees libuv
  std::unique_ptr<Impl> impl_;
};

}  // namespace fcgimux
