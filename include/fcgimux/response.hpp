// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <span>
#include <stop_token>
#include <string_view>

#include "fcgimux/request.hpp"

namespace fcgimux {

namespace dispatch {
class Exchange;
struct StreamState;
}  // namespace dispatch

class ResponseStream;

/// The output of one request: a CGI response (FastCGI 1.0 §6.2) on FCGI_STDOUT, plus the
/// FCGI_STDERR stream and the application status of FCGI_END_REQUEST.
///
/// The header block ("Status: 200 OK", then each header) goes out with the first write() or
/// flush(), or when the handler returns. Output is buffered and sent in records of up to 64 KiB
/// while the handler runs; flush() sends what is buffered now. When the connection already
/// holds Config::connection_output_budget unsent bytes, writing blocks until the client reads.
/// Once the request is stopped (see Request::stop_token()), writes return at once and discard
/// their bytes.
///
/// A response still whole in the buffer when the handler returns (it never flushed, and wrote
/// less than one record, about 64 KiB, headers included) goes out with a `Content-Length`
/// header the server adds, so that a web server need not send it chunked. Not added when the
/// handler set Content-Length or Transfer-Encoding itself, on a 1xx, 204 or 304 status, in
/// answer to HEAD (the length would have to be the GET body's), or for the Authorizer role.
///
/// Owned by the library; the reference passed to Handler::handle() is valid until handle()
/// returns. Threading: One worker at a time (the one running the request).
class Response {
 public:
  Response(const Response&) = delete;
  Response& operator=(const Response&) = delete;

  /// The HTTP status, 200 unless set. Ignored once the header block was sent.
  void status(int code);
  /// Adds a header line. Ignored once the header block was sent. A name or value holding CR
  /// or LF is refused (ignored, with a log line): it would forge headers.
  void header(std::string_view name, std::string_view value);
  /// Whether the header block has gone out (after the first write or flush).
  bool headers_sent() const noexcept;

  /// Appends body bytes; may block on the connection's output budget.
  void write(std::string_view bytes);
  /// The same, for bytes.
  void write(std::span<const std::byte> bytes);
  /// Formats with fmt, then write()s the result.
  template <class... Args>
  void print(fmt::format_string<Args...> format, Args&&... args) {
    fmt::memory_buffer buffer;
    fmt::format_to(std::back_inserter(buffer), format, std::forward<Args>(args)...);
    write(std::string_view(buffer.data(), buffer.size()));
  }
  /// Sends everything buffered so far (the header block included) to the client.
  void flush();

  /// Writes one line to the FCGI_STDERR stream (the web server's error log); a newline is
  /// added when missing.
  void log_error(std::string_view line);
  /// The appStatus of FCGI_END_REQUEST, 0 unless set (FastCGI 1.0 §5.5: like a CGI program's
  /// exit status).
  void app_status(std::uint32_t status) noexcept;

  /// Detaches the response from the handler: the request stays open after handle() returns,
  /// its worker is free for other requests, and the returned stream writes the rest of the
  /// response from any thread (see ResponseStream). The status and headers set so far go out
  /// with the stream's first write or flush. This Response then does nothing: its calls are
  /// ignored. A detached request leaves Config::max_requests and counts against
  /// Config::max_streams instead (Stats::streams_open). Past that bound, or when called again,
  /// or once the request is stopped, it returns a closed stream (every write answers Closed):
  /// past the bound, the request is answered as an overloaded one (503, counted in
  /// Stats::requests_overloaded) when handle() returns.
  ResponseStream detach();

 private:
  friend class dispatch::Exchange;
  explicit Response(dispatch::Exchange& exchange) noexcept : exchange_(exchange) {}
  dispatch::Exchange& exchange_;
};

}  // namespace fcgimux

namespace fcgimux {

/// The rest of a detached response (Response::detach()): a handle the application owns, which
/// may outlive handle(), and the Server too. Movable, not copyable; a default-made or
/// moved-from stream is closed.
///
/// Writes never block. A write goes out as whole FCGI_STDOUT records at once (there is no
/// buffering to flush, but for the header block) when the connection holds less than its
/// output budget (Config::connection_output_budget); otherwise nothing is taken and the write
/// answers WouldBlock. wait_writable() then waits, up to a deadline, for the client to read.
/// So a connection holds at most its budget plus one write for each thread writing at that
/// moment, as with a handler's blocking writes (one 64 KiB record each) when writes are no
/// larger: write events, not files.
///
/// The stream is stopped when its client goes away (the connection closes), the web server
/// aborts the request, Config::request_timeout passes, or the server's shutdown deadline
/// passes (StopReason says which). From then on writes answer Closed and drop their bytes
/// (counted in Stats::stream_writes_dropped). A stopped stream should be ended or dropped
/// soon: its request, and so its connection and the server's drain, last until it is.
///
/// end() finishes the response with FCGI_END_REQUEST; dropping the stream without end() does
/// the same (with app status 0, and a debug log line). A response stopped by the request
/// deadline or the shutdown after part of it went out is not reported complete: its
/// connection closes without an END_REQUEST (as for a handler's response); after a client
/// abort the END_REQUEST goes out (FastCGI 1.0 §5.4); after the connection closed nothing
/// does.
///
/// Threading: Thread-safe: any thread may write, flush, end or ask at the same time, but
/// moving, assigning and destroying the stream must not overlap other calls on it (as for any
/// object).
class ResponseStream {
 public:
  /// What a write did.
  enum class Written : unsigned char {
    Queued,      ///< taken whole: on the socket, or queued behind other bytes
    WouldBlock,  ///< nothing taken: the connection's output is at its budget (wait_writable())
    Closed,      ///< nothing taken, for good: the stream was stopped or ended
  };

  /// A closed stream.
  ResponseStream() noexcept;
  /// Takes `other`'s stream; `other` is closed after.
  ResponseStream(ResponseStream&& other) noexcept;
  /// Ends the stream held so far (as the destructor would), then takes `other`'s.
  ResponseStream& operator=(ResponseStream&& other) noexcept;
  /// Ends the request unless end() did: see the class comment.
  ~ResponseStream();
  ResponseStream(const ResponseStream&) = delete;
  ResponseStream& operator=(const ResponseStream&) = delete;

  /// Writes body bytes (the header block first, on the first write): see the class comment.
  Written write(std::string_view bytes);
  /// The same, for bytes.
  Written write(std::span<const std::byte> bytes);
  /// Formats with fmt, then write()s the result.
  template <class... Args>
  Written print(fmt::format_string<Args...> format, Args&&... args) {
    fmt::memory_buffer buffer;
    fmt::format_to(std::back_inserter(buffer), format, std::forward<Args>(args)...);
    return write(std::string_view(buffer.data(), buffer.size()));
  }
  /// Sends the header block, when it has not gone out yet: the client then sees the response
  /// begin before the first write. Writes are not buffered, so there is nothing else to send.
  Written flush();
  /// Blocks until the connection holds less than its output budget (a write would be taken),
  /// the stream is stopped or ended, or `deadline` passes. Returns true when it may write.
  /// A concurrent end() takes effect once this returns.
  bool wait_writable(std::chrono::steady_clock::time_point deadline);

  /// Ends the response: the closing records and FCGI_END_REQUEST with `app_status` (FastCGI
  /// 1.0 §5.5) go out, unless the request was stopped (see the class comment). Only the first
  /// call does anything; writes after it answer Closed.
  void end(std::uint32_t app_status = 0) noexcept;

  /// Whether writes may still be taken: neither stopped nor ended.
  bool open() const noexcept;
  /// Fires when the stream is stopped (not when it is ended). Valid after end() too, but then
  /// never fires again.
  std::stop_token stop_token() const noexcept;
  /// Why the stream was stopped: StopReason::None while it is not. Once ended, the reason it
  /// had then.
  StopReason stop_reason() const noexcept;
  /// Calls `callback` once when the stream is stopped: at once, on this thread, when it
  /// already is; else on the thread that stops it, which is the server's I/O thread, so it
  /// must be quick and must not block (wake a thread of your own; it may call end()). Replaces
  /// the callback set before; the last one is dropped by end(). Does nothing on a closed
  /// stream.
  void on_stop(std::function<void()> callback);

 private:
  friend class dispatch::Exchange;
  explicit ResponseStream(std::unique_ptr<dispatch::StreamState> state) noexcept;
  std::unique_ptr<dispatch::StreamState> state_;
};

}  // namespace fcgimux
