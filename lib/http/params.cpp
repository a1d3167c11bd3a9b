// SPDX-License-Identifier: MIT
// The HTTP request as CGI params describe it (RFC 3875 §4.1).

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "fcgimux/http.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {
namespace {

using protocol::NameValue;

constexpr std::string_view kHttpPrefix = "HTTP_";

// Whether `cgi` is the CGI spelling of `name` (RFC 3875 §4.1.18: upper case, '-' as '_').
bool spells(std::string_view cgi, std::string_view name) noexcept {
  if (cgi.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] == '-' ? '_' : ascii::to_upper(name[i]);
    if (cgi[i] != c) return false;
  }
  return true;
}

// RFC 3875 §4.1.2, §4.1.3 and §4.1.18: the params that carry request headers. The web
// server's HTTP_CONTENT_TYPE and HTTP_CONTENT_LENGTH repeat CONTENT_TYPE and CONTENT_LENGTH.
bool is_header_param(std::string_view name) noexcept {
  if (name == "CONTENT_TYPE" || name == "CONTENT_LENGTH") return true;
  return name.size() > kHttpPrefix.size() && name.starts_with(kHttpPrefix) &&
         name != "HTTP_CONTENT_TYPE" && name != "HTTP_CONTENT_LENGTH";
}

}  // namespace

std::string_view method(std::span<const NameValue> params) noexcept {
  return protocol::value_of(params, "REQUEST_METHOD").value_or(std::string_view());
}

std::string_view raw_path(std::span<const NameValue> params) noexcept {
  const std::string_view uri =
      protocol::value_of(params, "REQUEST_URI").value_or(std::string_view());
  return uri.substr(0, uri.find_first_of("?#"));
}

std::optional<std::string> path(std::span<const NameValue> params) {
  std::string decoded;
  if (percent_decode(raw_path(params), decoded) != Error::None) return std::nullopt;
  return decoded;
}

std::string_view query(std::span<const NameValue> params) noexcept {
  return protocol::value_of(params, "QUERY_STRING").value_or(std::string_view());
}

std::optional<std::string_view> header(std::span<const NameValue> params,
                                       std::string_view name) noexcept {
  if (name.empty()) return std::nullopt;
  const bool content = spells("CONTENT_TYPE", name) || spells("CONTENT_LENGTH", name);
  for (const auto& param : params) {
    if (content) {
      if (spells(param.name, name)) return param.value;
    } else if (param.name.starts_with(kHttpPrefix) &&
               spells(param.name.substr(kHttpPrefix.size()), name)) {
      return param.value;
    }
  }
  return std::nullopt;
}

std::string Header::name() const {
  std::string out(param.starts_with(kHttpPrefix) ? param.substr(kHttpPrefix.size()) : param);
  bool word_start = true;
  for (char& c : out) {
    if (c == '_') {
      c = '-';
      word_start = true;
    } else {
      c = word_start ? ascii::to_upper(c) : ascii::to_lower(c);
      word_start = false;
    }
  }
  return out;
}

HeaderRange::Iterator::Iterator(const NameValue* current, const NameValue* end) noexcept
    : current_(current), end_(end) {
  while (current_ != end_ && !is_header_param(current_->name)) ++current_;
}

HeaderRange::Iterator& HeaderRange::Iterator::operator++() noexcept {
  *this = Iterator(current_ + 1, end_);
  return *this;
}

HeaderRange::Iterator HeaderRange::Iterator::operator++(int) noexcept {
  Iterator before = *this;
  ++*this;
  return before;
}

HeaderRange::Iterator HeaderRange::begin() const noexcept {
  return Iterator(params_.data(), params_.data() + params_.size());
}

HeaderRange::Iterator HeaderRange::end() const noexcept {
  const auto* const end = params_.data() + params_.size();
  return Iterator(end, end);
}

HeaderRange headers(std::span<const NameValue> params) noexcept { return HeaderRange(params); }

}  // namespace fcgimux::http
