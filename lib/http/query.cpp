// SPDX-License-Identifier: MIT
// Percent-encoding (RFC 3986 §2.1) and application/x-www-form-urlencoded (WHATWG URL §5.1).

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/http.hpp"

namespace fcgimux::http {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3.
bool is_unreserved(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Appends the decoding of `text` to `out`, '+' as a space when `plus_is_space`. On error `out`
// holds part of the decoding: the callers roll it back.
bool decode(std::string_view text, bool plus_is_space, std::string& out) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (text.size() - i < 3) return false;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return false;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return true;
}

}  // namespace

Error percent_decode(std::string_view text, std::string& out) {
  const std::size_t before = out.size();
  if (!decode(text, false, out)) {
    out.resize(before);
    return Error::BadPercentEncoding;
  }
  return Error::None;
}

void percent_encode(std::string_view text, std::string& out) {
  constexpr std::string_view kDigits = "0123456789ABCDEF";
  for (const char c : text) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kDigits[byte >> 4u]);
      out.push_back(kDigits[byte & 0xfu]);
    }
  }
}

Error parse_form(std::string_view text, std::vector<FormField>& fields, const FormLimits& limits) {
  const std::size_t before = fields.size();
  std::size_t bytes = 0;
  Error error = Error::None;
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view piece = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (piece.empty()) continue;
    if (fields.size() - before == limits.max_fields) {
      error = Error::TooManyFields;
      break;
    }
    const std::size_t eq = piece.find('=');
    FormField field;
    if (!decode(piece.substr(0, eq), true, field.name) ||
        (eq != std::string_view::npos && !decode(piece.substr(eq + 1), true, field.value))) {
      error = Error::BadPercentEncoding;
      break;
    }
    bytes += field.name.size() + field.value.size();
    if (bytes > limits.max_bytes) {
      error = Error::FormTooLarge;
      break;
    }
    fields.push_back(std::move(field));
  }
  if (error != Error::None) fields.resize(before);
  return error;
}

std::optional<std::string_view> field(std::span<const FormField> fields,
                                      std::string_view name) noexcept {
  for (const auto& f : fields) {
    if (f.name == name) return f.value;
  }
  return std::nullopt;
}

}  // namespace fcgimux::http
