// SPDX-License-Identifier: MIT
// multipart/form-data (RFC 7578) over the multipart grammar of RFC 2046 §5.1.1:
//
//   body     = dash-boundary padding CRLF part *( delimiter padding CRLF part )
//              delimiter "--" epilogue
//   part     = *( header CRLF ) CRLF data
//   delimiter     = CRLF dash-boundary          dash-boundary = "--" boundary
//
// The state machine, one state per thing the next byte can be:
//
//   Start --"--boundary"--> AfterBoundary --CR--> BoundaryLf --LF--> Headers --CRLF CRLF--> Body
//                            |  ^   |                 ^                                      |
//                            |  |   +--SP/HT--> Padding --CR                                 |
//                            |  +---------------------- "\r\n--boundary" ---------------------+
//                            +--"--"--> Done (epilogue ignored)
//
// A part's data is never stored: bytes that cannot begin the delimiter go to on_part_data from
// the caller's buffer; bytes that might are held back only as a count (matched_), since they
// equal the delimiter's first bytes and can be re-sent from delimiter_ if the match fails.

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {
namespace {

constexpr std::size_t kMaxBoundaryLength = 70;

// RFC 2046 §5.1.1: boundary = 0*69<bchars> bcharsnospace.
bool is_valid_boundary(std::string_view boundary) noexcept {
  if (boundary.empty() || boundary.size() > kMaxBoundaryLength || boundary.back() == ' ') {
    return false;
  }
  return std::ranges::all_of(boundary, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
  });
}

std::string_view trim_left(std::string_view text) noexcept {
  while (!text.empty() && ascii::is_ows(text.front())) text.remove_prefix(1);
  return text;
}

std::size_t token_length(std::string_view text) noexcept {
  std::size_t n = 0;
  while (n < text.size() && ascii::is_tchar(text[n])) ++n;
  return n;
}

// Splits a header value into its first item (a media type or disposition type) and the
// parameters that follow it: `text` up to the first ';', trimmed, and the rest from the ';'.
std::pair<std::string_view, std::string_view> split_type(std::string_view text) noexcept {
  const std::size_t semicolon = std::min(text.find(';'), text.size());
  return {ascii::trim_ows(text.substr(0, semicolon)), text.substr(semicolon)};
}

// RFC 9110 §5.6.6 parameters, *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] ), read
// as browsers write them: optional whitespace around '=', and a quoted value that ends at the
// next '"' with no backslash escapes (HTML's form-data encoding escapes '"' as "%22" instead,
// and sends Windows paths with literal backslashes). Calls on_param(name, value) for each,
// stopping when it returns false. Returns false on a malformed list or a refused parameter.
template <class OnParam>
bool parse_parameters(std::string_view text, OnParam on_param) {
  for (;;) {
    text = trim_left(text);
    if (text.empty()) return true;
    if (text.front() != ';') return false;
    text = trim_left(text.substr(1));
    if (text.empty() || text.front() == ';') continue;
    const std::size_t name_length = token_length(text);
    if (name_length == 0) return false;
    const std::string_view name = text.substr(0, name_length);
    text = trim_left(text.substr(name_length));
    if (text.empty() || text.front() != '=') return false;
    text = trim_left(text.substr(1));
    std::string_view value;
    if (!text.empty() && text.front() == '"') {
      const std::size_t close = text.find('"', 1);
      if (close == std::string_view::npos) return false;
      value = text.substr(1, close - 1);
      text = text.substr(close + 1);
    } else {
      const std::size_t value_length = token_length(text);
      if (value_length == 0) return false;
      value = text.substr(0, value_length);
      text = text.substr(value_length);
    }
    if (!on_param(name, value)) return false;
  }
}

// RFC 7578 §4.2: Content-Disposition: form-data; name="..." [; filename="..."]. Other
// parameters are ignored, filename* included (§4.2 forbids it in form-data).
bool parse_disposition(std::string_view value, Part& part) {
  const auto [type, parameters] = split_type(value);
  if (!ascii::iequals(type, "form-data")) return false;
  bool has_name = false;
  const bool parsed = parse_parameters(parameters, [&](std::string_view name, std::string_view v) {
    if (ascii::iequals(name, "name")) {
      if (has_name) return false;
      has_name = true;
      part.name = v;
    } else if (ascii::iequals(name, "filename")) {
      if (part.filename) return false;
      part.filename = v;
    }
    return true;
  });
  return parsed && has_name;
}

// Parses a complete header block: header lines, each ended by CRLF, then CRLF. Views into
// `block`. Each line is "name: value" with a token name and no CTL but HTAB; obs-fold
// continuation lines and repeated Content-Disposition or Content-Type headers are refused, as
// two readers could disagree about them.
bool parse_part_headers(std::string_view block, Part& part) {
  block.remove_suffix(2);  // the empty line
  bool has_disposition = false;
  bool has_type = false;
  while (!block.empty()) {
    const std::size_t crlf = block.find("\r\n");
    const std::string_view line = block.substr(0, crlf);
    block = block.substr(crlf + 2);  // every line ends with CRLF: crlf is found
    if (std::ranges::any_of(line, [](char c) { return ascii::is_ctl(c) && c != '\t'; })) {
      return false;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = ascii::trim_ows(line.substr(colon + 1));
    if (!ascii::is_token(name)) return false;
    if (ascii::iequals(name, "Content-Disposition")) {
      if (has_disposition || !parse_disposition(value, part)) return false;
      has_disposition = true;
    } else if (ascii::iequals(name, "Content-Type")) {
      if (has_type) return false;
      has_type = true;
      part.content_type = value;
    }
  }
  return has_disposition;
}

}  // namespace

std::optional<std::string_view> form_data_boundary(std::string_view content_type) noexcept {
  const auto [type, parameters] = split_type(content_type);
  if (!ascii::iequals(type, "multipart/form-data")) return std::nullopt;
  std::optional<std::string_view> boundary;
  const bool parsed = parse_parameters(parameters, [&](std::string_view name, std::string_view v) {
    if (!ascii::iequals(name, "boundary")) return true;
    if (boundary) return false;
    boundary = v;
    return true;
  });
  if (!parsed || !boundary || !is_valid_boundary(*boundary)) return std::nullopt;
  return boundary;
}

MultipartParser::MultipartParser(std::string_view boundary, MultipartCallbacks callbacks,
                                 const MultipartLimits& limits)
    : callbacks_(std::move(callbacks)), limits_(limits) {
  if (!is_valid_boundary(boundary)) {
    fail(Error::BadBoundary);
    return;
  }
  delimiter_.append("\r\n--").append(boundary);
  // The body starts with dash-boundary: the delimiter without its CRLF.
  matched_ = 2;
}

Error MultipartParser::feed(std::string_view bytes) {
  return feed(std::as_bytes(std::span(bytes)));
}

Error MultipartParser::feed(std::span<const std::byte> bytes) {
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const char* const end = p + bytes.size();
  while (p != end) {
    switch (state_) {
      case State::Start:
        if (*p++ != delimiter_[matched_]) return fail(Error::MultipartPreamble);
        if (++matched_ == delimiter_.size()) {
          matched_ = 0;
          state_ = State::AfterBoundary;
        }
        break;
      case State::AfterBoundary: {
        const char c = *p++;
        if (c == '-') {
          state_ = State::CloseDash;
        } else if (ascii::is_ows(c)) {
          state_ = State::Padding;
        } else if (c == '\r') {
          state_ = State::BoundaryLf;
        } else {
          return fail(Error::BadBoundaryLine);
        }
        break;
      }
      case State::Padding: {
        const char c = *p++;
        if (c == '\r') {
          state_ = State::BoundaryLf;
        } else if (!ascii::is_ows(c)) {
          return fail(Error::BadBoundaryLine);
        }
        break;
      }
      case State::BoundaryLf:
        if (*p++ != '\n') return fail(Error::BadBoundaryLine);
        if (parts_ == limits_.max_parts) return fail(Error::TooManyParts);
        ++parts_;
        header_block_.clear();
        state_ = State::Headers;
        break;
      case State::CloseDash:
        if (*p++ != '-') return fail(Error::BadBoundaryLine);
        state_ = State::Done;
        break;
      case State::Headers:
        if (header_block_.size() == limits_.max_header_bytes) {
          return fail(Error::PartHeaderTooLarge);
        }
        header_block_.push_back(*p++);
        if (header_block_.back() == '\n' &&
            (header_block_ == "\r\n" || header_block_.ends_with("\r\n\r\n"))) {
          if (const Error error = begin_part(); error != Error::None) return error;
        }
        break;
      case State::Body:
        p = scan_body(p, end);
        break;
      case State::Done:
        // RFC 2046 §5.1.1: the epilogue "is to be ignored".
        return Error::None;
      case State::Failed:
        return error_;
    }
  }
  return error_;
}

Error MultipartParser::begin_part() {
  Part part;
  if (!parse_part_headers(header_block_, part)) return fail(Error::BadPartHeader);
  state_ = State::Body;
  matched_ = 0;
  if (callbacks_.on_part_begin) callbacks_.on_part_begin(part);
  return Error::None;
}

const char* MultipartParser::scan_body(const char* p, const char* end) {
  const auto emit = [this](const char* data, std::size_t size) {
    if (size != 0 && callbacks_.on_part_data) {
      callbacks_.on_part_data(std::as_bytes(std::span(data, size)));
    }
  };
  while (p != end) {
    if (matched_ == 0) {
      const char* const cr = std::find(p, end, '\r');
      emit(p, static_cast<std::size_t>(cr - p));
      if (cr == end) return end;
      matched_ = 1;
      p = cr + 1;
    } else if (*p == delimiter_[matched_]) {
      ++p;
      if (++matched_ == delimiter_.size()) {
        matched_ = 0;
        state_ = State::AfterBoundary;
        if (callbacks_.on_part_end) callbacks_.on_part_end();
        return p;
      }
    } else {
      // The held-back bytes are a prefix of the delimiter that stopped matching here. Its only
      // CR is its first byte (bchars exclude CR), so no later byte of it can start a match:
      // all of it is data. The current byte is looked at again, as a possible new start.
      emit(delimiter_.data(), matched_);
      matched_ = 0;
    }
  }
  return p;
}

Error MultipartParser::finish() {
  if (state_ == State::Failed || state_ == State::Done) return error_;
  return fail(Error::MultipartTruncated);
}

Error MultipartParser::fail(Error error) noexcept {
  state_ = State::Failed;
  error_ = error;
  return error;
}

}  // namespace fcgimux::http
