// SPDX-License-Identifier: MIT
// Name-value pairs, FastCGI 1.0 §3.4: lib/protocol/name_value.cpp.

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"
#include "wire.hpp"

namespace fcgimux::protocol {
namespace {

using test::bytes_of;
using test::hex;

std::vector<NameValue> parsed(std::string_view block) {
  std::vector<NameValue> pairs;
  REQUIRE(parse_name_values(block, pairs) == Error::None);
  return pairs;
}

// §3.4, FCGI_NameValuePair11, with the specification's own example from appendix B.
TEST_CASE("a pair with short lengths takes one byte per length", "[protocol]") {
  std::string out;
  append_name_value(out, "SERVER_PORT", "80");
  CHECK(out == hex("0b 02") + "SERVER_PORT80");
  CHECK(name_value_size("SERVER_PORT", "80") == out.size());
  CHECK(parsed(out) == std::vector<NameValue>{{"SERVER_PORT", "80"}});
}

// §3.4: "Lengths of 127 bytes and less can be encoded in one byte, while longer lengths are
// always encoded in four bytes"; the high bit of the first byte marks the 4-byte form.
TEST_CASE("lengths under 128 take one byte and longer ones four with the high bit set",
          "[protocol]") {
  struct Case {
    std::size_t length;
    std::string encoded_length;
  };
  const auto c = GENERATE(Case{0, hex("00")}, Case{1, hex("01")}, Case{127, hex("7f")},
                          Case{128, hex("80 00 00 80")}, Case{255, hex("80 00 00 ff")},
                          Case{65535, hex("80 00 ff ff")}, Case{65536, hex("80 01 00 00")},
                          Case{1'000'000, hex("80 0f 42 40")});
  const std::string data(c.length, 'x');

  SECTION("as a name") {
    std::string out;
    append_name_value(out, data, "v");
    CHECK(out == c.encoded_length + hex("01") + data + "v");
    CHECK(name_value_size(data, "v") == out.size());
    CHECK(parsed(out) == std::vector<NameValue>{{data, "v"}});
  }
  SECTION("as a value") {
    std::string out;
    append_name_value(out, "n", data);
    CHECK(out == hex("01") + c.encoded_length + "n" + data);
    CHECK(name_value_size("n", data) == out.size());
    CHECK(parsed(out) == std::vector<NameValue>{{"n", data}});
  }
}

// §3.4: only the high bit decides the encoding, and short lengths only "can" take one byte.
TEST_CASE("a 4-byte length holding a value under 128 is accepted", "[protocol]") {
  CHECK(parsed(hex("80 00 00 03 80 00 00 01") + "abc" + "x") ==
        std::vector<NameValue>{{"abc", "x"}});
  CHECK(parsed(hex("80 00 00 00 00")) == std::vector<NameValue>{{"", ""}});
}

TEST_CASE("the high bit marks the 4-byte form and is not part of the length", "[protocol]") {
  // 0x80 0x00 0x01 0x00 is 256, not 0x80000100.
  const std::string name(256, 'n');
  CHECK(parsed(hex("80 00 01 00 00") + name) == std::vector<NameValue>{{name, ""}});
  // In the 1-byte form the high bit is clear, so 0x7f is the largest 1-byte length.
  const std::string value(127, 'v');
  CHECK(parsed(hex("00 7f") + value) == std::vector<NameValue>{{"", value}});
}

TEST_CASE("the largest length, 0x7fffffff, runs past a short block", "[protocol]") {
  std::vector<NameValue> pairs;
  SECTION("as a name length") {
    CHECK(parse_name_values(hex("ff ff ff ff 00") + "abc", pairs) == Error::NameValueTruncated);
  }
  SECTION("as a value length") {
    CHECK(parse_name_values(hex("01 ff ff ff ff") + "abc", pairs) == Error::NameValueTruncated);
  }
  SECTION("as both") {
    CHECK(parse_name_values(hex("ff ff ff ff ff ff ff ff") + "abc", pairs) ==
          Error::NameValueTruncated);
  }
  CHECK(pairs.empty());
}

TEST_CASE("a length or data that runs past the block is NameValueTruncated", "[protocol]") {
  const auto block = GENERATE(hex("01"),                      // no value length
                              hex("80"),                      // name length cut after 1 byte
                              hex("80 00 00"),                // name length cut after 3 bytes
                              hex("01 80 00"),                // value length cut
                              hex("03 00") + "ab",            // name runs past the end
                              hex("01 03") + "a" + "bc",      // value runs past the end
                              hex("80 00 00 02 01") + "ab");  // value missing entirely
  std::vector<NameValue> pairs;
  CHECK(parse_name_values(block, pairs) == Error::NameValueTruncated);
  CHECK(pairs.empty());
}

TEST_CASE("pairs before a truncated one are kept", "[protocol]") {
  const std::string block = hex("01 01") + "ab" + hex("00 00") + hex("05");
  std::vector<NameValue> pairs;
  CHECK(parse_name_values(block, pairs) == Error::NameValueTruncated);
  CHECK(pairs == std::vector<NameValue>{{"a", "b"}, {"", ""}});
}

TEST_CASE("an empty block holds no pairs", "[protocol]") { CHECK(parsed("").empty()); }

TEST_CASE("parse_name_values appends to the pairs already there and views the block",
          "[protocol]") {
  const std::string block = hex("01 01") + "ab";
  std::vector<NameValue> pairs{{"old", "pair"}};
  REQUIRE(parse_name_values(block, pairs) == Error::None);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[1].name.data() == block.data() + 2);
  CHECK(pairs[1].value.data() == block.data() + 3);
}

// §5.2: PARAMS is a stream; a pair, even one of its lengths, may straddle two records.
TEST_CASE("a pair split across two PARAMS records parses the same at every offset", "[protocol]") {
  std::string params;
  append_name_value(params, "SCRIPT_FILENAME", "/srv/www/index.php");
  append_name_value(params, "HTTP_COOKIE", std::string(300, 'c'));
  append_name_value(params, std::string(200, 'N'), "");
  const auto expected = parsed(params);

  const auto split = GENERATE_COPY(range(std::size_t{0}, params.size() + 1));
  std::string stream;
  append_records(stream, RecordType::Params, 1, params.substr(0, split));
  append_records(stream, RecordType::Params, 1, params.substr(split));
  append_records(stream, RecordType::Params, 1, std::string_view());

  NameValueBlock block(params.size());
  Decoder decoder;
  auto in = bytes_of(stream);
  Record record;
  std::size_t records = 0;
  while (decoder.next(in, record) == DecodeStatus::Record) {
    ++records;
    REQUIRE(block.append(record.content) == Error::None);
  }
  REQUIRE(records == 3);
  std::vector<NameValue> pairs;
  REQUIRE(block.parse(pairs) == Error::None);
  CHECK(pairs == expected);
}

TEST_CASE("a value that runs past the end of the PARAMS stream is NameValueTruncated",
          "[protocol]") {
  // The value announces 10 bytes but the stream ends after 5.
  std::string stream;
  append_records(stream, RecordType::Params, 1, hex("04 0a") + "NAME" + "short");
  append_records(stream, RecordType::Params, 1, std::string_view());
  NameValueBlock block(1024);
  Decoder decoder;
  auto in = bytes_of(stream);
  Record record;
  while (decoder.next(in, record) == DecodeStatus::Record) {
    REQUIRE(block.append(record.content) == Error::None);
  }
  std::vector<NameValue> pairs;
  CHECK(block.parse(pairs) == Error::NameValueTruncated);
  CHECK(pairs.empty());
}

TEST_CASE("NameValueBlock accepts exactly max_bytes and refuses one byte more", "[protocol]") {
  const std::string pair = hex("05 0a") + "HELLO" + "0123456789";  // 17 bytes
  SECTION("in one piece") {
    NameValueBlock at_limit(pair.size());
    CHECK(at_limit.append(bytes_of(pair)) == Error::None);
    CHECK(at_limit.bytes() == pair);

    NameValueBlock over_limit(pair.size() - 1);
    CHECK(over_limit.append(bytes_of(pair)) == Error::NameValueTooLarge);
    CHECK(over_limit.bytes().empty());
  }
  SECTION("in pieces: a refused piece leaves the block as it was") {
    NameValueBlock block(pair.size());
    REQUIRE(block.append(bytes_of(pair).first(10)) == Error::None);
    CHECK(block.append(bytes_of(pair).subspan(9)) == Error::NameValueTooLarge);
    CHECK(block.bytes() == pair.substr(0, 10));
    CHECK(block.append(bytes_of(pair).subspan(10)) == Error::None);
    CHECK(block.bytes() == pair);
    CHECK(block.append(bytes_of("x")) == Error::NameValueTooLarge);
    CHECK(block.append({}) == Error::None);
    CHECK(block.bytes() == pair);
    std::vector<NameValue> pairs;
    REQUIRE(block.parse(pairs) == Error::None);
    CHECK(pairs == std::vector<NameValue>{{"HELLO", "0123456789"}});
  }
  SECTION("a limit of zero holds nothing") {
    NameValueBlock block(0);
    CHECK(block.max_bytes() == 0);
    CHECK(block.append({}) == Error::None);
    CHECK(block.append(bytes_of("x")) == Error::NameValueTooLarge);
  }
}

}  // namespace
}  // namespace fcgimux::protocol
