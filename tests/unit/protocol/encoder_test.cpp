// SPDX-License-Identifier: MIT
// Framing content as records: lib/protocol/encoder.cpp.

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "wire.hpp"

namespace fcgimux::protocol {
namespace {

using test::bytes_of;
using test::hex;

// Content whose bytes differ from their neighbours, so a misplaced piece shows.
std::string pattern(std::size_t length) {
  std::string content(length, '\0');
  for (std::size_t i = 0; i < length; ++i) content[i] = static_cast<char>('a' + i % 23);
  return content;
}

struct Decoded {
  std::vector<Header> headers;
  std::string content;  // every record's content, concatenated
};

Decoded decode(std::string_view stream) {
  Decoded decoded;
  Decoder decoder;
  auto in = bytes_of(stream);
  Record record;
  while (decoder.next(in, record) == DecodeStatus::Record) {
    decoded.headers.push_back(record.header);
    decoded.content += test::text_of(record.content);
  }
  REQUIRE(decoder.error() == Error::None);
  REQUIRE(decoder.at_record_boundary());
  return decoded;
}

// FastCGI 1.0 §3.3: senders should pad to a multiple of 8; the padding is zero bytes here.
TEST_CASE("append_records frames short content as one padded record", "[protocol]") {
  std::string out;
  append_records(out, RecordType::Stdout, 1, "hello");
  CHECK(out == hex("01 06 00 01 00 05 03 00") + "hello" + hex("00 00 00"));
}

// FastCGI 1.0 §3.3, stream records: an empty record ends a stream.
TEST_CASE("append_records writes one empty record for empty content", "[protocol]") {
  std::string out;
  append_records(out, RecordType::Stdin, 0x0203, std::string_view());
  CHECK(out == hex("01 05 02 03 00 00 00 00"));
}

TEST_CASE("append_records appends to what the output already holds", "[protocol]") {
  std::string out = "prefix";
  append_records(out, RecordType::Stderr, 1, "12345678");
  CHECK(out == "prefix" + hex("01 07 00 01 00 08 00 00") + "12345678");
}

TEST_CASE("append_records pads every length to a multiple of 8 with zero bytes", "[protocol]") {
  const auto length = static_cast<std::size_t>(GENERATE(range(0, 17)));
  const auto content = pattern(length);
  std::string out;
  append_records(out, RecordType::Stdout, 1, content);
  const auto padding = (8 - length % 8) % 8;
  REQUIRE(out.size() == kHeaderSize + length + padding);
  CHECK(out.size() % 8 == 0);
  CHECK(static_cast<std::size_t>(static_cast<unsigned char>(out[6])) == padding);
  CHECK(out.substr(kHeaderSize, length) == content);
  CHECK(out.substr(kHeaderSize + length) == std::string(padding, '\0'));
}

TEST_CASE("append_records splits at kMaxAlignedContentLength so only the last record is padded",
          "[protocol]") {
  SECTION("65528 bytes fit one record without padding") {
    std::string out;
    append_records(out, RecordType::Stdout, 1, pattern(65528));
    REQUIRE(out.size() == kHeaderSize + 65528);
    CHECK(out.substr(0, kHeaderSize) == hex("01 06 00 01 ff f8 00 00"));
  }
  SECTION("65529 bytes take a second record of one byte and seven of padding") {
    std::string out;
    append_records(out, RecordType::Stdout, 1, pattern(65529));
    REQUIRE(out.size() == kHeaderSize + 65528 + kHeaderSize + 8);
    CHECK(out.substr(0, kHeaderSize) == hex("01 06 00 01 ff f8 00 00"));
    CHECK(out.substr(kHeaderSize + 65528, kHeaderSize) == hex("01 06 00 01 00 01 07 00"));
  }
  SECTION("65535 bytes, the most one record could carry, still split") {
    std::string out;
    append_records(out, RecordType::Stdout, 1, pattern(kMaxContentLength));
    REQUIRE(out.size() == kHeaderSize + 65528 + kHeaderSize + 8);
    CHECK(out.substr(kHeaderSize + 65528, kHeaderSize) == hex("01 06 00 01 00 07 01 00"));
  }
  SECTION("two full pieces need no padding at all") {
    std::string out;
    append_records(out, RecordType::Stdout, 1, pattern(2 * kMaxAlignedContentLength));
    CHECK(out.size() == 2 * (kHeaderSize + kMaxAlignedContentLength));
  }
}

TEST_CASE("append_records emits record_count records that decode to the content", "[protocol]") {
  const auto length = static_cast<std::size_t>(
      GENERATE(0, 1, 7, 8, 65527, 65528, 65529, 65535, 65536, 2 * 65528, 200'000));
  const auto content = pattern(length);
  std::string out;
  append_records(out, RecordType::Data, 0xfffe, content);
  const auto decoded = decode(out);
  CHECK(decoded.headers.size() == record_count(length));
  CHECK(decoded.content == content);
  for (std::size_t i = 0; i + 1 < decoded.headers.size(); ++i) {
    CHECK(decoded.headers[i].content_length == kMaxAlignedContentLength);
    CHECK(decoded.headers[i].padding_length == 0);
  }
}

TEST_CASE("every record type round-trips through encoder and decoder", "[protocol]") {
  const auto type = static_cast<RecordType>(GENERATE(range(1, 12)));
  const auto request_id = type == RecordType::GetValues || type == RecordType::GetValuesResult ||
                                  type == RecordType::UnknownType
                              ? kNullRequestId
                              : std::uint16_t{0x0102};
  const auto content = pattern(13);
  std::string out;
  append_records(out, type, request_id, content);
  const auto decoded = decode(out);
  REQUIRE(decoded.headers.size() == 1);
  CHECK(decoded.headers[0] == Header{.version = kVersion1,
                                     .type = type,
                                     .request_id = request_id,
                                     .content_length = 13,
                                     .padding_length = 3});
  CHECK(decoded.content == content);
}

TEST_CASE("frame_records frames like append_records without copying the content", "[protocol]") {
  const auto length =
      static_cast<std::size_t>(GENERATE(0, 1, 8, 13, 65528, 65529, 65535, 2 * 65528 + 5));
  const auto content = pattern(length);
  const auto bytes = bytes_of(content);
  std::vector<std::array<std::byte, kHeaderSize>> headers(record_count(length));
  std::vector<std::span<const std::byte>> slices;
  frame_records(RecordType::Stdout, 3, bytes, headers, slices);

  std::string gathered;
  std::size_t content_slices = 0;
  for (const auto slice : slices) {
    gathered += test::text_of(slice);
    if (!slice.empty() && slice.data() >= bytes.data() &&
        slice.data() < bytes.data() + bytes.size()) {
      ++content_slices;
    }
  }
  std::string appended;
  append_records(appended, RecordType::Stdout, 3, content);
  CHECK(gathered == appended);
  CHECK(content_slices == (length == 0 ? 0 : record_count(length)));
  // Header, content and, for the last record only, padding.
  CHECK(slices.size() == 2 * record_count(length) + (length % 8 == 0 ? 0 : 1));
}

TEST_CASE("frame_records appends to the slices already there", "[protocol]") {
  const std::string existing = "x";
  std::vector<std::span<const std::byte>> slices{bytes_of(existing)};
  std::array<std::array<std::byte, kHeaderSize>, 1> headers{};
  frame_records(RecordType::Stdout, 1, bytes_of("hello"), headers, slices);
  REQUIRE(slices.size() == 4);
  CHECK(test::text_of(slices[0]) == "x");
  CHECK(test::text_of(slices[1]) == hex("01 06 00 01 00 05 03 00"));
  CHECK(test::text_of(slices[2]) == "hello");
  CHECK(test::text_of(slices[3]) == hex("00 00 00"));
}

}  // namespace
}  // namespace fcgimux::protocol
