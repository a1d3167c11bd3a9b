// SPDX-License-Identifier: MIT
// The descriptions of http::Error.

#include <string_view>

#include "fcgimux/http.hpp"

namespace fcgimux::http {

std::string_view to_string(Error error) noexcept {
  switch (error) {
    case Error::None:
      return "no error";
    case Error::BadPercentEncoding:
      return "'%' not followed by two hex digits";
    case Error::TooManyFields:
      return "too many form fields";
    case Error::FormTooLarge:
      return "form fields too large";
    case Error::TooManyCookies:
      return "too many cookies";
    case Error::BadCookieName:
      return "cookie name is not a token";
    case Error::BadCookieValue:
      return "cookie value has a byte outside cookie-octet";
    case Error::BadCookieAttribute:
      return "bad cookie attribute";
    case Error::BadBoundary:
      return "bad multipart boundary";
    case Error::MultipartPreamble:
      return "multipart body does not start with its boundary";
    case Error::BadBoundaryLine:
      return "multipart boundary line not ended by CRLF or \"--\"";
    case Error::PartHeaderTooLarge:
      return "multipart part header too large";
    case Error::BadPartHeader:
      return "bad multipart part header";
    case Error::TooManyParts:
      return "too many multipart parts";
    case Error::MultipartTruncated:
      return "multipart body ended before its final boundary";
  }
  return "unknown error";
}

}  // namespace fcgimux::http
