// SPDX-License-Identifier: MIT
#pragma once

// Runs a handler on one Responder request the way a worker does, without a server: the
// params go into a dispatch::Exchange, the handler runs on the calling thread, and the
// FCGI_STDOUT bytes it produced come back. For testing the http helpers that take a Request
// or a Response against the real ones.

#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "observe/counters.hpp"
#include "dispatch/exchange.hpp"
#include "dispatch/notice_queue.hpp"
#include "fcgimux/handler.hpp"
#include "fcgimux/protocol.hpp"
#include "recording_output.hpp"
#include "util/logger.hpp"

namespace fcgimux::test {

using ParamList = std::vector<std::pair<std::string, std::string>>;

// Returns the request's FCGI_STDOUT content: the CGI header block, then the body.
inline std::string run_handler(const ParamList& params,
                               std::function<void(Request&, Response&)> handle) {
  struct FunctionHandler : Handler {
    std::function<void(Request&, Response&)> fn;
    void handle(Request& request, Response& response) override { fn(request, response); }
  };
  FunctionHandler handler;
  handler.fn = std::move(handle);

  dispatch::NoticeQueue notices([](void*) noexcept {}, nullptr);
  observe::Counters counters;
  const util::Logger logger(LogLevel::Error, nullptr);
  const dispatch::ExchangeContext context{.notices = notices,
                                          .counters = counters,
                                          .logger = logger,
                                          .params_budget = 64 * 1024,
                                          .body_budget = 64 * 1024,
                                          .access_log = false,
                                          .body_buffers = nullptr};
  RecordingOutput output;
  dispatch::Exchange exchange(context, 1, 1, protocol::Role::Responder, false, output);

  std::string block;
  for (const auto& [name, value] : params) protocol::append_name_value(block, name, value);
  if (exchange.append_params(std::as_bytes(std::span(block))) != protocol::Error::None ||
      exchange.finish_params() != protocol::Error::None) {
    return "<bad params>";
  }
  exchange.end_stdin();
  exchange.run(handler);

  const std::string written = output.bytes();
  std::string stdout_content;
  protocol::Decoder decoder;
  protocol::Record record;
  auto in = std::as_bytes(std::span(written));
  while (decoder.next(in, record) == protocol::DecodeStatus::Record) {
    if (record.header.type == protocol::RecordType::Stdout) {
      stdout_content.append(reinterpret_cast<const char*>(record.content.data()),
                            record.content.size());
    }
  }
  return stdout_content;
}

}  // namespace fcgimux::test
