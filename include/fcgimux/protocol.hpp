// SPDX-License-Identifier: MIT
#pragma once

// The FastCGI 1.0 wire format: constants, record headers, bodies, name-value pairs, an
// incremental decoder and encoders. Pure data transformation: no I/O, no threads, no
// allocation beyond the containers the caller hands in (and the decoder's own staging buffer
// for a record that straddles two calls). Public so that tools and tests can speak the
// protocol; the server itself is the main user.
//
// Errors are values (`Error`), never exceptions: hostile input is an ordinary result.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/// The FastCGI 1.0 wire format: pure data transformation, no I/O, no threads.
namespace fcgimux::protocol {

// FastCGI 1.0 §8.
inline constexpr std::uint8_t kVersion1 = 1;        ///< FCGI_VERSION_1
inline constexpr std::size_t kHeaderSize = 8;       ///< FCGI_HEADER_LEN
inline constexpr std::uint16_t kNullRequestId = 0;  ///< FCGI_NULL_REQUEST_ID
inline constexpr int kListenSockFileno = 0;         ///< FCGI_LISTENSOCK_FILENO

/// The largest content a record can carry (contentLength is 16 bits).
inline constexpr std::size_t kMaxContentLength = 65535;
/// The largest padding a record can carry (paddingLength is 8 bits).
inline constexpr std::size_t kMaxPaddingLength = 255;
/// The largest multiple of 8 that fits in a record: encoders split long payloads at this size
/// so that every record but the last needs no padding.
inline constexpr std::size_t kMaxAlignedContentLength = 65528;

/// FastCGI 1.0 §8: record types. A header may carry any byte as its type; values past
/// UnknownType are representable and answered as §4.2 says.
enum class RecordType : std::uint8_t {
  BeginRequest = 1,
  AbortRequest = 2,
  EndRequest = 3,
  Params = 4,
  Stdin = 5,
  Stdout = 6,
  Stderr = 7,
  Data = 8,
  GetValues = 9,
  GetValuesResult = 10,
  UnknownType = 11,
};
/// The highest type the specification defines (UnknownType).
inline constexpr std::uint8_t kMaxKnownType = 11;

/// True for the eleven types the specification defines.
constexpr bool is_known(RecordType type) noexcept {
  const auto value = static_cast<std::uint8_t>(type);
  return value >= 1 && value <= kMaxKnownType;
}

/// The specification's name for a type ("FCGI_BEGIN_REQUEST"); "unknown" for any other byte.
std::string_view to_string(RecordType type) noexcept;

/// FastCGI 1.0 §5.1: the flags byte of FCGI_BeginRequestBody; FCGI_KEEP_CONN.
inline constexpr std::uint8_t kKeepConn = 1;

/// FastCGI 1.0 §5.1 and §6: the roles.
enum class Role : std::uint16_t { Responder = 1, Authorizer = 2, Filter = 3 };

/// FastCGI 1.0 §5.5: protocolStatus of FCGI_EndRequestBody.
enum class ProtocolStatus : std::uint8_t {
  RequestComplete = 0,
  CantMpxConn = 1,
  Overloaded = 2,
  UnknownRole = 3,
};

// FastCGI 1.0 §4.1: the management variables an application answers in GET_VALUES_RESULT.
inline constexpr std::string_view kMaxConns = "FCGI_MAX_CONNS";    ///< connections it accepts
inline constexpr std::string_view kMaxReqs = "FCGI_MAX_REQS";      ///< requests it accepts
inline constexpr std::string_view kMpxsConns = "FCGI_MPXS_CONNS";  ///< "1" if it multiplexes

/// Why input was refused. Returned, never thrown; `to_string` gives a phrase for a log line.
enum class Error : std::uint8_t {
  None = 0,
  BadVersion,          ///< header version is not FCGI_VERSION_1
  BadBodyLength,       ///< a fixed-size body (BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE)
                       ///< has the wrong content length
  NameValueTruncated,  ///< a name-value length or the bytes it announces run past the block
  NameValueTooLarge,   ///< a block of name-value pairs grew past the caller's limit
};
/// A short description of `error`, for a log line; never empty.
std::string_view to_string(Error error) noexcept;

/// FastCGI 1.0 §3.3: FCGI_Header, with the reserved byte dropped.
struct Header {
  std::uint8_t version = kVersion1;           ///< 1 in every valid record
  RecordType type = RecordType::UnknownType;  ///< any byte; see is_known()
  std::uint16_t request_id = 0;               ///< 0 (kNullRequestId) for management records
  std::uint16_t content_length = 0;           ///< content bytes that follow the header
  std::uint8_t padding_length = 0;            ///< padding bytes that follow the content

  /// Equal when every field is.
  friend bool operator==(const Header&, const Header&) = default;
};

/// Writes `header` as 8 bytes in network order (the reserved byte is 0).
void encode_header(const Header& header, std::span<std::byte, kHeaderSize> out) noexcept;
/// Reads 8 bytes as a header. Any bytes are a header; validity is the caller's (or the
/// Decoder's) business.
Header decode_header(std::span<const std::byte, kHeaderSize> in) noexcept;

/// FastCGI 1.0 §3.3: senders should pad content to a multiple of 8 bytes.
constexpr std::uint8_t padding_for(std::size_t content_length) noexcept {
  return static_cast<std::uint8_t>((8 - content_length % 8) % 8);
}

/// FastCGI 1.0 §5.1: FCGI_BeginRequestBody. `role` stays a raw number so that an unknown role
/// can be reported (FCGI_UNKNOWN_ROLE) rather than lost.
struct BeginRequestBody {
  std::uint16_t role = 0;  ///< a Role, or any other number a client sent
  std::uint8_t flags = 0;  ///< kKeepConn, or 0
};
/// Parses the 8-byte content of a BEGIN_REQUEST record. Returns Error::BadBodyLength when the
/// content is not exactly 8 bytes; `out` is then unchanged.
Error parse_begin_request(std::span<const std::byte> content, BeginRequestBody& out) noexcept;

/// FastCGI 1.0 §5.5: FCGI_EndRequestBody.
struct EndRequestBody {
  std::uint32_t app_status = 0;  ///< the application's exit status (Response::app_status())
  ProtocolStatus protocol_status = ProtocolStatus::RequestComplete;  ///< why the request ended
};
/// Parses the 8-byte content of an END_REQUEST record; Error::BadBodyLength otherwise.
Error parse_end_request(std::span<const std::byte> content, EndRequestBody& out) noexcept;

/// FastCGI 1.0 §4.2: FCGI_UnknownTypeBody. Parses its 8-byte content into the type it names;
/// Error::BadBodyLength otherwise.
Error parse_unknown_type(std::span<const std::byte> content, std::uint8_t& type) noexcept;

/// One name-value pair (FastCGI 1.0 §3.4). Views into the block it was parsed from.
struct NameValue {
  std::string_view name;   ///< the parameter's name, e.g. "REQUEST_METHOD"
  std::string_view value;  ///< its value; may be empty

  /// Equal when every field is.
  friend bool operator==(const NameValue&, const NameValue&) = default;
};

/// FastCGI 1.0 §3.4: the largest length a name or value can announce (31-bit, 4-byte form).
inline constexpr std::size_t kMaxNameValueLength = 0x7fffffff;

/// Parses a whole block of name-value pairs (the concatenated content of a PARAMS stream, or
/// one GET_VALUES record) and appends one NameValue per pair to `out`, each viewing `block`.
/// Lengths under 128 take 1 byte; longer ones take 4 bytes with the high bit set (§3.4).
/// Returns Error::NameValueTruncated when a length or the bytes it announces run past the end
/// of `block`; the pairs before the bad one are then in `out`.
Error parse_name_values(std::string_view block, std::vector<NameValue>& out);

/// Accumulates a stream of name-value pairs that arrives in pieces (PARAMS records split
/// anywhere, even inside a length), refusing to hold more than `max_bytes`.
/// Threading: not thread-safe; one per request.
class NameValueBlock {
 public:
  /// An empty block that will hold at most `max_bytes`.
  explicit NameValueBlock(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}

  /// Appends one piece. Returns Error::NameValueTooLarge (and keeps nothing of `piece`) when
  /// the block would pass `max_bytes`.
  Error append(std::span<const std::byte> piece);
  /// The bytes so far. Stable views need the block to stay unchanged: parse once it is
  /// complete.
  std::string_view bytes() const noexcept { return bytes_; }
  /// Empties the block for another one, keeping its storage.
  void clear() noexcept { bytes_.clear(); }
  /// Parses the bytes so far, as parse_name_values() does.
  Error parse(std::vector<NameValue>& out) const { return parse_name_values(bytes_, out); }
  /// The limit it was made with.
  std::size_t max_bytes() const noexcept { return max_bytes_; }

 private:
  std::size_t max_bytes_;
  std::string bytes_;
};

/// The value of the first pair in `pairs` named `name` (compared exactly), or nothing. The view
/// is into the pair's value.
std::optional<std::string_view> value_of(std::span<const NameValue> pairs,
                                         std::string_view name) noexcept;

/// FastCGI 1.0 §6.2: the request body's length the web server announces, CONTENT_LENGTH, when
/// it is present and a decimal number; nothing otherwise.
std::optional<std::uint64_t> content_length(std::span<const NameValue> params) noexcept;

/// Bytes one pair takes on the wire.
std::size_t name_value_size(std::string_view name, std::string_view value) noexcept;
/// Appends one pair in the §3.4 encoding. Requires: each length <= kMaxNameValueLength.
void append_name_value(std::string& out, std::string_view name, std::string_view value);

/// A complete record as the Decoder hands it out. `content` views either the caller's input or
/// the decoder's staging buffer; it stays valid until the next call to Decoder::next() and, in
/// the first case, while the caller's bytes live. Padding is never part of `content`.
struct Record {
  Header header;                       ///< as it arrived
  std::span<const std::byte> content;  ///< header.content_length bytes, padding excluded
};

/// What Decoder::next() found.
enum class DecodeStatus : std::uint8_t {
  Record,    ///< `out` holds a complete record
  NeedMore,  ///< every byte of the input was consumed and no record is complete yet
  Error,     ///< the stream is malformed; Decoder::error() says why. Final.
};

/// Incremental record decoder. Feed it any split of the byte stream, from one byte at a time to
/// megabytes at once; it yields each record once its content is complete. A record that arrived
/// whole within one input is handed out as a view without copying; one that straddles inputs is
/// gathered in a staging buffer (at most one record's content, 65,535 bytes; it grows with the
/// bytes that actually arrive, not with the length a header announces). Once such a record has
/// been handed out, the next call to next() keeps up to 4 KiB of staging for reuse and releases
/// anything larger, so an idle connection holds at most 4 KiB. Padding is skipped, even when it
/// arrives later than its content. The decoder checks only what the header format itself makes
/// invalid (the version); types, request ids and lengths are the caller's to judge. After an
/// error it stays failed and holds no staging memory.
/// Threading: not thread-safe; one per connection.
class Decoder {
 public:
  /// Consumes bytes from the front of `in` (advancing it) and returns what it found. On Record,
  /// `in` has advanced past the content and any padding already present, and may still hold
  /// more records: call again until NeedMore. On Error, `in` has advanced past the bad header;
  /// later calls return Error at once and consume nothing. `out` is written only on Record.
  DecodeStatus next(std::span<const std::byte>& in, Record& out);
  /// Error::None unless next() returned DecodeStatus::Error.
  Error error() const noexcept { return error_; }
  /// Bytes of memory the staging buffer holds right now (its capacity, which is what memory
  /// accounting needs): up to 65,535 while a straddling record is gathered or handed out, at
  /// most 4 KiB once next() has returned NeedMore at a record boundary.
  std::size_t buffered() const noexcept;
  /// True between records: no partial header, content or padding is pending. A connection
  /// that ends while this is false ended mid-record.
  bool at_record_boundary() const noexcept;

 private:
  enum class State : std::uint8_t { Header, Content, Padding, Failed };
  State state_ = State::Header;
  Error error_ = Error::None;
  std::array<std::byte, kHeaderSize> header_bytes_{};
  std::size_t header_filled_ = 0;
  Header header_{};
  std::vector<std::byte> staging_;  ///< partial content of the current record
  std::size_t padding_left_ = 0;
};

/// How many records append_records() and frame_records() emit for `content_length` bytes.
constexpr std::size_t record_count(std::size_t content_length) noexcept {
  return content_length == 0
             ? 1
             : (content_length + kMaxAlignedContentLength - 1) / kMaxAlignedContentLength;
}

/// Appends `content` as records of `type` for `request_id`: split into pieces of at most
/// kMaxAlignedContentLength bytes, each padded to a multiple of 8 (FastCGI 1.0 §3.3). Empty
/// content appends one empty record, which ends a stream (§3.3, stream records).
void append_records(std::string& out, RecordType type, std::uint16_t request_id,
                    std::span<const std::byte> content);
/// The same, for chars.
void append_records(std::string& out, RecordType type, std::uint16_t request_id,
                    std::string_view content);

/// Frames `content` as records without copying it, for a gather write: appends to `slices`
/// header, content piece and padding (when non-zero) for each record, in order. The headers are
/// written into `headers`, which must hold record_count(content.size()) entries and, like
/// `content`, outlive the slices. Padding slices view a static block of zeros.
void frame_records(RecordType type, std::uint16_t request_id, std::span<const std::byte> content,
                   std::span<std::array<std::byte, kHeaderSize>> headers,
                   std::vector<std::span<const std::byte>>& slices);

/// Appends one FCGI_BEGIN_REQUEST record (§5.1) for `request_id`: `role` and `flags`
/// (kKeepConn or 0).
void append_begin_request(std::string& out, std::uint16_t request_id, std::uint16_t role,
                          std::uint8_t flags);
/// Appends one FCGI_ABORT_REQUEST record (§5.4), which has no content.
void append_abort_request(std::string& out, std::uint16_t request_id);
/// Appends one FCGI_END_REQUEST record (§5.5).
void append_end_request(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                        ProtocolStatus protocol_status);
/// FastCGI 1.0 §4.2: FCGI_UNKNOWN_TYPE on the null request id, naming the type.
void append_unknown_type(std::string& out, std::uint8_t type);
/// FastCGI 1.0 §4.1: one FCGI_GET_VALUES record on the null request id, asking for `names`
/// (their values empty). Throws std::length_error, appending nothing, when the pairs do not fit
/// in one record (kMaxContentLength bytes).
void append_get_values(std::string& out, std::span<const std::string_view> names);
/// FastCGI 1.0 §4.1: one FCGI_GET_VALUES_RESULT record on the null request id. Throws
/// std::length_error, appending nothing, when the pairs do not fit in one record
/// (kMaxContentLength bytes).
void append_get_values_result(std::string& out, std::span<const NameValue> values);

}  // namespace fcgimux::protocol
