// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>

#include "fcgimux/protocol.hpp"

namespace fcgimux {

namespace dispatch {
class Exchange;
}

/// The three roles of FastCGI 1.0 §6.
using Role = protocol::Role;
/// One FastCGI parameter: views into the request's params, valid until handle() returns.
using Param = protocol::NameValue;

/// Thrown by Request::read_all() when the body is longer than the caller allows. Left
/// uncaught by a handler, it becomes a 413 response (when no header was sent yet) and a
/// warning log line: the client's error, counted in Stats::requests_body_too_large, not as a
/// failed request.
class LimitExceeded : public std::length_error {
 public:
  using std::length_error::length_error;
};

/// Why a request was stopped (Request::stop_reason(), ResponseStream::stop_reason()); the first
/// reason wins.
enum class StopReason : unsigned char {
  None,         ///< not stopped
  ClientGone,   ///< its connection closed: the client (or the web server) went away, or bad input
  ClientAbort,  ///< the web server sent FCGI_ABORT_REQUEST
  Deadline,     ///< it ran past Config::request_timeout
  Shutdown,     ///< the server's shutdown deadline passed
};

/// A request as its handler sees it. Owned by the library; the reference passed to
/// Handler::handle() is valid until handle() returns. Not copyable or movable.
/// Threading: One worker at a time (the one running the request).
class Request {
 public:
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// The role the web server asked this request to play (FastCGI 1.0 §6).
  Role role() const noexcept;
  /// The FastCGI request id (1..65535), unique among the connection's requests in flight.
  std::uint16_t id() const noexcept;
  /// Whether the client asked to keep the connection open after this request (FCGI_KEEP_CONN).
  bool keep_conn() const noexcept;

  /// The value of the first param named `name`, or nothing. The view is valid until handle()
  /// returns.
  std::optional<std::string_view> param(std::string_view name) const noexcept;
  /// Every param in the order the client sent them; views valid until handle() returns.
  std::span<const Param> params() const noexcept;

  /// Reads body (FCGI_STDIN) bytes into `into`, blocking until at least one byte is there.
  /// Returns the count read; 0 at the end of the body, or at once once the request is stopped.
  std::size_t read(std::span<std::byte> into);
  /// The same, into chars.
  std::size_t read(std::span<char> into);
  /// Reads the rest of the body. Throws LimitExceeded when it is longer than `max_bytes`
  /// (what was read so far is then lost). Returns early, with what it has, once stopped.
  std::string read_all(std::size_t max_bytes);

  /// read() for the Filter role's FCGI_DATA stream, which follows the body.
  std::size_t read_data(std::span<std::byte> into);
  /// read_all() for the Filter role's FCGI_DATA stream.
  std::string read_all_data(std::size_t max_bytes);

  /// Stops when the client aborts the request (FCGI_ABORT_REQUEST), its connection closes, it
  /// runs past Config::request_timeout, or the server's shutdown deadline passes. Reads then
  /// return 0 and writes are discarded.
  std::stop_token stop_token() const noexcept;
  /// Why the request was stopped; StopReason::None while it runs.
  StopReason stop_reason() const noexcept;
  /// Sleeps until `duration` has passed or the request is stopped, whichever comes first.
  /// Returns true when the duration passed, false when the request was stopped (at once when
  /// it already was). For handlers that wait between pieces of output (polling, progress).
  bool wait_for(std::chrono::steady_clock::duration duration);

 private:
  friend class dispatch::Exchange;
  explicit Request(dispatch::Exchange& exchange) noexcept : exchange_(exchange) {}
  dispatch::Exchange& exchange_;
};

}  // namespace fcgimux
