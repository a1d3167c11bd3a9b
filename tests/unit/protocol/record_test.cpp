// SPDX-License-Identifier: MIT
// Record headers and fixed-size bodies: lib/protocol/record.cpp.

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "wire.hpp"

namespace fcgimux::protocol {
namespace {

using test::bytes_of;
using test::hex;

std::string encoded(const Header& header) {
  std::array<std::byte, kHeaderSize> out{};
  encode_header(header, out);
  return std::string(test::text_of(out));
}

Header decoded(std::string_view bytes) {
  return decode_header(bytes_of(bytes).first<kHeaderSize>());
}

// FastCGI 1.0 §3.3: version, type, requestIdB1, requestIdB0, contentLengthB1, contentLengthB0,
// paddingLength, reserved.
TEST_CASE("encode_header writes FCGI_Header in network byte order", "[protocol]") {
  const Header header{.version = kVersion1,
                      .type = RecordType::Stdout,
                      .request_id = 0x0102,
                      .content_length = 0xfff8,
                      .padding_length = 255};
  CHECK(encoded(header) == hex("01 06 01 02 ff f8 ff 00"));
}

TEST_CASE("decode_header reads any eight bytes and ignores the reserved byte", "[protocol]") {
  const Header header = decoded(hex("02 2a ff fe 01 00 07 ee"));
  CHECK(header.version == 2);
  CHECK(header.type == static_cast<RecordType>(42));
  CHECK(header.request_id == 0xfffe);
  CHECK(header.content_length == 256);
  CHECK(header.padding_length == 7);
}

TEST_CASE("a header round-trips for every type byte", "[protocol]") {
  const auto type = static_cast<std::uint8_t>(GENERATE(range(0, 256)));
  const Header header{.version = kVersion1,
                      .type = static_cast<RecordType>(type),
                      .request_id = 0x8001,
                      .content_length = 0x0180,
                      .padding_length = 0x80};
  CHECK(decoded(encoded(header)) == header);
}

// FastCGI 1.0 §8: the names of the record types.
TEST_CASE("to_string names each record type as the specification does", "[protocol]") {
  CHECK(to_string(RecordType::BeginRequest) == "FCGI_BEGIN_REQUEST");
  CHECK(to_string(RecordType::AbortRequest) == "FCGI_ABORT_REQUEST");
  CHECK(to_string(RecordType::EndRequest) == "FCGI_END_REQUEST");
  CHECK(to_string(RecordType::Params) == "FCGI_PARAMS");
  CHECK(to_string(RecordType::Stdin) == "FCGI_STDIN");
  CHECK(to_string(RecordType::Stdout) == "FCGI_STDOUT");
  CHECK(to_string(RecordType::Stderr) == "FCGI_STDERR");
  CHECK(to_string(RecordType::Data) == "FCGI_DATA");
  CHECK(to_string(RecordType::GetValues) == "FCGI_GET_VALUES");
  CHECK(to_string(RecordType::GetValuesResult) == "FCGI_GET_VALUES_RESULT");
  CHECK(to_string(RecordType::UnknownType) == "FCGI_UNKNOWN_TYPE");
  CHECK(to_string(static_cast<RecordType>(0)) == "unknown");
  CHECK(to_string(static_cast<RecordType>(12)) == "unknown");
  CHECK(to_string(static_cast<RecordType>(255)) == "unknown");
}

TEST_CASE("is_known accepts exactly the eleven types of the specification", "[protocol]") {
  const auto type = GENERATE(range(0, 256));
  CHECK(is_known(static_cast<RecordType>(type)) == (type >= 1 && type <= 11));
}

TEST_CASE("to_string gives every error its own phrase", "[protocol]") {
  const std::vector<Error> errors{Error::None, Error::BadVersion, Error::BadBodyLength,
                                  Error::NameValueTruncated, Error::NameValueTooLarge};
  std::set<std::string_view> phrases;
  for (const auto error : errors) phrases.insert(to_string(error));
  CHECK(phrases.size() == errors.size());
  CHECK_FALSE(phrases.contains(""));
}

// FastCGI 1.0 §5.1: {FCGI_BEGIN_REQUEST, R, {role, flags}}, body roleB1 roleB0 flags
// reserved[5].
TEST_CASE("append_begin_request lays out FCGI_BeginRequestRecord", "[protocol]") {
  std::string out;
  append_begin_request(out, 1, static_cast<std::uint16_t>(Role::Responder), kKeepConn);
  CHECK(out == hex("01 01 00 01 00 08 00 00  00 01 01 00 00 00 00 00"));

  out.clear();
  append_begin_request(out, 0x0203, 0xabcd, 0xfe);
  CHECK(out == hex("01 01 02 03 00 08 00 00  ab cd fe 00 00 00 00 00"));
}

TEST_CASE("parse_begin_request reads role and flags and ignores reserved bytes", "[protocol]") {
  BeginRequestBody body;
  REQUIRE(parse_begin_request(bytes_of(hex("00 03 01 ff ff ff ff ff")), body) == Error::None);
  CHECK(body.role == static_cast<std::uint16_t>(Role::Filter));
  CHECK(body.flags == kKeepConn);

  REQUIRE(parse_begin_request(bytes_of(hex("12 34 00 00 00 00 00 00")), body) == Error::None);
  CHECK(body.role == 0x1234);
  CHECK(body.flags == 0);
}

// FastCGI 1.0 §5.5: body appStatusB3..B0 protocolStatus reserved[3]; the spec's own example,
// {FCGI_END_REQUEST, 1, {938, FCGI_REQUEST_COMPLETE}} (appendix B).
TEST_CASE("append_end_request lays out FCGI_EndRequestRecord", "[protocol]") {
  std::string out;
  append_end_request(out, 1, 938, ProtocolStatus::RequestComplete);
  CHECK(out == hex("01 03 00 01 00 08 00 00  00 00 03 aa 00 00 00 00"));

  out.clear();
  append_end_request(out, 7, 0xfedcba98, ProtocolStatus::UnknownRole);
  CHECK(out == hex("01 03 00 07 00 08 00 00  fe dc ba 98 03 00 00 00"));
}

TEST_CASE("parse_end_request reads app status and protocol status", "[protocol]") {
  const auto status = GENERATE(ProtocolStatus::RequestComplete, ProtocolStatus::CantMpxConn,
                               ProtocolStatus::Overloaded, ProtocolStatus::UnknownRole);
  std::string out;
  append_end_request(out, 1, 0x80000001, status);
  EndRequestBody body;
  REQUIRE(parse_end_request(bytes_of(out).subspan(kHeaderSize), body) == Error::None);
  CHECK(body.app_status == 0x80000001);
  CHECK(body.protocol_status == status);
}

// FastCGI 1.0 §4.2: {FCGI_UNKNOWN_TYPE, 0, {T}}, body type reserved[7].
TEST_CASE("append_unknown_type lays out FCGI_UnknownTypeRecord", "[protocol]") {
  std::string out;
  append_unknown_type(out, 42);
  CHECK(out == hex("01 0b 00 00 00 08 00 00  2a 00 00 00 00 00 00 00"));

  std::uint8_t type = 0;
  REQUIRE(parse_unknown_type(bytes_of(out).subspan(kHeaderSize), type) == Error::None);
  CHECK(type == 42);
}

// FastCGI 1.0 §5.4: {FCGI_ABORT_REQUEST, R} has no content.
TEST_CASE("append_abort_request writes an empty record", "[protocol]") {
  std::string out;
  append_abort_request(out, 0x0102);
  CHECK(out == hex("01 02 01 02 00 00 00 00"));
}

TEST_CASE("fixed-size bodies of any length but 8 are refused and leave the output alone",
          "[protocol]") {
  const auto length = GENERATE(0u, 1u, 7u, 9u, 16u);
  const std::string content(length, '\x01');
  const auto bytes = bytes_of(content);

  BeginRequestBody begin{.role = 9, .flags = 9};
  CHECK(parse_begin_request(bytes, begin) == Error::BadBodyLength);
  CHECK(begin.role == 9);
  CHECK(begin.flags == 9);

  EndRequestBody end{.app_status = 9, .protocol_status = ProtocolStatus::Overloaded};
  CHECK(parse_end_request(bytes, end) == Error::BadBodyLength);
  CHECK(end.app_status == 9);
  CHECK(end.protocol_status == ProtocolStatus::Overloaded);

  std::uint8_t type = 9;
  CHECK(parse_unknown_type(bytes, type) == Error::BadBodyLength);
  CHECK(type == 9);
}

// FastCGI 1.0 §4.1: the query is name-value pairs with empty values, on the null request id.
TEST_CASE("append_get_values writes the names with empty values", "[protocol]") {
  const std::array<std::string_view, 3> names{kMaxConns, kMaxReqs, kMpxsConns};
  std::string out;
  append_get_values(out, names);
  CHECK(out == hex("01 09 00 00 00 30 00 00") +  // 48 bytes of content, no padding
                   hex("0e 00") + "FCGI_MAX_CONNS" + hex("0d 00") + "FCGI_MAX_REQS" + hex("0f 00") +
                   "FCGI_MPXS_CONNS");
}

TEST_CASE("append_get_values_result writes the pairs as one padded record", "[protocol]") {
  const std::array<NameValue, 3> values{NameValue{kMaxConns, "10"}, NameValue{kMaxReqs, "50"},
                                        NameValue{kMpxsConns, "1"}};
  std::string out;
  append_get_values_result(out, values);
  CHECK(out == hex("01 0a 00 00 00 35 03 00") +  // 53 bytes of content, 3 of padding
                   hex("0e 02") + "FCGI_MAX_CONNS10" + hex("0d 02") + "FCGI_MAX_REQS50" +
                   hex("0f 01") + "FCGI_MPXS_CONNS1" + hex("00 00 00"));
}

TEST_CASE("an empty GET_VALUES_RESULT is one empty record", "[protocol]") {
  std::string out;
  append_get_values_result(out, {});
  CHECK(out == hex("01 0a 00 00 00 00 00 00"));
}

TEST_CASE("append_get_values_result stays one record up to kMaxContentLength", "[protocol]") {
  // 4 + 1 length bytes + 65530 bytes of name = 65535, past kMaxAlignedContentLength.
  const std::string name(kMaxContentLength - 5, 'n');
  const std::array<NameValue, 1> values{NameValue{name, ""}};
  std::string out;
  append_get_values_result(out, values);
  REQUIRE(out.size() == kHeaderSize + kMaxContentLength + 1);
  CHECK(out.substr(0, kHeaderSize) == hex("01 0a 00 00 ff ff 01 00"));
  CHECK(out.substr(kHeaderSize, 5) == hex("80 00 ff fa 00"));
  CHECK(out.back() == '\0');
}

}  // namespace
}  // namespace fcgimux::protocol
