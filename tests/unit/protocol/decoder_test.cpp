// SPDX-License-Identifier: MIT
// The incremental record decoder, FastCGI 1.0 §3.3: lib/protocol/decoder.cpp.

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "wire.hpp"

namespace fcgimux::protocol {
namespace {

using test::bytes_of;
using test::hex;
using test::text_of;

struct Expected {
  Header header;
  std::string content;
};

// One record with an explicit padding length. Padding bytes are 0xee: §3.3 says receivers skip
// them, so their value must not matter.
std::string raw_record(const Expected& record) {
  std::array<std::byte, kHeaderSize> header{};
  encode_header(record.header, header);
  return std::string(text_of(header)) + record.content +
         std::string(record.header.padding_length, '\xee');
}

Expected make(RecordType type, std::uint16_t request_id, std::size_t content_length,
              std::uint8_t padding_length, char fill) {
  std::string content(content_length, fill);
  for (std::size_t i = 0; i < content_length; i += 7) content[i] = static_cast<char>(i / 7);
  return {.header = {.version = kVersion1,
                     .type = type,
                     .request_id = request_id,
                     .content_length = static_cast<std::uint16_t>(content_length),
                     .padding_length = padding_length},
          .content = std::move(content)};
}

// Records of many types, ids, lengths (0, 1, 7, 8, 65535) and paddings (0, 1, 7, 255).
std::vector<Expected> mixed_records() {
  std::string begin;
  append_begin_request(begin, 1, static_cast<std::uint16_t>(Role::Responder), kKeepConn);
  return {
      {.header = decode_header(bytes_of(begin).first<kHeaderSize>()),
       .content = begin.substr(kHeaderSize)},
      make(RecordType::Params, 1, 7, 1, 'p'),
      make(RecordType::Params, 1, 1, 255, 'q'),
      make(RecordType::Params, 1, 0, 0, 'r'),
      make(RecordType::Stdin, 1, 8, 0, 's'),
      make(RecordType::Stdin, 1, kMaxContentLength, 255, 't'),
      make(RecordType::Stdin, 1, 0, 255, 'u'),
      make(RecordType::GetValues, kNullRequestId, 0, 7, 'v'),
      make(static_cast<RecordType>(42), kNullRequestId, 1, 7, 'w'),
      make(RecordType::AbortRequest, 0xffff, 0, 0, 'x'),
      make(RecordType::Data, 2, 7, 0, 'y'),
      make(RecordType::Stdout, 0x0100, 9, 7, 'z'),
  };
}

std::string stream_of(const std::vector<Expected>& records) {
  std::string stream;
  for (const auto& record : records) stream += raw_record(record);
  return stream;
}

// Feeds one decoder piece after piece and checks that it yields exactly `expected`, consuming
// every byte of each piece. Compares as it goes rather than copying content.
class Replay {
 public:
  explicit Replay(const std::vector<Expected>& expected) : expected_(expected) {}

  void feed(std::span<const std::byte> piece) {
    Record record;
    for (;;) {
      switch (decoder_.next(piece, record)) {
        case DecodeStatus::NeedMore:
          ok_ = ok_ && piece.empty();
          return;
        case DecodeStatus::Error:
          ok_ = false;
          return;
        case DecodeStatus::Record:
          ok_ = ok_ && index_ < expected_.size() && record.header == expected_[index_].header &&
                text_of(record.content) == expected_[index_].content;
          ++index_;
          break;
      }
    }
  }

  // True when every expected record came out, in order, and nothing is left pending.
  bool matched() const {
    return ok_ && index_ == expected_.size() && decoder_.at_record_boundary() &&
           decoder_.error() == Error::None;
  }

 private:
  const std::vector<Expected>& expected_;
  Decoder decoder_;
  std::size_t index_ = 0;
  bool ok_ = true;
};

TEST_CASE("decoder yields identical records whole, byte by byte and at every split point",
          "[protocol]") {
  const auto records = mixed_records();
  const auto stream = stream_of(records);
  const auto bytes = bytes_of(stream);

  SECTION("whole") {
    Replay replay(records);
    replay.feed(bytes);
    CHECK(replay.matched());
  }
  SECTION("byte by byte") {
    Replay replay(records);
    for (std::size_t i = 0; i < bytes.size(); ++i) replay.feed(bytes.subspan(i, 1));
    CHECK(replay.matched());
  }
  SECTION("at every two-way split point") {
    std::size_t mismatches = 0;
    for (std::size_t split = 0; split <= bytes.size(); ++split) {
      Replay replay(records);
      replay.feed(bytes.first(split));
      replay.feed(bytes.subspan(split));
      if (!replay.matched()) ++mismatches;
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("a record that arrived whole is a view into the input", "[protocol]") {
  const auto records = mixed_records();
  const auto stream = stream_of(records);
  auto in = bytes_of(stream);
  const auto* const begin = in.data();
  Decoder decoder;
  Record record;
  std::size_t count = 0;
  std::size_t offset = 0;
  while (decoder.next(in, record) == DecodeStatus::Record) {
    offset += kHeaderSize;
    CHECK(record.content.data() == begin + offset);
    offset += record.header.content_length + record.header.padding_length;
    ++count;
  }
  CHECK(count == records.size());
  CHECK(decoder.buffered() == 0);
}

TEST_CASE("a record whose header straddled inputs but whose content is whole is still a view",
          "[protocol]") {
  const auto stream = raw_record(make(RecordType::Stdin, 1, 100, 4, 'a'));
  auto bytes = bytes_of(stream);
  Decoder decoder;
  Record record;
  auto first = bytes.first(5);
  REQUIRE(decoder.next(first, record) == DecodeStatus::NeedMore);
  auto rest = bytes.subspan(5);
  REQUIRE(decoder.next(rest, record) == DecodeStatus::Record);
  CHECK(record.content.data() == bytes.data() + kHeaderSize);
  CHECK(decoder.buffered() == 0);
}

TEST_CASE("a record that straddles inputs is gathered and outlives its input", "[protocol]") {
  const auto expected = make(RecordType::Params, 1, 300, 4, 'a');
  auto first_input = raw_record(expected);
  const auto second_input = first_input.substr(200);
  first_input.resize(200);

  Decoder decoder;
  Record record;
  auto first = bytes_of(first_input);
  REQUIRE(decoder.next(first, record) == DecodeStatus::NeedMore);
  CHECK(first.empty());
  first_input.assign(first_input.size(), '\0');  // the caller reuses its read buffer

  auto second = bytes_of(second_input);
  REQUIRE(decoder.next(second, record) == DecodeStatus::Record);
  CHECK(second.empty());
  CHECK(record.header == expected.header);
  CHECK(text_of(record.content) == expected.content);
  CHECK(decoder.at_record_boundary());
}

// §3.3: receivers skip the padding; it may arrive in a later read than its content.
TEST_CASE("a record is yielded as soon as its content is complete and late padding is skipped",
          "[protocol]") {
  const auto first = make(RecordType::Stdout, 1, 3, 5, 'a');
  const auto second = make(RecordType::Stdout, 1, 2, 6, 'b');
  const auto stream = raw_record(first) + raw_record(second);
  const auto bytes = bytes_of(stream);

  Decoder decoder;
  Record record;
  auto content_only = bytes.first(kHeaderSize + 3);
  REQUIRE(decoder.next(content_only, record) == DecodeStatus::Record);
  CHECK(text_of(record.content) == first.content);
  CHECK(content_only.empty());
  CHECK_FALSE(decoder.at_record_boundary());

  auto padding = bytes.subspan(kHeaderSize + 3, 5);
  REQUIRE(decoder.next(padding, record) == DecodeStatus::NeedMore);
  CHECK(decoder.at_record_boundary());

  auto rest = bytes.subspan(kHeaderSize + 3 + 5);
  REQUIRE(decoder.next(rest, record) == DecodeStatus::Record);
  CHECK(text_of(record.content) == second.content);
  CHECK(rest.empty());
  CHECK(decoder.at_record_boundary());  // the padding that was already there is skipped too
}

TEST_CASE("at_record_boundary is true only between records", "[protocol]") {
  const auto stream = raw_record(make(RecordType::Stdin, 1, 4, 4, 'a'));
  const auto bytes = bytes_of(stream);
  Decoder decoder;
  CHECK(decoder.at_record_boundary());
  Record record;
  // Header bytes 1..7, content bytes 1..3 and padding bytes 1..3 leave a record pending.
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto one = bytes.subspan(i, 1);
    const auto status = decoder.next(one, record);
    CHECK(status == (i == kHeaderSize + 3 ? DecodeStatus::Record : DecodeStatus::NeedMore));
    CHECK(decoder.at_record_boundary() == (i + 1 == bytes.size()));
  }
}

TEST_CASE("the decoder does not judge types, request ids, lengths or the reserved byte",
          "[protocol]") {
  // Type 0, type 255, a BEGIN_REQUEST with a 3-byte body, a management type on request id 5,
  // and a reserved byte of 0xff: all well-formed headers, for the caller to judge.
  const auto stream = hex("01 00 00 01 00 00 00 00") + hex("01 ff ff ff 00 01 00 00") + "x" +
                      hex("01 01 00 01 00 03 00 00") + "abc" + hex("01 09 00 05 00 00 00 00") +
                      hex("01 06 00 01 00 00 00 ff");
  const std::vector<RecordType> types{static_cast<RecordType>(0), static_cast<RecordType>(255),
                                      RecordType::BeginRequest, RecordType::GetValues,
                                      RecordType::Stdout};
  Decoder decoder;
  auto in = bytes_of(stream);
  Record record;
  std::vector<RecordType> seen;
  while (decoder.next(in, record) == DecodeStatus::Record) seen.push_back(record.header.type);
  CHECK(decoder.error() == Error::None);
  CHECK(seen == types);
}

// §3.3 and §8: FCGI_VERSION_1 is the only version.
TEST_CASE("a version other than 1 is BadVersion and the decoder stays failed", "[protocol]") {
  const auto version = static_cast<std::uint8_t>(GENERATE(0, 2, 255));
  auto bad = make(RecordType::Stdin, 1, 3, 5, 'b');
  bad.header.version = version;
  const auto good = raw_record(make(RecordType::Stdin, 1, 3, 5, 'a'));
  const auto stream = good + raw_record(bad) + good;

  SECTION("fed whole") {
    Decoder decoder;
    auto in = bytes_of(stream);
    Record record;
    REQUIRE(decoder.next(in, record) == DecodeStatus::Record);
    CHECK(decoder.next(in, record) == DecodeStatus::Error);
    CHECK(decoder.error() == Error::BadVersion);
    // The bad header was consumed; nothing after it is.
    CHECK(in.size() == stream.size() - good.size() - kHeaderSize);
    const auto left = in.size();
    CHECK(decoder.next(in, record) == DecodeStatus::Error);
    CHECK(in.size() == left);
    CHECK(decoder.error() == Error::BadVersion);
    CHECK_FALSE(decoder.at_record_boundary());
  }
  SECTION("fed byte by byte") {
    Decoder decoder;
    const auto bytes = bytes_of(stream);
    Record record;
    std::size_t failed_at = 0;
    for (std::size_t i = 0; i < bytes.size() && failed_at == 0; ++i) {
      auto one = bytes.subspan(i, 1);
      if (decoder.next(one, record) == DecodeStatus::Error) failed_at = i;
    }
    CHECK(failed_at == good.size() + kHeaderSize - 1);
    CHECK(decoder.error() == Error::BadVersion);
  }
}

TEST_CASE("a failed decoder holds no staging memory", "[protocol]") {
  const auto large = raw_record(make(RecordType::Stdin, 1, 3000, 0, 'a'));
  const auto stream = large + hex("02 05 00 01 00 00 00 00");
  const auto bytes = bytes_of(stream);
  Decoder decoder;
  Record record;
  auto first = bytes.first(1000);
  REQUIRE(decoder.next(first, record) == DecodeStatus::NeedMore);
  auto rest = bytes.subspan(1000);
  REQUIRE(decoder.next(rest, record) == DecodeStatus::Record);
  CHECK(decoder.buffered() > 0);  // 3000 bytes are kept for reuse, under 4 KiB
  REQUIRE(decoder.next(rest, record) == DecodeStatus::Error);
  CHECK(decoder.buffered() == 0);
}

// The staging policy documented on Decoder: memory follows the bytes that arrived, at most one
// record's content; after the record is handed out up to 4 KiB is kept, anything more released.
TEST_CASE("staging grows with the bytes that arrive, not with the announced length", "[protocol]") {
  const auto stream = raw_record(make(RecordType::Stdin, 1, kMaxContentLength, 0, 'a'));
  const auto bytes = bytes_of(stream);
  Decoder decoder;
  Record record;
  auto header_and_one = bytes.first(kHeaderSize + 1);
  REQUIRE(decoder.next(header_and_one, record) == DecodeStatus::NeedMore);
  CHECK(decoder.buffered() >= 1);
  CHECK(decoder.buffered() < 64);

  std::size_t most = 0;
  for (std::size_t i = kHeaderSize + 1; i < bytes.size(); ++i) {
    auto one = bytes.subspan(i, 1);
    if (decoder.next(one, record) == DecodeStatus::Record) {
      CHECK(i + 1 == bytes.size());
    }
    most = std::max(most, decoder.buffered());
  }
  CHECK(most == kMaxContentLength);
}

TEST_CASE("staging up to 4 KiB is kept after its record and anything larger released",
          "[protocol]") {
  const auto length = static_cast<std::size_t>(GENERATE(100, 4096, 4097, kMaxContentLength));
  const auto expected = make(RecordType::Params, 1, length, 0, 'a');
  const auto stream = raw_record(expected);
  const auto bytes = bytes_of(stream);
  Decoder decoder;
  Record record;
  auto first = bytes.first(kHeaderSize + length / 2);
  REQUIRE(decoder.next(first, record) == DecodeStatus::NeedMore);
  auto rest = bytes.subspan(kHeaderSize + length / 2);
  REQUIRE(decoder.next(rest, record) == DecodeStatus::Record);
  // The view into staging is valid until the next call.
  CHECK(text_of(record.content) == expected.content);
  CHECK(decoder.buffered() >= length);

  auto nothing = std::span<const std::byte>();
  REQUIRE(decoder.next(nothing, record) == DecodeStatus::NeedMore);
  if (length <= 4096) {
    CHECK(decoder.buffered() == length);
  } else {
    CHECK(decoder.buffered() == 0);
  }
}

TEST_CASE("kept staging never leaks into the next straddling record", "[protocol]") {
  const auto first = make(RecordType::Params, 1, 1000, 0, 'a');
  const auto second = make(RecordType::Params, 1, 10, 6, 'b');
  const auto stream = raw_record(first) + raw_record(second);
  const auto bytes = bytes_of(stream);
  const std::vector<Expected> expected{first, second};
  Replay split_replay(expected);
  split_replay.feed(bytes.first(500));
  split_replay.feed(bytes.subspan(500, kHeaderSize + 1000 - 500 + kHeaderSize + 3));
  split_replay.feed(bytes.subspan(kHeaderSize + 1000 + kHeaderSize + 3));
  CHECK(split_replay.matched());
}

}  // namespace
}  // namespace fcgimux::protocol
