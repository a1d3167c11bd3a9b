// SPDX-License-Identifier: MIT
// libFuzzer target for name-value pairs (FastCGI 1.0 §3.4). The input is a block of pairs as
// a PARAMS stream or a GET_VALUES record would carry it. Invariants, checked on every input
// (a failure aborts):
//  1. parse_name_values() stays inside the block: every pair views it, in order, and on
//     success the last pair ends where the block ends.
//  2. parse(encode(pairs)) == pairs, and encoding takes name_value_size() bytes per pair.
//  3. NameValueBlock, fed the input in pieces with a limit of the input's size or one byte
//     less, refuses exactly the piece that would pass the limit, keeps nothing of it, and
//     parses what it holds as parse_name_values() does.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace {

namespace protocol = fcgimux::protocol;

void check(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "name_value_fuzz: invariant failed: %s\n", invariant);
    std::abort();
  }
}

void check_parse(std::string_view block, const std::vector<protocol::NameValue>& pairs,
                 protocol::Error error) {
  check(error == protocol::Error::None || error == protocol::Error::NameValueTruncated,
        "parse result");
  const char* cursor = block.data();
  for (const auto& pair : pairs) {
    check(pair.name.data() >= cursor && pair.value.data() == pair.name.data() + pair.name.size() &&
              pair.value.data() + pair.value.size() <= block.data() + block.size(),
          "pairs view the block in order");
    cursor = pair.value.data() + pair.value.size();
  }
  if (error == protocol::Error::None) {
    check(cursor == block.data() + block.size(), "a parsed block is covered by its pairs");
  }
}

void check_round_trip(const std::vector<protocol::NameValue>& pairs) {
  std::string encoded;
  std::size_t expected_size = 0;
  for (const auto& pair : pairs) {
    protocol::append_name_value(encoded, pair.name, pair.value);
    expected_size += protocol::name_value_size(pair.name, pair.value);
  }
  check(encoded.size() == expected_size, "name_value_size matches the encoding");
  std::vector<protocol::NameValue> again;
  check(protocol::parse_name_values(encoded, again) == protocol::Error::None && again == pairs,
        "parse(encode(pairs)) == pairs");
}

void check_block(std::span<const std::byte> input, const std::vector<protocol::NameValue>& pairs,
                 protocol::Error error) {
  // The last byte picks the limit: exactly the input's size, or one byte short of it.
  const std::size_t limit =
      input.empty() ? 0 : input.size() - std::to_integer<std::size_t>(input.back()) % 2;
  protocol::NameValueBlock block(limit);
  std::size_t held = 0;
  std::size_t offset = 0;
  while (offset < input.size()) {
    // Each piece is as long as the byte it starts with says (1 to 64).
    const auto length =
        std::min(std::to_integer<std::size_t>(input[offset]) % 64 + 1, input.size() - offset);
    const auto piece = input.subspan(offset, length);
    const auto result = block.append(piece);
    const bool fits = held + length <= limit;
    check(result == (fits ? protocol::Error::None : protocol::Error::NameValueTooLarge),
          "a block refuses exactly what would pass its limit");
    if (fits) held += length;
    check(block.bytes().size() == held, "a refused piece leaves nothing behind");
    offset += length;
  }
  if (limit == input.size()) {
    std::vector<protocol::NameValue> from_block;
    check(block.parse(from_block) == error && from_block == pairs,
          "a block parses as the whole input does");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span input(reinterpret_cast<const std::byte*>(data), size);
  const std::string_view block(reinterpret_cast<const char*>(data), size);

  std::vector<protocol::NameValue> pairs;
  const auto error = protocol::parse_name_values(block, pairs);
  check_parse(block, pairs, error);
  check_round_trip(pairs);
  check_block(input, pairs, error);
  return 0;
}
