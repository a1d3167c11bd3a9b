// SPDX-License-Identifier: MIT
// Name-value pairs, FastCGI 1.0 §3.4.

#include <cassert>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace fcgimux::protocol {
namespace {

// FastCGI 1.0 §3.4: "Lengths of 127 bytes and less can be encoded in one byte, while longer
// lengths are always encoded in four bytes." The high bit of a length's first byte says which.
constexpr std::size_t kMaxShortLength = 127;
constexpr std::size_t kLongLengthSize = 4;
constexpr unsigned kLongLengthFlag = 0x80;

constexpr unsigned value_of(char c) noexcept { return static_cast<unsigned char>(c); }

// Reads one length from the front of `block`, advancing it. Returns false when the length runs
// past the end of the block.
//
// The specification says short lengths "can" take one byte, and only the high bit decides the
// encoding, so a 4-byte length holding a value under 128 is valid and accepted.
bool read_length(std::string_view& block, std::size_t& length) noexcept {
  if (block.empty()) return false;
  const unsigned first = value_of(block[0]);
  if ((first & kLongLengthFlag) == 0) {
    length = first;
    block.remove_prefix(1);
    return true;
  }
  if (block.size() < kLongLengthSize) return false;
  length = std::size_t{first & ~kLongLengthFlag} << 24u | std::size_t{value_of(block[1])} << 16u |
           std::size_t{value_of(block[2])} << 8u | std::size_t{value_of(block[3])};
  block.remove_prefix(kLongLengthSize);
  return true;
}

constexpr std::size_t length_size(std::size_t length) noexcept {
  return length <= kMaxShortLength ? 1 : kLongLengthSize;
}

void append_length(std::string& out, std::size_t length) {
  assert(length <= kMaxNameValueLength);
  if (length <= kMaxShortLength) {
    out.push_back(static_cast<char>(length));
    return;
  }
  const char bytes[kLongLengthSize] = {static_cast<char>((length >> 24u) | kLongLengthFlag),
                                       static_cast<char>(length >> 16u),
                                       static_cast<char>(length >> 8u), static_cast<char>(length)};
  out.append(bytes, kLongLengthSize);
}

}  // namespace

Error parse_name_values(std::string_view block, std::vector<NameValue>& out) {
  while (!block.empty()) {
    std::size_t name_length = 0;
    std::size_t value_length = 0;
    if (!read_length(block, name_length) || !read_length(block, value_length)) {
      return Error::NameValueTruncated;
    }
    // Each length is below 2^31, so neither comparison can overflow.
    if (name_length > block.size() || value_length > block.size() - name_length) {
      return Error::NameValueTruncated;
    }
    out.push_back(
        {.name = block.substr(0, name_length), .value = block.substr(name_length, value_length)});
    block.remove_prefix(name_length + value_length);
  }
  return Error::None;
}

Error NameValueBlock::append(std::span<const std::byte> piece) {
  // bytes_ never exceeds max_bytes_, so the subtraction cannot wrap.
  if (piece.size() > max_bytes_ - bytes_.size()) return Error::NameValueTooLarge;
  bytes_.append(reinterpret_cast<const char*>(piece.data()), piece.size());
  return Error::None;
}

std::optional<std::string_view> value_of(std::span<const NameValue> pairs,
                                         std::string_view name) noexcept {
  for (const NameValue& pair : pairs) {
    if (pair.name == name) return pair.value;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> content_length(std::span<const NameValue> params) noexcept {
  const std::optional<std::string_view> text = value_of(params, "CONTENT_LENGTH");
  if (!text || text->empty()) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [stop, error] = std::from_chars(text->data(), end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::size_t name_value_size(std::string_view name, std::string_view value) noexcept {
  return length_size(name.size()) + length_size(value.size()) + name.size() + value.size();
}

void append_name_value(std::string& out, std::string_view name, std::string_view value) {
  append_length(out, name.size());
  append_length(out, value.size());
  out.append(name);
  out.append(value);
}

}  // namespace fcgimux::protocol
