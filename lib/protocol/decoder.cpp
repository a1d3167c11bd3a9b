// SPDX-License-Identifier: MIT
// The incremental record decoder, FastCGI 1.0 §3.3.
//
// State machine, one record at a time:
//
//   Header --8 bytes, version 1--> Content --contentLength bytes--> (record handed out)
//     ^                                                                 |
//     +------------- paddingLength bytes skipped (Padding) <------------+
//
//   Header --version != 1--> Failed (final)

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "fcgimux/protocol.hpp"

namespace fcgimux::protocol {
namespace {

// Staging memory kept for reuse once its record has been handed out. A record that straddles
// reads is common (nginx's PARAMS often exceed one read), so a small buffer is worth keeping;
// anything larger is released so that an idle connection costs at most this much.
constexpr std::size_t kStagingKeptCapacity = 4096;

// FastCGI 1.0 §3.3: receivers interpret paddingLength and skip the paddingData. Skips what
// `in` holds of the `left` padding bytes still due.
void skip_padding(std::span<const std::byte>& in, std::size_t& left) noexcept {
  const auto skipped = std::min(left, in.size());
  in = in.subspan(skipped);
  left -= skipped;
}

}  // namespace

DecodeStatus Decoder::next(std::span<const std::byte>& in, Record& out) {
  if (state_ == State::Failed) return DecodeStatus::Error;
  if (state_ != State::Content) {
    // Whatever staging_ holds belongs to a record already handed out, whose view expires now.
    if (staging_.capacity() > kStagingKeptCapacity) {
      std::vector<std::byte>().swap(staging_);
    } else {
      staging_.clear();
    }
  }
  for (;;) {
    switch (state_) {
      case State::Padding:
        skip_padding(in, padding_left_);
        if (padding_left_ > 0) return DecodeStatus::NeedMore;
        state_ = State::Header;
        break;
      case State::Header: {
        if (header_filled_ == 0 && in.size() >= kHeaderSize) {
          header_ = decode_header(in.first<kHeaderSize>());
          in = in.subspan(kHeaderSize);
        } else {
          const auto taken = std::min(kHeaderSize - header_filled_, in.size());
          std::copy_n(in.data(), taken, header_bytes_.data() + header_filled_);
          in = in.subspan(taken);
          header_filled_ += taken;
          if (header_filled_ < kHeaderSize) return DecodeStatus::NeedMore;
          header_filled_ = 0;
          header_ = decode_header(header_bytes_);
        }
        // The version is the only field the header format itself can make invalid: every other
        // value of every other field is well-formed, and its meaning is the caller's business.
        if (header_.version != kVersion1) {
          state_ = State::Failed;
          error_ = Error::BadVersion;
          std::vector<std::byte>().swap(staging_);
          return DecodeStatus::Error;
        }
        state_ = State::Content;
        break;
      }
      case State::Content: {
        const std::size_t length = header_.content_length;
        if (staging_.empty() && in.size() >= length) {
          // The whole content is in this input: hand out a view, copy nothing.
          out.content = in.first(length);
          in = in.subspan(length);
        } else {
          const auto taken = std::min(length - staging_.size(), in.size());
          const auto needed = staging_.size() + taken;
          if (needed > staging_.capacity()) {
            // Grow geometrically but never past this record's content, so that memory follows
            // the bytes that actually arrived and never exceeds one record.
            staging_.reserve(std::min(std::max(needed, 2 * staging_.capacity()), length));
          }
          staging_.insert(staging_.end(), in.data(), in.data() + taken);
          in = in.subspan(taken);
          if (staging_.size() < length) return DecodeStatus::NeedMore;
          out.content = staging_;
        }
        out.header = header_;
        // Skip whatever padding is already here, so that a record that arrived whole leaves the
        // decoder at a record boundary.
        padding_left_ = header_.padding_length;
        skip_padding(in, padding_left_);
        state_ = padding_left_ > 0 ? State::Padding : State::Header;
        return DecodeStatus::Record;
      }
      case State::Failed:
        return DecodeStatus::Error;
    }
  }
}

std::size_t Decoder::buffered() const noexcept { return staging_.capacity(); }

bool Decoder::at_record_boundary() const noexcept {
  return state_ == State::Header && header_filled_ == 0;
}

}  // namespace fcgimux::protocol
