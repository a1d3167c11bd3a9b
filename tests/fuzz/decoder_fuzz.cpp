// SPDX-License-Identifier: MIT
// libFuzzer target for protocol::Decoder. The input is a byte stream as a peer would send it.
// Invariants, checked on every input (a failure aborts):
//  1. Fed whole and fed in slices whose sizes derive from the input, the decoder yields the same
//     records and stops with the same status and error after consuming the same bytes; an
//     input that arrived whole yields views into it.
//  2. Every record has version 1 and as much content as its header says; staging never holds
//     more than one record's content; a failed decoder stays failed and consumes nothing more.
//  3. Re-encoding the records and decoding them again gives the same records.
//  4. The bodies parse within bounds: fixed-size bodies exactly when they are 8 bytes, and
//     name-value pairs as views into their record.
//  5. No record is ever encoded past 65,535 content bytes: answering a FCGI_GET_VALUES query
//     with every pair it names either gives one record that decodes to those pairs, or is
//     refused (std::length_error) with nothing appended.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace {

namespace protocol = fcgimux::protocol;

void check(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "decoder_fuzz: invariant failed: %s\n", invariant);
    std::abort();
  }
}

struct Decoded {
  std::vector<protocol::Header> headers;
  std::vector<std::string> contents;
  protocol::DecodeStatus status = protocol::DecodeStatus::NeedMore;
  protocol::Error error = protocol::Error::None;
  std::size_t consumed = 0;
  bool at_boundary = true;

  bool operator==(const Decoded&) const = default;
};

bool contains(std::span<const std::byte> outer, std::span<const std::byte> inner) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

// Invariant 5, for the pairs of one FCGI_GET_VALUES query, each answered with a value as long
// as its name.
void check_answer(std::span<const protocol::NameValue> asked) {
  std::vector<std::string> values;
  std::size_t size = 0;
  for (const auto& pair : asked) {
    values.emplace_back(pair.name.size(), '1');
    size += protocol::name_value_size(pair.name, values.back());
  }
  std::vector<protocol::NameValue> answers;
  for (std::size_t i = 0; i < asked.size(); ++i) answers.push_back({asked[i].name, values[i]});
  std::string out = "before";
  try {
    protocol::append_get_values_result(out, answers);
  } catch (const std::length_error&) {
    check(size > protocol::kMaxContentLength && out == "before",
          "only an answer past one record is refused, and it appends nothing");
    return;
  }
  check(size <= protocol::kMaxContentLength, "an answer past one record is refused");
  std::span<const std::byte> encoded = std::as_bytes(std::span(out)).subspan(6);
  protocol::Decoder decoder;
  protocol::Record record;
  check(decoder.next(encoded, record) == protocol::DecodeStatus::Record &&
            record.header.type == protocol::RecordType::GetValuesResult &&
            record.content.size() == size,
        "the answer is one record");
  const std::string_view block(reinterpret_cast<const char*>(record.content.data()),
                               record.content.size());
  protocol::Record next;
  check(decoder.next(encoded, next) == protocol::DecodeStatus::NeedMore && encoded.empty() &&
            decoder.at_record_boundary(),
        "the answer is one whole record, nothing after it");
  std::vector<protocol::NameValue> decoded;
  check(protocol::parse_name_values(block, decoded) == protocol::Error::None && decoded == answers,
        "the answer decodes to the pairs");
}

void check_body(const protocol::Record& record) {
  const auto content = record.content;
  switch (record.header.type) {
    case protocol::RecordType::BeginRequest: {
      protocol::BeginRequestBody body;
      check((protocol::parse_begin_request(content, body) == protocol::Error::None) ==
                (content.size() == 8),
            "BEGIN_REQUEST parses exactly when 8 bytes");
      break;
    }
    case protocol::RecordType::EndRequest: {
      protocol::EndRequestBody body;
      check((protocol::parse_end_request(content, body) == protocol::Error::None) ==
                (content.size() == 8),
            "END_REQUEST parses exactly when 8 bytes");
      break;
    }
    case protocol::RecordType::UnknownType: {
      std::uint8_t type = 0;
      check((protocol::parse_unknown_type(content, type) == protocol::Error::None) ==
                (content.size() == 8),
            "UNKNOWN_TYPE parses exactly when 8 bytes");
      break;
    }
    case protocol::RecordType::Params:
    case protocol::RecordType::GetValues:
    case protocol::RecordType::GetValuesResult: {
      const std::string_view block(reinterpret_cast<const char*>(content.data()), content.size());
      std::vector<protocol::NameValue> pairs;
      const auto error = protocol::parse_name_values(block, pairs);
      check(error == protocol::Error::None || error == protocol::Error::NameValueTruncated,
            "name-value parse result");
      for (const auto& pair : pairs) {
        check(contains(content, std::as_bytes(std::span(pair.name))) &&
                  contains(content, std::as_bytes(std::span(pair.value))),
              "pairs view their record");
      }
      if (record.header.type == protocol::RecordType::GetValues) check_answer(pairs);
      break;
    }
    default:
      break;
  }
}

// Feeds `input` to a fresh decoder in slices of the sizes `next_size()` picks, until the input
// ends or the decoder fails.
template <class NextSize>
Decoded decode(std::span<const std::byte> input, NextSize next_size) {
  Decoded decoded;
  protocol::Decoder decoder;
  protocol::Record record;
  std::size_t offset = 0;
  do {
    const auto size = std::min(next_size(), input.size() - offset);
    auto piece = input.subspan(offset, size);
    for (;;) {
      decoded.status = decoder.next(piece, record);
      check(decoder.buffered() <= protocol::kMaxContentLength, "staging within one record");
      if (decoded.status != protocol::DecodeStatus::Record) break;
      check(record.header.version == protocol::kVersion1, "version 1");
      check(record.content.size() == record.header.content_length, "content length");
      if (size == input.size()) check(contains(input, record.content), "whole input is viewed");
      check_body(record);
      decoded.headers.push_back(record.header);
      decoded.contents.emplace_back(reinterpret_cast<const char*>(record.content.data()),
                                    record.content.size());
    }
    decoded.consumed = offset + size - piece.size();
    if (decoded.status == protocol::DecodeStatus::Error) {
      check(decoder.error() != protocol::Error::None, "an error has a reason");
      const auto left = piece.size();
      check(decoder.next(piece, record) == protocol::DecodeStatus::Error && piece.size() == left,
            "a failed decoder stays failed and consumes nothing");
      break;
    }
    check(piece.empty(), "NeedMore consumes every byte");
    offset += size;
  } while (offset < input.size());
  decoded.error = decoder.error();
  decoded.at_boundary = decoder.at_record_boundary();
  return decoded;
}

// Slice sizes from a xorshift generator seeded with the input's FNV-1a hash: deterministic
// for a given input, varied across inputs, often 1 byte so every state boundary gets hit.
class SliceSizes {
 public:
  explicit SliceSizes(std::span<const std::byte> input) {
    for (const auto b : input)
      state_ = (state_ ^ std::to_integer<std::uint64_t>(b)) * 0x100000001b3;
  }
  std::size_t operator()() {
    state_ ^= state_ << 13u;
    state_ ^= state_ >> 7u;
    state_ ^= state_ << 17u;
    return state_ % 4 == 0 ? 1 : static_cast<std::size_t>(state_ >> 32u) % 300 + 1;
  }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325;
};

std::string reencode(const Decoded& decoded) {
  std::string out;
  for (std::size_t i = 0; i < decoded.headers.size(); ++i) {
    std::array<std::byte, protocol::kHeaderSize> header{};
    protocol::encode_header(decoded.headers[i], header);
    out.append(reinterpret_cast<const char*>(header.data()), header.size());
    out += decoded.contents[i];
    out.append(decoded.headers[i].padding_length, '\0');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span input(reinterpret_cast<const std::byte*>(data), size);

  const auto whole = decode(input, [&] { return input.size(); });
  SliceSizes slice_sizes(input);
  const auto sliced = decode(input, slice_sizes);
  check(whole == sliced, "whole and sliced decoding agree");

  const auto again_bytes = reencode(whole);
  const auto again =
      decode(std::as_bytes(std::span(again_bytes)), [&] { return again_bytes.size(); });
  check(again.headers == whole.headers && again.contents == whole.contents,
        "re-encoded records decode the same");
  check(again.status == protocol::DecodeStatus::NeedMore && again.at_boundary,
        "re-encoded records end at a record boundary");
  return 0;
}
