// SPDX-License-Identifier: MIT
// Record headers and the fixed-size bodies of FastCGI 1.0 §4 and §5.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fcgimux/protocol.hpp"

namespace fcgimux::protocol {
namespace {

// FastCGI 1.0 §4.2, §5.1, §5.5: every fixed-size body is 8 bytes.
constexpr std::size_t kFixedBodySize = 8;
using FixedBody = std::array<std::byte, kFixedBodySize>;

// The byte of `value` that starts `shift` bits up; the specification's B0, B1, B2 and B3.
constexpr std::byte byte_at(std::uint32_t value, unsigned shift) noexcept {
  return static_cast<std::byte>((value >> shift) & 0xffu);
}

constexpr unsigned value_of(std::byte b) noexcept { return std::to_integer<unsigned>(b); }

void append_bytes(std::string& out, std::span<const std::byte> bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Appends one record, padded to a multiple of 8 (§3.3). A content length past 16 bits would be
// cut short in the header and its bytes read as the next records, so it is refused in every
// build, before anything is appended.
void append_record(std::string& out, RecordType type, std::uint16_t request_id,
                   std::span<const std::byte> content) {
  if (content.size() > kMaxContentLength) {
    throw std::length_error("FastCGI record content of " + std::to_string(content.size()) +
                            " bytes, past 65535");
  }
  const auto padding = padding_for(content.size());
  std::array<std::byte, kHeaderSize> header{};
  encode_header({.type = type,
                 .request_id = request_id,
                 .content_length = static_cast<std::uint16_t>(content.size()),
                 .padding_length = padding},
                header);
  append_bytes(out, header);
  append_bytes(out, content);
  out.append(padding, '\0');
}

}  // namespace

std::string_view to_string(RecordType type) noexcept {
  switch (type) {
    case RecordType::BeginRequest:
      return "FCGI_BEGIN_REQUEST";
    case RecordType::AbortRequest:
      return "FCGI_ABORT_REQUEST";
    case RecordType::EndRequest:
      return "FCGI_END_REQUEST";
    case RecordType::Params:
      return "FCGI_PARAMS";
    case RecordType::Stdin:
      return "FCGI_STDIN";
    case RecordType::Stdout:
      return "FCGI_STDOUT";
    case RecordType::Stderr:
      return "FCGI_STDERR";
    case RecordType::Data:
      return "FCGI_DATA";
    case RecordType::GetValues:
      return "FCGI_GET_VALUES";
    case RecordType::GetValuesResult:
      return "FCGI_GET_VALUES_RESULT";
    case RecordType::UnknownType:
      return "FCGI_UNKNOWN_TYPE";
  }
  return "unknown";
}

std::string_view to_string(Error error) noexcept {
  switch (error) {
    case Error::None:
      return "no error";
    case Error::BadVersion:
      return "record version is not FCGI_VERSION_1";
    case Error::BadBodyLength:
      return "fixed-size record body has the wrong length";
    case Error::NameValueTruncated:
      return "name-value pair runs past the end of its block";
    case Error::NameValueTooLarge:
      return "name-value pairs exceed their size limit";
  }
  return "unknown error";
}

// FastCGI 1.0 §3.3: version, type, requestIdB1, requestIdB0, contentLengthB1,
// contentLengthB0, paddingLength, reserved.
void encode_header(const Header& header, std::span<std::byte, kHeaderSize> out) noexcept {
  out[0] = std::byte{header.version};
  out[1] = static_cast<std::byte>(header.type);
  out[2] = byte_at(header.request_id, 8);
  out[3] = byte_at(header.request_id, 0);
  out[4] = byte_at(header.content_length, 8);
  out[5] = byte_at(header.content_length, 0);
  out[6] = std::byte{header.padding_length};
  out[7] = std::byte{0};
}

Header decode_header(std::span<const std::byte, kHeaderSize> in) noexcept {
  return {.version = std::to_integer<std::uint8_t>(in[0]),
          .type = static_cast<RecordType>(std::to_integer<std::uint8_t>(in[1])),
          .request_id = static_cast<std::uint16_t>(value_of(in[2]) << 8u | value_of(in[3])),
          .content_length = static_cast<std::uint16_t>(value_of(in[4]) << 8u | value_of(in[5])),
          .padding_length = std::to_integer<std::uint8_t>(in[6])};
}

// FastCGI 1.0 §5.1: roleB1, roleB0, flags, reserved[5].
Error parse_begin_request(std::span<const std::byte> content, BeginRequestBody& out) noexcept {
  if (content.size() != kFixedBodySize) return Error::BadBodyLength;
  out.role = static_cast<std::uint16_t>(value_of(content[0]) << 8u | value_of(content[1]));
  out.flags = std::to_integer<std::uint8_t>(content[2]);
  return Error::None;
}

// FastCGI 1.0 §5.5: appStatusB3..B0, protocolStatus, reserved[3].
Error parse_end_request(std::span<const std::byte> content, EndRequestBody& out) noexcept {
  if (content.size() != kFixedBodySize) return Error::BadBodyLength;
  out.app_status = std::uint32_t{value_of(content[0])} << 24u |
                   std::uint32_t{value_of(content[1])} << 16u |
                   std::uint32_t{value_of(content[2])} << 8u | std::uint32_t{value_of(content[3])};
  out.protocol_status = static_cast<ProtocolStatus>(std::to_integer<std::uint8_t>(content[4]));
  return Error::None;
}

// FastCGI 1.0 §4.2: type, reserved[7].
Error parse_unknown_type(std::span<const std::byte> content, std::uint8_t& type) noexcept {
  if (content.size() != kFixedBodySize) return Error::BadBodyLength;
  type = std::to_integer<std::uint8_t>(content[0]);
  return Error::None;
}

void append_begin_request(std::string& out, std::uint16_t request_id, std::uint16_t role,
                          std::uint8_t flags) {
  const FixedBody body{byte_at(role, 8), byte_at(role, 0), std::byte{flags}};
  append_record(out, RecordType::BeginRequest, request_id, body);
}

// FastCGI 1.0 §5.4: {FCGI_ABORT_REQUEST, R} carries no content.
void append_abort_request(std::string& out, std::uint16_t request_id) {
  append_record(out, RecordType::AbortRequest, request_id, {});
}

void append_end_request(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                        ProtocolStatus protocol_status) {
  const FixedBody body{byte_at(app_status, 24), byte_at(app_status, 16), byte_at(app_status, 8),
                       byte_at(app_status, 0), static_cast<std::byte>(protocol_status)};
  append_record(out, RecordType::EndRequest, request_id, body);
}

void append_unknown_type(std::string& out, std::uint8_t type) {
  const FixedBody body{std::byte{type}};
  append_record(out, RecordType::UnknownType, kNullRequestId, body);
}

// FastCGI 1.0 §4.1: the query is a sequence of name-value pairs with empty values.
void append_get_values(std::string& out, std::span<const std::string_view> names) {
  std::string content;
  for (const auto name : names) append_name_value(content, name, {});
  append_record(out, RecordType::GetValues, kNullRequestId, std::as_bytes(std::span(content)));
}

void append_get_values_result(std::string& out, std::span<const NameValue> values) {
  std::string content;
  for (const auto& pair : values) append_name_value(content, pair.name, pair.value);
  append_record(out, RecordType::GetValuesResult, kNullRequestId,
                std::as_bytes(std::span(content)));
}

}  // namespace fcgimux::protocol
