// SPDX-License-Identifier: MIT
#pragma once

// Exchange: the state of one request, shared by the I/O thread and the worker that runs it.
//
// Life, as a two-party handshake (no shared_ptr):
//  1. The I/O thread creates it at BEGIN_REQUEST and owns it alone while PARAMS arrive.
//  2. Admission puts it in the AdmissionQueue. The I/O thread may take it back out
//     (AdmissionQueue::remove) when the request is aborted before a worker took it.
//  3. A worker pops it and runs the handler, whose records go to the connection's Output. With
//     the last of them written, the worker marks it ended() and hands it back with
//     Notice::Ended (or Notice::Cut) — the last thing the worker does with it.
//  4. The I/O thread retires it: on that notice, or at once when it was never admitted or was
//     taken back out of the queue. A retired exchange is kept for a later request (reuse()),
//     with its buffers, so that the steady path of a request allocates nothing.
//  Or, when the server abandons the worker at shutdown (dispatch/worker_pool.hpp): the I/O
//  thread moves it into the SharedState, which the worker's thread keeps alive; its notice is
//  dropped, and it is freed with that state.
// A detached request (Response::detach()) shares step 3 between the worker and the stream's
// handle (ResponseStream): each holds the exchange (stream_holds_, 2 at detach, plus one for
// each wait_writable() under way), and whichever lets go last ends the request and hands the
// exchange back as in step 3, from its own thread. Until then the exchange stays in its
// connection's table, so the connection, its output and the exchange outlive every writer,
// even once the connection closed. The handle's calls are serialized by its StreamState's
// mutex (dispatch/stream_state.hpp); after detach the worker touches no output state.
// Between 3 and 4 the request is ended() but still in its connection's table: its
// END_REQUEST may be on the socket, and the client may reuse its id at once (nginx always
// uses id 1), before the notice arrives. The connection then treats the id as free.
//
// Hand-offs inside it, each guarded by mutex_:
//  - the body streams (FCGI_STDIN, FCGI_DATA): producer the I/O thread (push_*, end_*),
//    consumer the worker (read via Request);
//  - the stop source: stop() from the I/O thread, stop_token() anywhere (std::stop_source is
//    itself thread-safe).
// Everything else is owned by one side: the output state by the worker running the request
// (by the stream's handle once detached), the fields marked "I/O thread only" by the I/O
// thread.

#include <atomic>
#include <chrono>
#include <memory>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/buffer_pool.hpp"
#include "dispatch/notice_queue.hpp"
#include "dispatch/output.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"
#include "observe/counters.hpp"
#include "util/logger.hpp"

namespace fcgimux::dispatch {

struct SharedState;
class PoolState;

// What every exchange of one server shares. Owned by the server; outlives every exchange.
struct ExchangeContext {
  NoticeQueue& notices;
  observe::Counters& counters;
  const util::Logger& logger;
  std::size_t params_budget;
  std::size_t body_budget;
  bool access_log;                          // Config::access_log
  BufferPool* body_buffers;                 // null: each body stream allocates its own
  std::size_t max_streams = 0;              // Config::max_streams; 0: every detach is refused
};

// Why a request was stopped; the first reason given wins.
using StopReason = fcgimux::StopReason;

// Threading: as the file comment says, method by method.
class Exchange {
 public:
  // I/O thread. `output` is the output of the request's connection; it must outlive the
  // exchange.
  Exchange(const ExchangeContext& context, std::uint64_t connection_id, std::uint16_t id,
           protocol::Role role, bool keep_conn, Output& output);
  ~Exchange();
  // I/O thread. Makes a retired exchange a new one, as the constructor would, keeping the
  // buffers it has.
  void reuse(std::uint64_t connection_id, std::uint16_t id, protocol::Role role, bool keep_conn,
             Output& output);
  // I/O thread. The request is over (step 4): gives back what it holds for others (unread
  // body bytes, body buffers) and trims what it keeps to a small size.
  void retire() noexcept;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  std::uint16_t id() const noexcept { return id_; }
  protocol::Role role() const noexcept { return role_; }
  bool keep_conn() const noexcept { return keep_conn_; }
  std::uint64_t connection_id() const noexcept { return connection_id_; }
  // The output of the request's connection.
  Output& output() const noexcept { return *output_; }
  // Any thread: the worker is done with the request (step 3): its last records are written.
  bool ended() const noexcept { return ended_.load(std::memory_order_acquire); }

  // --- I/O thread, before admission ---------------------------------------------------------
  // Appends one PARAMS piece; Error::NameValueTooLarge past ExchangeContext::params_budget.
  protocol::Error append_params(std::span<const std::byte> piece);
  // Parses the complete params block (the empty PARAMS record arrived).
  // Error::NameValueTooLarge when its pairs are more than ExchangeContext::params_budget /
  // sizeof(NameValue): their views would take more memory than the budget.
  protocol::Error finish_params();
  // Bytes of params appended so far.
  std::size_t params_size() const noexcept { return params_block_.bytes().size(); }

  // --- I/O thread, any time -----------------------------------------------------------------
  // Appends body bytes. Returns true when this push filled the stream's budget: the caller
  // stops reading the connection until a Notice::BodyRead for this exchange (or its deletion;
  // see holds_reader()).
  bool push_stdin(std::span<const std::byte> bytes);
  bool push_data(std::span<const std::byte> bytes);
  void end_stdin();
  void end_data();
  bool stdin_ended() const;
  bool data_ended() const;
  // Whether the last push filled a budget that no Notice::BodyRead has released yet.
  bool holds_reader() const;
  // Cancels the request: its stop token fires, blocked reads and writes return.
  void stop(StopReason reason) noexcept;
  bool stopped() const noexcept { return stop_.stop_requested(); }
  StopReason stop_reason() const noexcept { return stop_reason_.load(std::memory_order_relaxed); }
  // Any thread: the response was detached (Response::detach()).
  bool detached() const noexcept { return detached_.load(std::memory_order_relaxed); }

  // The request's share of its pool's admission count (PoolCounters::in_flight).
  // take_slot(): the I/O thread, at admission, once `pool` is set. release_slot(): any thread,
  // once the request is over for admission's purposes; only the first call releases, and it
  // returns whether it did.
  void take_slot() noexcept;
  bool release_slot() noexcept;

  // I/O thread only: whether the request's params ended, and whether it is admitted (queued or
  // running), as the connection tracks them.
  bool params_ended = false;  // the empty PARAMS record arrived, or the request left before
  bool admitted = false;
  // The pool chosen for it once its params are complete (null before, and for an exchange
  // run without a server: no queue timeout then, and no pool figures), and when it was
  // admitted: both written by the I/O thread before the queue hands the exchange to a worker
  // (the queue's mutex orders the two), then read-only.
  PoolState* pool = nullptr;
  std::chrono::steady_clock::time_point admitted_at;

  // --- the worker running the request -------------------------------------------------------
  // Runs `handler` and hands the exchange back (step 3 above), or shares that with the
  // stream's handle when the handler detached its response. The exchange may be gone when
  // this returns. `owner`: the state the worker keeps alive, which a stream's handle then keeps
  // alive too (dispatch/worker_pool.hpp); null in tests without a server.
  void run(Handler& handler, const std::shared_ptr<SharedState>* owner = nullptr) noexcept;

  std::span<const protocol::NameValue> params() const noexcept { return params_; }
  std::stop_token stop_token() const noexcept { return stop_.get_token(); }
  std::size_t read_stdin(std::span<std::byte> into) { return read(stdin_, into); }
  std::size_t read_data(std::span<std::byte> into) { return read(data_, into); }

  void set_status(int code) noexcept;
  void add_header(std::string_view name, std::string_view value);
  bool headers_sent() const noexcept { return headers_sent_; }
  void write(std::span<const std::byte> bytes);
  void flush();
  void log_error(std::string_view line);
  void set_app_status(std::uint32_t status) noexcept { app_status_ = status; }
  // Sleeps until `duration` passes (true) or the request is stopped (false).
  bool wait_for(std::chrono::steady_clock::duration duration);
  // Detaches the response (Response::detach()): a closed stream when refused.
  ResponseStream detach();

  // --- the stream's handle, under its StreamState's mutex -------------------------------------
  // Sends the header block (when not sent yet) and `bytes` as whole records, unless the output
  // has no room; nothing to send is Queued.
  ResponseStream::Written stream_write(std::span<const std::byte> bytes);
  // Another holder of the exchange (a wait under way), and its release: the last release ends
  // the request (any thread; the exchange may be gone when it returns).
  void add_stream_hold() noexcept { stream_holds_.fetch_add(1, std::memory_order_relaxed); }
  void release_stream_hold() noexcept;

 private:
  // One inbound stream: bytes pushed by the I/O thread, read by the worker.
  struct Stream {
    std::string bytes;  // bytes[read_pos..] are unread
    std::size_t read_pos = 0;
    bool ended = false;
    bool holds_reader = false;  // this stream's fill paused the connection
    std::size_t unread() const noexcept { return bytes.size() - read_pos; }
  };

  bool push(Stream& stream, std::span<const std::byte> bytes);
  void end(Stream& stream);
  std::size_t read(Stream& stream, std::span<std::byte> into);

  void send_headers();
  // Whether a response whose header block has not gone out gets a Content-Length from the
  // server: see Response.
  bool wants_content_length() const noexcept;
  // Seals the STDOUT bytes being built and writes them to the output, waiting for its budget.
  // Returns false (dropping them) once the request is stopped.
  bool send_chunk();
  // Writes `records` to the output, waiting for its budget; false when they were dropped.
  bool send_records(std::string_view records);
  // Makes chunk_ whole STDOUT records: one in place when its content fits, else as many as
  // it takes (a header block may be larger than a record).
  void seal_chunk();
  // Logs `what` happened and its `detail` at `level`, naming the request's method and URI,
  // and answers `code`.
  void answer_failure(LogLevel level, int code, std::string_view what,
                      std::string_view detail) noexcept;
  // Answers `code` with a short plain-text body, unless the header block already went out.
  void answer_status(int code) noexcept;
  void finish() noexcept;
  // The last holder of a detached exchange lets go: counts, logs and finishes the request.
  void end_stream() noexcept;
  // Takes one of ExchangeContext::max_streams; false when all are taken.
  bool take_stream_slot() noexcept;
  // The access log's line for this request, which ran from `started` after `waited` in the
  // queue, with `result` ("ok", "error", "too_large" or "aborted").
  std::string access_line(std::chrono::steady_clock::time_point started,
                          std::chrono::steady_clock::duration waited,
                          std::string_view result) const;

  const ExchangeContext& context_;
  std::uint64_t connection_id_;
  std::uint16_t id_;
  protocol::Role role_;
  bool keep_conn_;
  Output* output_;

  protocol::NameValueBlock params_block_;
  std::vector<protocol::NameValue> params_;  // views into params_block_

  mutable std::mutex mutex_;
  std::condition_variable_any readable_;
  Stream stdin_;  // Guarded by mutex_.
  Stream data_;   // Guarded by mutex_.
  std::stop_source stop_;
  std::atomic<bool> holds_slot_{false};                    // see take_slot()
  std::atomic<StopReason> stop_reason_{StopReason::None};  // set before stop_ fires
  std::atomic<bool> ended_{false};                         // see ended()
  std::atomic<bool> detached_{false};                      // see detached()
  std::atomic<unsigned> stream_holds_{0};                  // see the file comment
  const std::shared_ptr<SharedState>* owner_ = nullptr;    // the worker's, during run()
  std::chrono::steady_clock::time_point started_;          // the handler's start, for the log

  // Output: the worker's only.
  std::string chunk_;  // one STDOUT record being built: 8-byte header space, then content
  int status_ = 200;
  std::string headers_;  // "Name: value\r\n" lines
  bool headers_sent_ = false;
  bool length_set_ = false;  // the handler set Content-Length or Transfer-Encoding
  // Where in chunk_ the blank line ending the header block is, while the block is built but
  // has not gone out; 0 otherwise.
  std::size_t header_end_ = 0;
  bool output_started_ = false;  // a record of the response went out, or is on its way
  bool status_refused_ = false;  // set_status() logged a code out of range
  bool stderr_used_ = false;
  std::uint32_t app_status_ = 0;
  std::uint64_t body_bytes_ = 0;  // written by the handler, for the access log
  bool response_closed_ = false;  // detach() was called: the Response does nothing more
  bool stream_refused_ = false;   // detach() found max_streams open: answered as overloaded
};

}  // namespace fcgimux::dispatch
