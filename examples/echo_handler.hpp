// SPDX-License-Identifier: MIT
#pragma once

// The echo contract, shared by examples/echo.cpp and the integration tests.
//
// Every response has status 200 and "Content-Type: text/plain" unless the query string says
// otherwise. QUERY_STRING may hold, separated by '&':
//   sleep_ms=N  wait N milliseconds before answering (less if the request is stopped);
//   size=N      answer with N bytes of 'x';
//   status=NNN  answer with that HTTP status;
//   crash=segv  die by SIGSEGV (crash=abort: by SIGABRT), taking the process along: for a
//               server of several processes (Config::processes), whose supervisor replaces it.
// Without size=, a request with a body is answered with that body, byte for byte, and one
// without a body with its params, one "NAME=VALUE\n" line each, sorted by name bytewise.
// Every role is served: an Authorizer is answered like a Responder without a body (200 and
// the params), a Filter with its body followed by its FCGI_DATA bytes.

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/handler.hpp"

namespace echo {

// The value of `key` in a query string such as "a=1&size=42".
inline std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    const std::size_t equals = pair.find('=');
    if (equals != std::string_view::npos && pair.substr(0, equals) == key) {
      return pair.substr(equals + 1);
    }
  }
  return std::nullopt;
}

// The value of `key` in a query string, when it is a decimal number.
inline std::optional<std::size_t> query_number(std::string_view query, std::string_view key) {
  if (const std::optional<std::string_view> digits = query_value(query, key)) {
    std::size_t number = 0;
    const char* const last = digits->data() + digits->size();
    const auto [end, error] = std::from_chars(digits->data(), last, number);
    if (error != std::errc{} || end != last) return std::nullopt;
    return number;
  }
  return std::nullopt;
}

// Answers as the file comment says.
// Threading: Immutable after construction; safe to share.
class EchoHandler : public fcgimux::Handler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    const std::string_view query = request.param("QUERY_STRING").value_or("");
    if (const auto crash = query_value(query, "crash")) {
      if (*crash == "segv") std::raise(SIGSEGV);
      if (*crash == "abort") std::abort();
    }
    if (const auto sleep_ms = query_number(query, "sleep_ms")) {
      std::mutex mutex;
      std::condition_variable_any never_notified;
      std::unique_lock lock(mutex);
      never_notified.wait_for(lock, request.stop_token(), std::chrono::milliseconds(*sleep_ms),
                              [] { return false; });
    }
    if (const auto status = query_number(query, "status")) {
      // Past int's range, a value the library refuses rather than one wrapped into range.
      response.status(static_cast<int>(std::min<std::uint64_t>(*status, 1'000)));
    }
    response.header("Content-Type", "text/plain");

    std::array<char, kChunkSize> chunk;
    if (const auto size = query_number(query, "size")) {
      chunk.fill('x');
      for (std::size_t left = *size; left > 0; left -= std::min(left, chunk.size())) {
        response.write(std::string_view(chunk.data(), std::min(left, chunk.size())));
      }
      return;
    }
    if (request.role() == fcgimux::Role::Filter) {
      for (std::size_t n; (n = request.read(chunk)) > 0;) response.write({chunk.data(), n});
      const auto data = std::as_writable_bytes(std::span(chunk));
      for (std::size_t n; (n = request.read_data(data)) > 0;) response.write(data.first(n));
      return;
    }
    std::size_t count = request.read(chunk);
    if (count == 0) {
      write_params(request, response);
      return;
    }
    for (; count > 0; count = request.read(chunk)) {
      response.write(std::string_view(chunk.data(), count));
    }
  }

 private:
  static constexpr std::size_t kChunkSize = 16 * 1024;

  static void write_params(const fcgimux::Request& request, fcgimux::Response& response) {
    std::vector<fcgimux::Param> params(request.params().begin(), request.params().end());
    std::stable_sort(params.begin(), params.end(),
                     [](const auto& a, const auto& b) { return a.name < b.name; });
    std::string listing;
    for (const auto& [name, value] : params) {
      listing.append(name).append("=").append(value).append("\n");
    }
    response.write(listing);
  }
};

}  // namespace echo
