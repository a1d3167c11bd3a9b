// SPDX-License-Identifier: MIT
#pragma once

// One client connection: reads bytes, decodes records, keeps the table of the requests in
// flight on it (id → Exchange), and owns its output (connection_output.hpp), the one place its
// outgoing bytes wait.
//
//            accept
//              │
//              ▼
//   ┌──────── Open ◄──────────────┐   reading, unless a request's body budget is full or the
//   │          │ │                │   output is over its budget (TCP pushes back on the client)
//   │          │ └── read hold ───┘
//   │          │
//   │  peer closed, bad input, write error, last request done without FCGI_KEEP_CONN,
//   │  idle while the server drains, a response cut short
//   │          ▼
//   │       Closing    handle closing; queued requests are taken back, running ones are
//   │          │       stopped and their notice arrives later; nothing more is written
//   │          ▼
//   └──►    Closed     handle closed; freed once its last exchange is gone
//
// The state machine knows nothing of sockets: it consumes bytes and drives its transport
// through a handful of virtual calls. Workers write their requests' records to the output
// themselves; their notices (dispatch/notice_queue.hpp) tell the connection that a request
// ended, that it may read again, or that the output needs the I/O thread. StreamConnection
// (stream_connection.hpp) is the transport over a libuv stream (TCP, Unix socket); the
// whole-connection fuzz target drives the same state machine through a transport in memory.
//
// Threading: I/O thread only, but for send(), which the output calls from any thread.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/exchange.hpp"
#include "dispatch/notice_queue.hpp"
#include "fcgimux/protocol.hpp"
#include "io/connection_output.hpp"

namespace fcgimux::io {

class ServerCore;

class Connection : public ConnectionOutput::Transport {
 public:
  Connection(ServerCore& server, std::uint64_t id);
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The connection whose output `exchange` writes to: every exchange's output is a
  // ConnectionOutput made by a Connection, its transport.
  static Connection& of(const dispatch::Exchange& exchange) noexcept;

  // --- from the server -----------------------------------------------------------------------
  // Closes at once, e.g. past max_connections. `why` goes to the log at `level`.
  void close(LogLevel level, std::string_view why) noexcept;
  // A worker's notice about one of this connection's exchanges. Returns whether the connection
  // is still open; when it returns false the connection may have been freed.
  bool deliver(const dispatch::Notice& notice) noexcept;
  // Sends what is queued for the peer, unless someone else is writing it; reads again when the
  // output fell under its budget.
  void flush() noexcept;
  // The server drains: close now when idle between requests, else once the request in flight
  // ends (or at the shutdown deadline).
  void drain() noexcept;
  // The shutdown deadline passed: cancel every request.
  void cancel_requests() noexcept;
  // The server gives up on the requests whose handlers ignore their cancellation. Requires:
  // closed, so each exchange left is run by a worker. Moves them to `exchanges` and returns
  // the connection's output (they may still touch both); the connection forgets them.
  std::unique_ptr<ConnectionOutput> abandon_requests(
      std::vector<dispatch::Exchange*>& exchanges) noexcept;
  // Closes the connection when idle past Config::idle_timeout, and stops its requests that
  // ran past Config::request_timeout. `now` is the loop's time in milliseconds.
  void sweep(std::uint64_t now) noexcept;

  std::uint64_t id() const noexcept { return id_; }
  // The peer's address into `out`; false when the connection is not over TCP/IP.
  virtual bool peer_address(sockaddr_storage& out) const noexcept = 0;
  bool closed() const noexcept { return state_ != State::Open; }
  // Where the server's list holds this connection, for removal in O(1).
  std::list<std::unique_ptr<Connection>>::iterator list_position;

  // --- from the transport --------------------------------------------------------------------
  // Bytes arrived: decodes and handles every complete record, then writes what that queued.
  void received(std::span<const std::byte> bytes) noexcept;
  // The peer closed its end (`error` 0) or reading failed (a libuv error).
  void read_ended(int error) noexcept;
  // The asynchronous write (write() returned 0) ended: `status` 0 or a libuv error.
  void written(int status) noexcept;
  // The transport closed, as close_transport() asked.
  void transport_closed() noexcept;

 protected:
  // --- the transport, implemented by a subclass ----------------------------------------------
  // Starts writing `pieces`, which stay untouched and alive until the write ends, waiting for
  // the socket to take them. Returns 1 when every byte went out at once (written() does not
  // follow), 0 when the write is under way (written() follows, also after close_transport()),
  // or a negative libuv error.
  virtual int write(std::span<const std::string_view> pieces) noexcept = 0;
  virtual void pause_reading() noexcept = 0;
  // Returns 0 or a libuv error.
  virtual int resume_reading() noexcept = 0;
  // Bytes the peer sent that are not read yet (0 when unknown).
  virtual std::size_t unread_bytes() const noexcept = 0;
  // Starts closing; transport_closed() follows, never from inside this call.
  virtual void close_transport() noexcept = 0;
  // (ConnectionOutput::Transport::send: the non-blocking send, from any thread.)
  // The time now in milliseconds, on the loop's clock.
  std::uint64_t now() const noexcept;

  ServerCore& server_;

 private:
  enum class State : unsigned char { Open, Closing, Closed };

  // Decodes and handles records from `bytes` until they run out, the connection closes, or a
  // reply finds its output over budget; returns the bytes left.
  std::span<const std::byte> consume(std::span<const std::byte> bytes) noexcept;
  void handle_record(const protocol::Record& record);
  void handle_management(const protocol::Record& record);
  void handle_begin(const protocol::Record& record);
  void handle_abort(std::uint16_t request_id);
  void handle_params(dispatch::Exchange& exchange, std::span<const std::byte> content);
  void handle_body(dispatch::Exchange& exchange, const protocol::Record& record);

  // The request on `request_id`, unless there is none or it has ended (its id is free).
  dispatch::Exchange* find(std::uint16_t request_id) const noexcept;
  // The requests in the table that have not ended.
  std::size_t live_requests() const noexcept;
  // Answers request `request_id` at once, without a worker: `response` (a whole CGI response)
  // on FCGI_STDOUT unless empty, then END_REQUEST with `status`.
  void reply(std::uint16_t request_id, protocol::ProtocolStatus status,
             std::string_view response = {});
  // Queues records the I/O thread writes itself; they go out with the next flush().
  void send_reply(std::string_view records);
  // Answers request `request_id` as Config::overload_reply says, counted as overloaded.
  void reply_overloaded(std::uint16_t request_id);
  // Refuses `exchange` with a 431, its params past max_params_bytes; `how` ends the log line.
  void refuse_large_params(dispatch::Exchange& exchange, std::string_view how);
  // Answers request `request_id` as Config::overload_reply says, counting nothing.
  void answer_unavailable(std::uint16_t request_id);
  // The HTTP status of that answer: 503, or 0 when it is FCGI_OVERLOADED alone. `alone`: the
  // connection carries no other request.
  int unavailable_status(bool alone) const noexcept;
  // The access log's line (when Config::access_log) for `exchange`, refused before a handler
  // ran with `status` (0: a FastCGI protocol status alone) for `reason`. Call it before
  // remove(): the line names the request's method and URI when its params were complete.
  void log_refused(const dispatch::Exchange& exchange, int status,
                   std::string_view reason) noexcept;
  // The params of `exchange` ended (or it is leaving before they did): they no longer count
  // as pending, on this connection or the server.
  void end_params(dispatch::Exchange& exchange) noexcept;
  // Ends the requests no handler runs (unadmitted, or taken back out of the queue: those are
  // answered as overloaded while the connection is open) and stops the running ones, which
  // stay in the table until their worker hands them back.
  void stop_requests(dispatch::StopReason reason) noexcept;
  // Takes `exchange` out of the table and retires it; an admitted one releases its admission.
  // Requires: no worker holds it (never admitted, taken back out of the queue, or ended).
  void remove(dispatch::Exchange& exchange) noexcept;
  void hold_reading() noexcept;
  void release_reading() noexcept;
  // Stops reading while the output is over budget, keeping `rest` (the bytes of the last
  // read not consumed yet) for when it has room again.
  void wait_for_output(std::span<const std::byte> rest) noexcept;
  // Reads on once the output has room: first what wait_for_output() kept.
  void read_on_if_room() noexcept;
  // Pauses or resumes the transport when whether anything holds reading changed.
  void update_reading(bool was_held) noexcept;
  bool reading_held() const noexcept { return read_holds_ > 0 || waiting_for_output_; }
  // After a request ended: close when the client asked for it or the server drains.
  void close_if_done() noexcept;
  void free_if_done() noexcept;

  const std::uint64_t id_;
  State state_ = State::Open;

  protocol::Decoder decoder_;
  std::vector<dispatch::Exchange*> requests_;  // by arrival, ended ones included; owned here
  bool close_when_idle_ = false;               // a finished request had no FCGI_KEEP_CONN
  bool served_ = false;                        // a request ended here
  std::size_t read_holds_ = 0;                 // requests whose body budget is full
  bool waiting_for_output_ = false;            // a reply found the output over its budget
  bool replied_ = false;                       // the record being handled was answered
  std::string unconsumed_;                     // what wait_for_output() kept
  std::size_t admitted_here_ = 0;              // requests of requests_ that are admitted
  std::size_t pending_params_ = 0;             // params bytes of requests whose params go on
  // Loop time of the last progress while admitted_here_ is 0: a request's params ended, or
  // its last admitted request ended. Refusals and records that end nothing do not count, so
  // that a peer cannot hold a connection (and what it buffers) by sending them.
  std::uint64_t idle_since_ = 0;

  std::unique_ptr<ConnectionOutput> output_;    // null only once abandon_requests() took it
  std::vector<std::string_view> async_pieces_;  // the asynchronous write under way
  bool async_write_ = false;                    // write() returned 0; written() follows
};

}  // namespace fcgimux::io
