// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>

namespace fcgimux {

namespace dispatch {
class Exchange;
}

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

 private:
  friend class dispatch::Exchange;
  explicit Response(dispatch::Exchange& exchange) noexcept : exchange_(exchange) {}
  dispatch::Exchange& exchange_;
};

}  // namespace fcgimux
