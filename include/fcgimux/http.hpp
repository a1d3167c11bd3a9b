// SPDX-License-Identifier: MIT
#pragma once

// Optional helpers for the Responder role: the HTTP request as the web server describes it in
// CGI params (RFC 3875 §4.1), query strings and form bodies, cookies, streaming
// multipart/form-data, the usual response chores (reason phrases, redirects, Set-Cookie,
// MIME types, whole responses and status answers), server-sent events, and a router.
//
// Everything here but the few functions that take a Request or a Response, and the Router, is
// a pure function or a self-contained parser over std::string_view: usable, testable and
// fuzzable without a server. Hostile input is an ordinary result: parsers return an `Error`
// value, never throw for bad input, and every output is bounded by a limit the caller chooses.
// (Allocation failure still throws std::bad_alloc, as everywhere in C++.) A function that
// returns an error has left its output unchanged.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"

namespace fcgimux {

/// Optional helpers for the Responder role; pure functions and parsers but for the few that
/// take a Request or a Response, and the Router.
namespace http {

/// Why input was refused. Returned, never thrown; `to_string` gives a phrase for a log line or
/// a 400 page.
enum class Error : std::uint8_t {
  None = 0,
  /// Query strings and forms.
  BadPercentEncoding,  ///< '%' not followed by two hex digits
  TooManyFields,       ///< more than FormLimits::max_fields fields
  FormTooLarge,        ///< decoded names and values past FormLimits::max_bytes
  /// Cookies.
  TooManyCookies,      ///< more than the caller's max_cookies cookies
  BadCookieName,       ///< a Set-Cookie name that is not an RFC 9110 token
  BadCookieValue,      ///< a Set-Cookie value with a byte outside RFC 6265 cookie-octet
  BadCookieAttribute,  ///< a Set-Cookie attribute with CTL or ';', or SameSite=None not Secure
  /// multipart/form-data.
  BadBoundary,         ///< not 1 to 70 RFC 2046 boundary characters
  MultipartPreamble,   ///< the body does not start with "--" and the boundary
  BadBoundaryLine,     ///< a boundary followed by something other than CRLF or "--"
  PartHeaderTooLarge,  ///< a part's header block past MultipartLimits::max_header_bytes
  BadPartHeader,       ///< a malformed header line, or no valid form-data Content-Disposition
  TooManyParts,        ///< more than MultipartLimits::max_parts parts
  MultipartTruncated,  ///< the input ended before the final boundary
};

/// A short description of `error` ("'%' not followed by two hex digits"), never empty.
/// Thread-safe (pure function).
std::string_view to_string(Error error) noexcept;

// ---------------------------------------------------------------------------------------------
// The request, from its CGI params.
//
// Web servers pass the request line and the headers as params (RFC 3875 §4.1): REQUEST_METHOD,
// REQUEST_URI, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH, and each other header as HTTP_<NAME>
// (upper case, '-' as '_'). Every function below reads only the params it names; each has an
// overload taking the Request, which reads Request::params(). Returned views point into the
// params and are valid as long as they are (for a Request: until handle() returns).
// All are Thread-safe (pure functions); the Request overloads follow Request's own rule (one
// worker at a time).

/// The request method (REQUEST_METHOD, e.g. "GET"), or "" when the web server sent none.
std::string_view method(std::span<const protocol::NameValue> params) noexcept;
/// The same, from the request's params.
std::string_view method(const Request& request) noexcept;

/// The path the client asked for, percent-decoded (RFC 3986 §2.1, as percent_decode(): "%31"
/// is '1', '+' stays '+'): raw_path() decoded, so "/items/%31" gives "/items/1". It is not
/// normalized ("/a/../b" stays as it is). Nothing when a '%' in it is not followed by two hex
/// digits (a 400, as the Router answers); "" when the web server sent no REQUEST_URI. Decoding
/// makes "%2F" a '/', so "/a%2Fb" and "/a/b" give the same path: to tell them apart, split
/// raw_path() at '/' first and decode each segment, as the Router does.
std::optional<std::string> path(std::span<const protocol::NameValue> params);
/// The same, from the request's params.
std::optional<std::string> path(const Request& request);

/// The path the client asked for: REQUEST_URI up to its first '?' or '#', exactly as the client
/// sent it (still percent-encoded, not normalized). "" when the web server sent no
/// REQUEST_URI.
///
/// Why REQUEST_URI and not SCRIPT_NAME + PATH_INFO: nginx, Apache httpd (mod_proxy_fcgi),
/// lighttpd, Caddy and HAProxy all send REQUEST_URI with the same meaning, while how they split
/// the path between SCRIPT_NAME and PATH_INFO depends on each server's configuration, and
/// nginx's are already decoded, so "/a%2Fb" and "/a/b" could not be told apart.
std::string_view raw_path(std::span<const protocol::NameValue> params) noexcept;
/// The same, from the request's params.
std::string_view raw_path(const Request& request) noexcept;

/// The query string (QUERY_STRING, without the '?'), or "" when there is none. Parse it with
/// parse_form().
std::string_view query(std::span<const protocol::NameValue> params) noexcept;
/// The same, from the request's params.
std::string_view query(const Request& request) noexcept;

/// The value of request header `name` (any case, e.g. "Content-Type" or "user-agent"), or
/// nothing when the request had no such header or `name` is empty. Content-Type and
/// Content-Length are read from CONTENT_TYPE and CONTENT_LENGTH, every other header from
/// `HTTP_<NAME>`. CGI names cannot tell '-' from '_': "X-Foo" and "X_Foo" find the same param
/// (nginx drops headers with '_' in their name by default for this reason). A header the client
/// sent more than once arrives as the web server joined it (nginx: ", "; Cookie: "; ").
std::optional<std::string_view> header(std::span<const protocol::NameValue> params,
                                       std::string_view name) noexcept;
/// The same, from the request's params.
std::optional<std::string_view> header(const Request& request, std::string_view name) noexcept;

/// One request header as the web server passed it.
struct Header {
  std::string_view param;  ///< the param's name: "CONTENT_TYPE", "HTTP_USER_AGENT", ...
  std::string_view value;  ///< the header's value, as the web server passed it

  /// The header's name in the usual spelling, rebuilt from the param's name: "Content-Type",
  /// "User-Agent" (the client's own spelling is lost in CGI; compare names case-insensitively).
  std::string name() const;

  /// Equal when every field is.
  friend bool operator==(const Header&, const Header&) = default;
};

/// The request's headers, in the order of the params: CONTENT_TYPE, CONTENT_LENGTH and every
/// HTTP_* param, except HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH, which some web servers send
/// as well and which would repeat the first two (RFC 3875 §4.1.18). A forward range over the
/// params it was made from; it allocates nothing and is valid as long as they are.
/// Threading: Immutable after construction; safe to share.
class HeaderRange {
 public:
  /// A forward iterator over the headers; an Iterator() equals no other.
  class Iterator {
   public:
    using iterator_concept = std::forward_iterator_tag;  ///< a forward iterator
    using value_type = Header;                           ///< what it yields
    using difference_type = std::ptrdiff_t;              ///< as every iterator has

    Iterator() = default;
    /// The current header. Requires: not at the end.
    Header operator*() const noexcept { return {current_->name, current_->value}; }
    /// Moves to the next header. Requires: not at the end.
    Iterator& operator++() noexcept;
    /// Moves to the next header and returns where it was. Requires: not at the end.
    Iterator operator++(int) noexcept;
    /// Equal when at the same param of the same params.
    friend bool operator==(const Iterator&, const Iterator&) = default;

   private:
    friend class HeaderRange;
    /// Requires: `current` and `end` delimit params; stops at the first header at or after
    /// `current`.
    Iterator(const protocol::NameValue* current, const protocol::NameValue* end) noexcept;

    const protocol::NameValue* current_ = nullptr;
    const protocol::NameValue* end_ = nullptr;
  };

  /// The headers among `params`, which must outlive the range.
  explicit HeaderRange(std::span<const protocol::NameValue> params) noexcept : params_(params) {}
  /// The first header.
  Iterator begin() const noexcept;
  /// Past the last header.
  Iterator end() const noexcept;

 private:
  std::span<const protocol::NameValue> params_;
};

/// The request's headers (see HeaderRange): for (const http::Header& h : http::headers(rq)).
HeaderRange headers(std::span<const protocol::NameValue> params) noexcept;
/// The same, from the request's params.
HeaderRange headers(const Request& request) noexcept;

// ---------------------------------------------------------------------------------------------
// Percent-encoding, query strings and application/x-www-form-urlencoded bodies.

/// Appends the bytes that `text` spells with percent-encoding (RFC 3986 §2.1) to `out`: "%2F"
/// becomes '/', every other byte stays as it is ('+' included: this is the decoding for paths;
/// parse_form() is the one for forms). Decoded bytes may be anything, NUL and invalid UTF-8
/// included. Returns Error::BadPercentEncoding, leaving `out` unchanged, when a '%' is not
/// followed by two hex digits: strict, because a lenient decoder and a strict one in front of
/// it (a WAF, a cache) would read the same URL differently. Output is never longer than `text`.
/// Thread-safe (pure function).
Error percent_decode(std::string_view text, std::string& out);

/// Appends `text` to `out` with every byte other than the RFC 3986 unreserved characters
/// (ALPHA, DIGIT, '-', '.', '_', '~') written as "%XX" (upper-case hex). The result holds no
/// '+', so percent_decode() and parse_form() both give `text` back. Output is at most three
/// times as long as `text`.
/// Thread-safe (pure function).
void percent_encode(std::string_view text, std::string& out);

/// One name=value pair of a query string or a form, decoded.
struct FormField {
  std::string name;   ///< decoded
  std::string value;  ///< decoded; empty for a field without '='

  /// Equal when every field is.
  friend bool operator==(const FormField&, const FormField&) = default;
};

/// Bounds for parse_form(). The defaults suit a query string or a small form; PHP's
/// max_input_vars is 1000 too.
struct FormLimits {
  std::size_t max_fields = 1000;        ///< fields at most
  std::size_t max_bytes = 1024 * 1024;  ///< decoded names plus values, all fields together
};

/// Parses application/x-www-form-urlencoded text as the WHATWG URL Standard §5.1 does: a
/// request body with that Content-Type, or a query string (QUERY_STRING), which browsers encode
/// the same way for GET forms. Fields are separated by '&' only (not ';': Python's CVE-2021-23336
/// shows what two separators cost); empty fields are skipped; a field without '=' has an empty
/// value; '+' is a space and "%XX" a byte; repeated names are kept, in order. Appends the
/// fields to `fields`.
///
/// Fails, leaving `fields` unchanged, with Error::BadPercentEncoding (strict, as
/// percent_decode()), Error::TooManyFields when `text` holds more than `limits.max_fields`
/// fields, or Error::FormTooLarge when their decoded names and values add up to more than
/// `limits.max_bytes`; so a successful call appends at most max_fields fields and max_bytes
/// bytes. Values are bytes, not checked to be UTF-8.
/// Thread-safe (pure function).
Error parse_form(std::string_view text, std::vector<FormField>& fields,
                 const FormLimits& limits = {});

/// The value of the first field named `name` (exact, case-sensitive match), or nothing. The view
/// points into `fields` and is valid while that field is unchanged.
/// Thread-safe (pure function).
std::optional<std::string_view> field(std::span<const FormField> fields,
                                      std::string_view name) noexcept;

// ---------------------------------------------------------------------------------------------
// Cookies.

/// One name=value pair of a Cookie header: views into the header, valid as long as it is.
struct Cookie {
  std::string_view name;   ///< an RFC 9110 token
  std::string_view value;  ///< without its double quotes, if it had them

  /// Equal when every field is.
  friend bool operator==(const Cookie&, const Cookie&) = default;
};

/// Parses a Cookie request header (header(rq, "Cookie")), RFC 6265 §4.2.1 read leniently but
/// safely: pairs are separated by ';' with optional spaces and tabs around them; a value in
/// double quotes loses its quotes; the value is otherwise returned as sent (not
/// percent-decoded). A pair is skipped, not an error, when it has no '=', its name is not an
/// RFC 9110 token, or its value holds a control character (CTL: NUL, CR, LF, DEL, ...): one bad
/// pair, which a browser never sends, cannot hide the good ones. Repeated names are kept, in
/// order (browsers send the cookie with the longest Path first). Appends the pairs to
/// `cookies`.
///
/// Fails with Error::TooManyCookies, leaving `cookies` unchanged, when more than `max_cookies`
/// pairs would be kept (browsers keep about 180 per domain).
/// Thread-safe (pure function).
Error parse_cookies(std::string_view header, std::vector<Cookie>& cookies,
                    std::size_t max_cookies = 200);

/// The SameSite attribute of a Set-Cookie header.
enum class SameSite : std::uint8_t { Unset, Strict, Lax, None };

/// A cookie to set: an aggregate for designated initializers,
///   http::SetCookie{.name = "sid", .value = token, .path = "/", .secure = true,
///                   .http_only = true, .same_site = http::SameSite::Lax}
/// Views are read during the call that takes the SetCookie only.
struct SetCookie {
  std::string_view name = {};                ///< an RFC 9110 token
  std::string_view value = {};               ///< RFC 6265 cookie-octets only
  std::string_view path = {};                ///< "": no Path attribute
  std::string_view domain = {};              ///< "": no Domain attribute (host-only cookie)
  std::optional<std::int64_t> max_age = {};  ///< seconds; 0 or less expires the cookie at once
  std::string_view expires = {};             ///< as given, e.g. "Wed, 21 Oct 2026 07:28:00 GMT"
  bool secure = false;                       ///< the Secure attribute: HTTPS only
  bool http_only = false;                    ///< the HttpOnly attribute: hidden from scripts
  SameSite same_site = SameSite::Unset;      ///< Unset: no SameSite attribute
};

/// Appends the value of a Set-Cookie header for `cookie` (RFC 6265 §4.1) to `out`:
/// "sid=abc; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax", the attributes in that
/// order, empty ones left out. Fails, leaving `out` unchanged, with Error::BadCookieName when
/// the name is not a non-empty RFC 9110 token, Error::BadCookieValue when the value holds a
/// byte outside RFC 6265 cookie-octet (space, '"', ',', ';', '\\', CTLs and non-ASCII:
/// percent_encode() such values first), or Error::BadCookieAttribute when path, domain or
/// expires holds a CTL, ';' or a non-ASCII byte, or SameSite is None without Secure (browsers
/// drop that cookie). So no input can forge another header or attribute.
/// Thread-safe (pure function).
Error append_set_cookie(std::string& out, const SetCookie& cookie);

// ---------------------------------------------------------------------------------------------
// multipart/form-data (RFC 7578), streaming.

/// The boundary parameter of a Content-Type value when its type is multipart/form-data (any
/// case), e.g. "AaB03x" from "multipart/form-data; boundary=AaB03x" or from
/// `boundary="AaB03x"`; nothing when the type is another one, the parameter is missing or
/// repeated, or the boundary is not 1 to 70 RFC 2046 §5.1.1 characters. The view points into
/// `content_type`.
/// Thread-safe (pure function).
std::optional<std::string_view> form_data_boundary(std::string_view content_type) noexcept;

/// What a part's headers say (RFC 7578 §4.2, §4.4): views into the parser's header buffer,
/// valid only during the on_part_begin call that receives them.
struct Part {
  std::string_view name;                     ///< Content-Disposition's name parameter
  std::optional<std::string_view> filename;  ///< its filename parameter, when present: a file
  std::string_view content_type;             ///< Content-Type; "" when absent (text/plain then)
};

/// What a MultipartParser calls as it parses. Any of them may be empty (not called). They run on
/// the thread that calls feed(), from inside feed(). If one throws, the exception propagates
/// out of feed() and the parser must not be used again.
struct MultipartCallbacks {
  /// A part begins; its data follows.
  std::function<void(const Part& part)> on_part_begin = {};
  /// The next bytes of the current part's data, as they arrive: a part's data is the
  /// concatenation of every call's bytes between its begin and its end (possibly no call at
  /// all for an empty part). The span is valid during the call only.
  std::function<void(std::span<const std::byte> data)> on_part_data = {};
  /// The current part is complete.
  std::function<void()> on_part_end = {};
};

/// Bounds for a MultipartParser.
struct MultipartLimits {
  std::size_t max_parts = 128;  ///< parts at most, fields and files together
  /// The most bytes of one part's header block: every header line with its CRLF, plus the
  /// empty line that ends the block. The parser's only buffer.
  std::size_t max_header_bytes = 8 * 1024;
};

/// A multipart/form-data body parser that never holds a part's data: feed it the body in slices
/// of any size, from one byte at a time to all of it at once, and it calls on_part_begin,
/// on_part_data and on_part_end as the bytes arrive. It buffers only one part's header block
/// (at most MultipartLimits::max_header_bytes) and keeps back at most the boundary's length of
/// data while it cannot yet tell data from a boundary. The same input gives the same calls and
/// the same result however it is sliced (on_part_data may be split differently).
///
/// RFC 2046 §5.1.1, read strictly where leniency would let two parsers disagree on where a part
/// begins: the body must start with "--boundary" (no preamble: browsers send none), lines end
/// in CRLF, and a boundary line must end with optional spaces or tabs and CRLF, or with "--"
/// (the final boundary; whatever follows it, the epilogue, is ignored). Each part must carry a
/// Content-Disposition of type form-data with a name parameter. Parameter values are read as
/// browsers write them (HTML's form-data encoding): a quoted value ends at the next '"', and a
/// '\\' in it is an ordinary byte (Windows paths); browsers encode '"', CR and LF in names as
/// "%22", "%0D" and "%0A", which are left as they are.
///
/// After an error the parser stays failed: feed() and finish() return the same error and call
/// nothing.
/// Threading: not thread-safe; one per request body.
class MultipartParser {
 public:
  /// A parser for a body delimited by `boundary` (see form_data_boundary()), which it copies.
  /// When the boundary is not 1 to 70 RFC 2046 characters, the parser starts failed with
  /// Error::BadBoundary.
  MultipartParser(std::string_view boundary, MultipartCallbacks callbacks,
                  const MultipartLimits& limits = {});

  /// Parses the next bytes of the body, calling the callbacks for what they complete. Returns
  /// Error::None, or the error that stopped the parser (bytes after the error are not looked
  /// at).
  Error feed(std::span<const std::byte> bytes);
  /// The same, for chars.
  Error feed(std::string_view bytes);
  /// The body ended. Returns Error::None when the final boundary was seen, else
  /// Error::MultipartTruncated (or the error the parser already had); the part being parsed,
  /// if any, then gets no on_part_end.
  Error finish();
  /// Whether the final boundary was seen.
  bool done() const noexcept { return state_ == State::Done; }

 private:
  enum class State : std::uint8_t {
    Start,          ///< matching the first "--boundary"
    AfterBoundary,  ///< a boundary matched: CRLF, transport padding or "--" next
    Padding,        ///< transport padding after a boundary
    BoundaryLf,     ///< the LF ending a boundary line
    CloseDash,      ///< the second '-' of the final boundary
    Headers,        ///< gathering a part's header block
    Body,           ///< a part's data, watching for the delimiter
    Done,           ///< after the final boundary: the epilogue
    Failed,
  };

  /// Consumes body bytes from [p, end) until the delimiter completes or the bytes run out;
  /// returns where it stopped.
  const char* scan_body(const char* p, const char* end);
  Error begin_part();
  Error fail(Error error) noexcept;

  MultipartCallbacks callbacks_;
  MultipartLimits limits_;
  std::string delimiter_;     ///< "\r\n--" + boundary (RFC 2046 §5.1.1 delimiter)
  std::string header_block_;  ///< the current part's header block; at most max_header_bytes
  std::size_t matched_ = 0;   ///< bytes of delimiter_ matched and held back from on_part_data
  std::size_t parts_ = 0;
  State state_ = State::Start;
  Error error_ = Error::None;
};

// ---------------------------------------------------------------------------------------------
// The response.

/// The reason phrase of an HTTP status code (RFC 9110 §15 and the IANA registry): "OK" for
/// 200, "Not Found" for 404; "" for a code without one. The server's own status lines use this
/// table too.
/// Thread-safe (pure function).
std::string_view reason_phrase(int code) noexcept;

/// The MIME type for a file extension, with or without its leading '.', in any case: "html" and
/// ".HTML" give "text/html; charset=utf-8" (text types carry the charset), "png" gives
/// "image/png". "application/octet-stream" for an extension it does not know. The view is a
/// static string.
/// Thread-safe (pure function).
std::string_view mime_type_for_extension(std::string_view extension) noexcept;

/// The same for the extension of `path`'s last segment ("/a.b/c.json" → "json");
/// "application/octet-stream" when that segment has none.
/// Thread-safe (pure function).
std::string_view mime_type_for_path(std::string_view path) noexcept;

/// Redirects: sets the status to `code` and adds `Location: <location>`. Returns false, doing
/// nothing, when `code` is not 301, 302, 303, 307 or 308, or `location` is empty or holds a
/// control character (it would forge a header). Call it before the first write; the handler
/// then writes a body or none.
/// Threading: as Response (one worker at a time).
bool redirect(Response& response, int code, std::string_view location);

/// Adds a Set-Cookie header for `cookie` (see append_set_cookie(), whose errors it returns,
/// adding nothing then). Call it before the first write.
/// Threading: as Response (one worker at a time).
Error set_cookie(Response& response, const SetCookie& cookie);

/// Answers with a whole response at once: sets `status`, adds a Content-Type header with
/// `content_type` (none when it is empty) and writes `body`:
///   http::send(response, 201, "application/json", R"({"id":7})");
/// Headers added before it go out with it. Does nothing when the header block has already gone
/// out (after a write or a flush): a status cannot follow a body.
/// Threading: as Response (one worker at a time).
void send(Response& response, int status, std::string_view content_type, std::string_view body);

/// The body of a status answer (send_status(), and the Router's own 400, 404 and 405).
enum class StatusBody : std::uint8_t {
  Text,  ///< text/plain; charset=utf-8: "404 Not Found\n", like the server's own answers
  Json,  ///< application/json: {"status":404,"error":"Not Found"}
};

/// Answers with a status alone: sets `code`, and writes the code and its reason phrase as the
/// body, as `body` says (StatusBody::Text: "404 Not Found\n"; StatusBody::Json:
/// {"status":404,"error":"Not Found"}; a code without a reason phrase gets the code alone, and
/// "" as its error). A 1xx, 204 or 304 gets the status alone, no body: those carry no content
/// (RFC 9110 §15.3.5, §15.4.5). Headers added before it go out with it (Allow for a 405,
/// WWW-Authenticate for a 401). Does nothing when the header block has already gone out, as
/// send().
/// Threading: as Response (one worker at a time).
void send_status(Response& response, int code, StatusBody body = StatusBody::Text);

// ---------------------------------------------------------------------------------------------
// Server-sent events (HTML Living Standard §9.2, text/event-stream).

/// One server-sent event. Empty fields are left out, but for `data`.
struct SseEvent {
  /// The event's data. It may hold line breaks (LF, CRLF or CR): each line goes out as its own
  /// "data:" line, and the client joins them with LF. Browsers do not dispatch an event whose
  /// data is empty.
  std::string_view data{};
  std::string_view event{};  ///< the event type; the client's default ("message") when empty
  std::string_view id{};     ///< the last event id, which a reconnecting client sends back
  /// The client's reconnection time; 0: not sent.
  std::chrono::milliseconds retry{0};
};

/// Appends `event` to `out` in the text/event-stream format, ending with the blank line that
/// dispatches it:
///   "id: 7\nevent: tick\ndata: 7 of 9\n\n"
/// Returns false, appending nothing, when `event.event` or `event.id` holds a line break (it
/// would forge fields), or `event.id` a NUL (clients ignore such an id).
/// Thread-safe (pure function).
bool append_sse_event(std::string& out, const SseEvent& event);
/// Appends a comment (": text\n", one per line of `text`), which clients ignore: a keep-alive
/// that keeps proxies and load balancers from closing an idle stream.
/// Thread-safe (pure function).
void append_sse_comment(std::string& out, std::string_view text);
/// Adds the headers of an event stream: Content-Type text/event-stream, Cache-Control
/// no-cache, and X-Accel-Buffering no (nginx then passes each event on at once, without
/// `fastcgi_buffering off`). Call it before the first write, or before Response::detach().
/// Threading: as Response (one worker at a time).
void sse_headers(Response& response);

// ---------------------------------------------------------------------------------------------
// Routing.

/// The named segments of the route a request matched: for the pattern "/items/{id}" and the
/// path "/items/%31", params["id"] is "1". Views valid while the route's handler runs.
/// Threading: as Request (one worker at a time).
class PathParams {
 public:
  /// The percent-decoded value of the segment named `name` ("{name}" in the pattern), never
  /// empty; "" when the pattern has no segment of that name.
  std::string_view operator[](std::string_view name) const noexcept;

 private:
  friend class Router;
  std::vector<std::pair<std::string_view, std::string_view>> segments_;  // name, value
};

/// What a route runs: Handler::handle() with the route's named segments.
using RouteHandler = std::function<void(Request&, Response&, const PathParams&)>;

/// One route: a method and a path pattern, and the handler for requests that match both.
struct Route {
  /// The request method, matched exactly (RFC 9110 §9.1: methods are case-sensitive): "GET",
  /// "POST", ... A GET route also answers HEAD when no route of the same path has HEAD (the web
  /// server sends the client the headers only).
  std::string method;
  /// A path of '/'-separated segments, each either literal ("items") or a named segment that
  /// matches any one non-empty segment ("{id}": letters, digits and '_', not starting with a
  /// digit; the whole segment). Literal segments are written decoded (no '%') and are not
  /// empty, but for the last one: "/" and "/items/" end with an empty segment, so "/items"
  /// and "/items/" are different paths.
  std::string pattern;
  /// Runs for a matching request; may throw, as Handler::handle() may.
  RouteHandler handler;
};

/// A Handler that picks a route by the request's method and path, for JSON APIs and small
/// sites:
///   http::Router router({
///       {"GET", "/items/{id}", get_item},
///       {"POST", "/items", add_item},
///   }, http::StatusBody::Json);
///   fcgimux::Server server(config, router);
///
/// The path is raw_path() split at '/' into segments, each then percent-decoded: "/items/%31"
/// matches "/items/{id}" with id "1". A "%2F" stays inside its segment as a '/': "/files/a%2Fb"
/// matches "/files/{name}" with name "a/b", and never "/files/a/b". Empty segments are kept
/// ("//items" does not match "/items"), and nothing is normalized ("." and ".." are ordinary
/// segments). When several routes match a path, the one with a literal segment where another
/// has a named one, comparing from the left, wins ("/items/new" before "/items/{id}").
///
/// It answers on its own, with send_status() in the `errors` form: 400 when a segment holds a
/// '%' not followed by two hex digits; 404 when no route matches the path; 405 when routes
/// match the path but none the method, with an Allow header listing theirs, sorted, HEAD
/// included where GET is ("GET, HEAD, POST").
/// Threading: Immutable after construction; safe to share.
class Router : public Handler {
 public:
  /// A router for `routes`. Throws std::invalid_argument naming the route when a method is not
  /// an RFC 9110 token, a pattern breaks the rules of Route::pattern or repeats a segment name,
  /// a handler is empty, or two routes have the same method and would match the same paths.
  explicit Router(std::vector<Route> routes, StatusBody errors = StatusBody::Text);

  /// Runs the route that matches the request, or answers 400, 404 or 405 as the class comment
  /// says. Runs on a worker thread, as Handler::handle().
  void handle(Request& request, Response& response) override;

 private:
  struct Segment {
    std::string text;  // a literal's decoded bytes, or a named segment's name
    bool named = false;
  };
  struct CompiledRoute {
    std::string method;
    std::vector<Segment> segments;
    RouteHandler handler;
  };

  std::vector<CompiledRoute> routes_;  // most specific first (see the class comment)
  StatusBody errors_;
};

}  // namespace http
}  // namespace fcgimux
