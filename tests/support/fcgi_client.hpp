// SPDX-License-Identifier: MIT
#pragma once

// A tiny blocking FastCGI client for tests, built on the public codec (fcgimux/protocol.hpp).
// It plays the web server: it sends records cut and padded exactly as a test asks, and collects
// what the server answers, per request id. Every wait is bounded (see Socket).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "socket.hpp"

namespace fcgimux::test {

// Params in the order they go on the wire.
using Params = std::vector<std::pair<std::string, std::string>>;

// How a stream (PARAMS, STDIN) is cut into records.
struct Framing {
  // Content bytes per record, taken in turn and repeated: {1, 7} sends 1, 7, 1, 7, ... bytes.
  // Each is 1..65535.
  std::vector<std::size_t> record_sizes{protocol::kMaxAlignedContentLength};
  // Padding bytes after each record; by default what pads it to a multiple of 8 (FastCGI 1.0
  // §3.3 recommends it, and allows any padding up to 255).
  std::optional<std::uint8_t> padding;
};

// Appends one record. Its padding bytes are not zero, so a receiver that takes padding for
// content is caught.
void append_record(std::string& out, protocol::RecordType type, std::uint16_t request_id,
                   std::string_view content, std::uint8_t padding);
// Appends `content` as a stream of records framed as `framing` says, then the empty record
// that ends the stream.
void append_stream(std::string& out, protocol::RecordType type, std::uint16_t request_id,
                   std::string_view content, const Framing& framing = {});
// The same stream, one string per record (for interleaving the records of several requests).
std::vector<std::string> stream_records(protocol::RecordType type, std::uint16_t request_id,
                                        std::string_view content, const Framing& framing = {});
// The FastCGI 1.0 §3.4 encoding of `params`, as one block.
std::string encode_params(const Params& params);

struct ReceivedRecord {
  protocol::Header header;
  std::string content;  // without padding
};

// What the server sent for one request.
struct Response {
  std::string out;         // the FCGI_STDOUT stream
  std::string err;         // the FCGI_STDERR stream
  bool out_ended = false;  // the empty FCGI_STDOUT record that ends the stream arrived
  std::optional<protocol::EndRequestBody> end;  // FCGI_END_REQUEST, once it arrived
};

// What the server sent for several requests on one connection.
struct Responses {
  std::map<std::uint16_t, Response> by_id;
  std::vector<std::uint16_t> end_order;  // request ids in the order their END_REQUEST came
};

struct RequestOptions {
  std::uint16_t id = 1;
  bool keep_conn = true;  // FCGI_KEEP_CONN
  Framing params;
  Framing body;
};

// One client connection. Records the server sends while the client is still sending are kept
// in order, so a server that answers as it reads never deadlocks the client.
// Threading: one thread at a time.
class FcgiClient {
 public:
  // Connects to an endpoint as Server::local_endpoints() spells it. Throws TestError.
  explicit FcgiClient(std::string_view endpoint, std::chrono::milliseconds timeout = kTimeout);

  void send_raw(std::string_view bytes);
  void send_begin_request(std::uint16_t id, bool keep_conn,
                          protocol::Role role = protocol::Role::Responder);
  // Sends `params` as a PARAMS stream (the empty record that ends it included).
  void send_params(std::uint16_t id, const Params& params, const Framing& framing = {});
  // Sends `body` as a STDIN stream (the empty record that ends it included).
  void send_stdin(std::uint16_t id, std::string_view body, const Framing& framing = {});
  void send_abort(std::uint16_t id);
  // Sends BEGIN_REQUEST, PARAMS and STDIN in one write.
  void send_request(const Params& params, std::string_view body,
                    const RequestOptions& options = {});

  // The next record from the server; nothing once the server has closed the connection.
  // Throws TestError on a timeout, a malformed stream, or a close in the middle of a record.
  std::optional<ReceivedRecord> read_record();
  // Reads until every request in `ids` has its END_REQUEST. Throws TestError on a record for
  // any other id, a record after its request's END_REQUEST, or a close before the end.
  Responses collect(std::span<const std::uint16_t> ids);
  // Sends one request and collects its response.
  Response request(const Params& params, std::string_view body = {},
                   const RequestOptions& options = {});

 private:
  // Decodes every byte in received_ into records_.
  void decode_received();

  Socket socket_;
  std::string received_;
  protocol::Decoder decoder_;
  std::deque<ReceivedRecord> records_;
};

// A CGI response (RFC 3875 §6): header lines, a blank line, the body.
struct CgiResponse {
  int status = 200;  // from the "Status" header; 200 without one
  std::vector<std::pair<std::string, std::string>> headers;  // in order, "Status" included
  std::string body;

  // The value of the first header named `name` (ASCII case-insensitive), or nothing.
  std::optional<std::string> header(std::string_view name) const;
};
// Splits the FCGI_STDOUT stream of a response. Lines may end in CRLF or LF. Throws TestError
// when the header block does not end or a header line has no colon.
CgiResponse parse_cgi_response(std::string_view out);

}  // namespace fcgimux::test
