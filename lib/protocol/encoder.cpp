// SPDX-License-Identifier: MIT
// Framing content as records, FastCGI 1.0 §3.3.

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace fcgimux::protocol {
namespace {

// Padding is at most 7 bytes here: pieces are split at a multiple of 8, so only the last one
// needs padding, and padding_for() never asks for more than 7.
constexpr std::array<std::byte, 7> kZeros{};

Header header_for(RecordType type, std::uint16_t request_id, std::size_t piece_length) noexcept {
  return {.type = type,
          .request_id = request_id,
          .content_length = static_cast<std::uint16_t>(piece_length),
          .padding_length = padding_for(piece_length)};
}

// Calls `emit(piece)` for each record's share of `content`: pieces of kMaxAlignedContentLength
// bytes and a shorter last one, or a single empty piece for empty content.
template <class Emit>
void for_each_piece(std::span<const std::byte> content, Emit emit) {
  do {
    const auto piece = content.first(std::min(content.size(), kMaxAlignedContentLength));
    emit(piece);
    content = content.subspan(piece.size());
  } while (!content.empty());
}

}  // namespace

void append_records(std::string& out, RecordType type, std::uint16_t request_id,
                    std::span<const std::byte> content) {
  for_each_piece(content, [&](std::span<const std::byte> piece) {
    const auto header = header_for(type, request_id, piece.size());
    std::array<std::byte, kHeaderSize> header_bytes{};
    encode_header(header, header_bytes);
    out.append(reinterpret_cast<const char*>(header_bytes.data()), header_bytes.size());
    out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    out.append(header.padding_length, '\0');
  });
}

void append_records(std::string& out, RecordType type, std::uint16_t request_id,
                    std::string_view content) {
  append_records(out, type, request_id, std::as_bytes(std::span(content)));
}

void frame_records(RecordType type, std::uint16_t request_id, std::span<const std::byte> content,
                   std::span<std::array<std::byte, kHeaderSize>> headers,
                   std::vector<std::span<const std::byte>>& slices) {
  assert(headers.size() >= record_count(content.size()));
  auto next_header = headers.begin();
  for_each_piece(content, [&](std::span<const std::byte> piece) {
    const auto header = header_for(type, request_id, piece.size());
    encode_header(header, *next_header);
    slices.emplace_back(*next_header);
    ++next_header;
    slices.push_back(piece);
    if (header.padding_length > 0) {
      slices.push_back(std::span(kZeros).first(header.padding_length));
    }
  });
}

}  // namespace fcgimux::protocol
