// SPDX-License-Identifier: MIT
#pragma once

// The access log's line: one per request, in logfmt (key=value pairs, values with spaces,
// quotes or other bytes that need it quoted and escaped), so that log tools parse it:
//
//   access method=GET uri="/echo?size=10" status=200 bytes=10 duration_ms=0.412 queue_ms=0.031
//   result=ok conn=3 req=1
//
// The line carries no time of its own: the log sink stamps every line (the default one with
// the time it writes it), and an access line is written as its request ends, so the request
// began duration_ms plus queue_ms before that. duration_ms is how long its handler ran;
// queue_ms how long it waited for a worker; bytes the body bytes of the response (the header
// block not counted); result ok, error (the handler threw), too_large (the handler's
// read_all() found the body past its limit: 413), aborted (cancelled; its status then is the
// one set when it stopped, which may never have gone out), or refused (answered by the server
// before any handler ran), which is followed by reason=overload, body_too_large,
// params_too_large or bad_params. A server with named pools (Config::pools) ends each line
// with pool=NAME, the pool that ran the request (or refused it as overloaded); one without
// leaves the field out.
// Pure: no I/O, no clock. Threading: any thread.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fcgimux/protocol.hpp"

namespace fcgimux::observe {

// The value of the param `name`; empty when absent (protocol::value_of(), for log fields).
std::string_view param(std::span<const protocol::NameValue> params, std::string_view name) noexcept;
// The request's URI as a web server sent it: REQUEST_URI when present, else SCRIPT_NAME,
// PATH_INFO and "?QUERY_STRING" (when not empty).
std::string request_uri(std::span<const protocol::NameValue> params);

struct AccessEntry {
  std::string_view method;
  std::string_view uri;
  int status = 0;
  std::uint64_t bytes = 0;
  std::chrono::nanoseconds duration{0};
  std::chrono::nanoseconds queue_wait{0};
  std::string_view result;
  std::string_view reason;  // empty: no reason= field
  std::uint64_t connection_id = 0;
  std::uint16_t request_id = 0;
  std::string_view pool{};  // empty: no pool= field
};

std::string access_line(const AccessEntry& entry);

// `value` as a logfmt value: as is when it is a non-empty run of printable ASCII without
// spaces, quotes, backslashes or '='; else in double quotes, with \" \\ and \xHH escapes.
std::string logfmt_value(std::string_view value);

}  // namespace fcgimux::observe
