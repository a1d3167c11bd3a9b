// SPDX-License-Identifier: MIT
#include "dispatch/exchange.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <utility>

#include "dispatch/pool.hpp"
#include "dispatch/stream_state.hpp"
#include "dispatch/worker_pool.hpp"
#include "http/ascii.hpp"
#include "http/server_response.hpp"
#include "observe/access_log.hpp"

namespace fcgimux::dispatch {

using observe::Counters;

namespace {

using protocol::kHeaderSize;
using protocol::kMaxAlignedContentLength;

std::string_view as_chars(std::span<const std::byte> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool has_line_break(std::string_view text) noexcept {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace

namespace {

// What a retired exchange keeps of a buffer: enough for a small request's params or a small
// response, not a large one's.
constexpr std::size_t kKeptBuffer = 4096;

void trim(std::string& buffer) {
  buffer.clear();
  if (buffer.capacity() > kKeptBuffer) buffer.shrink_to_fit();
}

}  // namespace

Exchange::Exchange(const ExchangeContext& context, std::uint64_t connection_id, std::uint16_t id,
                   protocol::Role role, bool keep_conn, Output& output)
    : context_(context),
      connection_id_(connection_id),
      id_(id),
      role_(role),
      keep_conn_(keep_conn),
      output_(&output),
      params_block_(context.params_budget) {
  // FastCGI 1.0 §6.3: an Authorizer decides from the params alone (the web server sends no
  // CONTENT_LENGTH); its stdin reads as empty, and any FCGI_STDIN a web server sends is dropped.
  if (role_ == protocol::Role::Authorizer) stdin_.ended = true;
}

Exchange::~Exchange() { retire(); }

void Exchange::reuse(std::uint64_t connection_id, std::uint16_t id, protocol::Role role,
                     bool keep_conn, Output& output) {
  connection_id_ = connection_id;
  id_ = id;
  role_ = role;
  keep_conn_ = keep_conn;
  output_ = &output;
  params_ended = false;
  admitted = false;
  pool = nullptr;
  params_block_.clear();
  params_.clear();
  for (Stream* stream : {&stdin_, &data_}) {
    stream->bytes.clear();
    stream->read_pos = 0;
    stream->ended = false;
    stream->holds_reader = false;
  }
  if (role_ == protocol::Role::Authorizer) stdin_.ended = true;
  // A stop source once stopped stays stopped: only then is a new one made, or when a stream's
  // handle may still hold a token of it, which must not fire for this request.
  if (stop_.stop_requested() || detached()) stop_ = std::stop_source();
  holds_slot_.store(false, std::memory_order_relaxed);
  stop_reason_.store(StopReason::None, std::memory_order_relaxed);
  ended_.store(false, std::memory_order_relaxed);
  detached_.store(false, std::memory_order_relaxed);
  stream_holds_.store(0, std::memory_order_relaxed);
  chunk_.clear();
  status_ = 200;
  headers_.clear();
  headers_sent_ = false;
  length_set_ = false;
  header_end_ = 0;
  output_started_ = false;
  status_refused_ = false;
  stderr_used_ = false;
  app_status_ = 0;
  body_bytes_ = 0;
  response_closed_ = false;
  stream_refused_ = false;
}

void Exchange::retire() noexcept {
  // Body bytes nobody will read (the handler returned early, or never ran).
  Counters::sub(context_.counters.input_buffered, stdin_.unread() + data_.unread());
  for (Stream* stream : {&stdin_, &data_}) {
    if (context_.body_buffers != nullptr) context_.body_buffers->give(std::move(stream->bytes));
    trim(stream->bytes);
    stream->read_pos = 0;
  }
  trim(chunk_);
  trim(headers_);
  if (params_block_.bytes().size() > kKeptBuffer) {
    params_block_ = protocol::NameValueBlock(context_.params_budget);
  }
  if (params_.capacity() > kKeptBuffer / sizeof(protocol::NameValue)) params_ = {};
}

protocol::Error Exchange::append_params(std::span<const std::byte> piece) {
  return params_block_.append(piece);
}

protocol::Error Exchange::finish_params() {
  const protocol::Error error = params_block_.parse(params_);
  // Each pair costs two views on top of its bytes, 32 bytes for a pair that may take 2 on the
  // wire: a block of tiny pairs would hold many times its size. The views count against the
  // same limit, so that max_params_bytes bounds a request's params in memory, not just on the
  // wire.
  if (error == protocol::Error::None &&
      params_.size() > context_.params_budget / sizeof(protocol::NameValue)) {
    params_.clear();
    return protocol::Error::NameValueTooLarge;
  }
  return error;
}

bool Exchange::push_stdin(std::span<const std::byte> bytes) { return push(stdin_, bytes); }
bool Exchange::push_data(std::span<const std::byte> bytes) { return push(data_, bytes); }
void Exchange::end_stdin() { end(stdin_); }
void Exchange::end_data() { end(data_); }

bool Exchange::stdin_ended() const {
  const std::lock_guard lock(mutex_);
  return stdin_.ended;
}

bool Exchange::data_ended() const {
  const std::lock_guard lock(mutex_);
  return data_.ended;
}

bool Exchange::holds_reader() const {
  const std::lock_guard lock(mutex_);
  return stdin_.holds_reader || data_.holds_reader;
}

bool Exchange::push(Stream& stream, std::span<const std::byte> bytes) {
  bool filled = false;
  {
    const std::lock_guard lock(mutex_);
    if (stream.ended || bytes.empty()) return false;
    // Reclaim the read part before growing: the buffer then never holds more than the budget
    // plus one record.
    if (stream.read_pos == stream.bytes.size()) {
      stream.bytes.clear();
      stream.read_pos = 0;
      // A small buffer (the first push, or a body that stayed small) swaps for a pooled one.
      if (stream.bytes.capacity() < BufferPool::kMinCapacity && context_.body_buffers != nullptr) {
        stream.bytes = context_.body_buffers->take();
      }
    } else if (stream.bytes.size() + bytes.size() > stream.bytes.capacity()) {
      stream.bytes.erase(0, stream.read_pos);
      stream.read_pos = 0;
    }
    stream.bytes.append(as_chars(bytes));
    // Counted under the lock, so the reader's subtraction can never come first.
    Counters::add(context_.counters.input_buffered, bytes.size());
    if (!stream.holds_reader && stream.unread() >= context_.body_budget) {
      stream.holds_reader = true;
      filled = true;
    }
  }
  readable_.notify_one();
  return filled;
}

void Exchange::end(Stream& stream) {
  {
    const std::lock_guard lock(mutex_);
    stream.ended = true;
  }
  readable_.notify_one();
}

std::size_t Exchange::read(Stream& stream, std::span<std::byte> into) {
  if (into.empty()) return 0;
  const std::stop_token stop = stop_.get_token();
  std::size_t n = 0;
  bool resume = false;
  {
    std::unique_lock lock(mutex_);
    readable_.wait(lock, stop, [&] { return stream.unread() > 0 || stream.ended; });
    if (stop.stop_requested()) return 0;
    n = std::min(into.size(), stream.unread());
    std::memcpy(into.data(), stream.bytes.data() + stream.read_pos, n);
    stream.read_pos += n;
    // Resume reading at half the budget, not at once, so that a handler reading in small
    // pieces does not toggle the socket on every read.
    if (stream.holds_reader && stream.unread() <= context_.body_budget / 2) {
      stream.holds_reader = false;
      resume = true;
    }
  }
  Counters::sub(context_.counters.input_buffered, n);
  if (resume) context_.notices.push({Notice::Kind::BodyRead, this}, true);
  return n;
}

void Exchange::take_slot() noexcept {
  holds_slot_.store(true, std::memory_order_relaxed);
  Counters::add(pool->counters.in_flight);
}

bool Exchange::release_slot() noexcept {
  if (!holds_slot_.exchange(false, std::memory_order_relaxed)) return false;
  Counters::sub(pool->counters.in_flight);
  return true;
}

void Exchange::stop(StopReason reason) noexcept {
  StopReason none = StopReason::None;
  stop_reason_.compare_exchange_strong(none, reason, std::memory_order_relaxed);
  stop_.request_stop();
}

void Exchange::set_status(int code) noexcept {
  if (response_closed_ || headers_sent_) return;
  // RFC 9110 §15: a status code is three digits. Anything else would go out as a malformed
  // Status header; the handler has a bug, so the client gets a 500 and the log says why.
  if (code < 100 || code > 999) {
    if (!std::exchange(status_refused_, true)) {
      context_.logger.log(LogLevel::Warning,
                          "conn {} req {}: status {} refused (not 100-999): answering 500",
                          connection_id_, id_, code);
    }
    code = 500;
  }
  status_ = code;
}

void Exchange::add_header(std::string_view name, std::string_view value) {
  if (response_closed_ || headers_sent_) return;
  if (name.empty() || has_line_break(name) || has_line_break(value) ||
      name.find(':') != std::string_view::npos) {
    context_.logger.log(LogLevel::Warning, "conn {} req {}: header refused: bad name or value",
                        connection_id_, id_);
    return;
  }
  if (http::ascii::iequals(name, "Content-Length") ||
      http::ascii::iequals(name, "Transfer-Encoding")) {
    length_set_ = true;
  }
  headers_.append(name).append(": ").append(value).append("\r\n");
}

void Exchange::send_headers() {
  if (headers_sent_) return;
  headers_sent_ = true;
  if (chunk_.empty()) chunk_.assign(kHeaderSize, '\0');
  chunk_.append("Status: ");
  http::append_status_line(chunk_, status_);
  chunk_.append("\r\n").append(headers_);
  header_end_ = chunk_.size();
  chunk_.append("\r\n");
  headers_.clear();
}

bool Exchange::wants_content_length() const noexcept {
  // RFC 9110 §8.6: no Content-Length on 1xx and 204, and on 304 and HEAD it would have to be
  // the length of a body not sent here. An Authorizer's 200 is not a response to the client:
  // the web server may pass its headers on to the real one.
  if (length_set_ || role_ == protocol::Role::Authorizer) return false;
  if (status_ < 200 || status_ == 204 || status_ == 304) return false;
  return observe::param(params_, "REQUEST_METHOD") != "HEAD";
}

void Exchange::write(std::span<const std::byte> bytes) {
  if (stopped() || response_closed_) return;
  send_headers();
  body_bytes_ += bytes.size();
  constexpr std::size_t kFull = kHeaderSize + kMaxAlignedContentLength;
  while (!bytes.empty()) {
    // A header block larger than a record goes out before any body byte joins it.
    if (chunk_.size() >= kFull && !send_chunk()) return;
    const std::size_t take = std::min(kFull - chunk_.size(), bytes.size());
    chunk_.append(as_chars(bytes.first(take)));
    bytes = bytes.subspan(take);
    if (chunk_.size() == kFull && !send_chunk()) return;
  }
}

void Exchange::flush() {
  if (stopped() || response_closed_) return;
  send_headers();
  if (chunk_.size() > kHeaderSize) send_chunk();
}

void Exchange::seal_chunk() {
  const std::size_t length = chunk_.size() - kHeaderSize;
  if (length > kMaxAlignedContentLength) {
    std::string records;
    protocol::append_records(records, protocol::RecordType::Stdout, id_,
                             std::string_view(chunk_).substr(kHeaderSize));
    chunk_ = std::move(records);
    return;
  }
  const protocol::Header header{.type = protocol::RecordType::Stdout,
                                .request_id = id_,
                                .content_length = static_cast<std::uint16_t>(length),
                                .padding_length = protocol::padding_for(length)};
  protocol::encode_header(header, std::span<std::byte, kHeaderSize>(
                                      reinterpret_cast<std::byte*>(chunk_.data()), kHeaderSize));
  chunk_.append(header.padding_length, '\0');
}

bool Exchange::send_chunk() {
  header_end_ = 0;
  seal_chunk();
  const bool sent = send_records(chunk_);
  // The buffer is kept for the next record: the steady path allocates nothing.
  chunk_.assign(kHeaderSize, '\0');
  return sent;
}

bool Exchange::send_records(std::string_view records) {
  switch (output_->write(records, stop_.get_token())) {
    case Output::Written::Dropped:
      return false;
    case Output::Written::NeedsLoop:
      context_.notices.push({Notice::Kind::Output, this}, true);
      break;
    case Output::Written::Done:
      break;
  }
  output_started_ = true;
  return true;
}

void Exchange::log_error(std::string_view line) {
  if (stopped() || response_closed_ || line.empty()) return;
  stderr_used_ = true;
  std::string text(line);
  if (text.back() != '\n') text.push_back('\n');
  std::string records;
  protocol::append_records(records, protocol::RecordType::Stderr, id_, text);
  send_records(records);
}

void Exchange::answer_failure(LogLevel level, int code, std::string_view what,
                              std::string_view detail) noexcept {
  if (context_.logger.enabled(level)) {
    try {
      context_.logger.log(level, "conn {} req {}: {} {}: {}: {}", connection_id_, id_,
                          observe::logfmt_value(observe::param(params_, "REQUEST_METHOD")),
                          observe::logfmt_value(observe::request_uri(params_)), what, detail);
    } catch (...) {
      // Out of memory while naming the request: the answer below still goes out.
    }
  }
  answer_status(code);
}

void Exchange::answer_status(int code) noexcept {
  // After detach the output state is the stream's: a handler that threw then is only logged.
  if (response_closed_ || headers_sent_ || stopped()) return;
  try {
    // The whole response is the server's: it goes out as the handler's header block would.
    status_ = code;
    headers_sent_ = true;
    chunk_.assign(kHeaderSize, '\0');
    chunk_.append(http::server_response(code));
  } catch (...) {
    // Out of memory while answering: the request still ends, without a body.
  }
}

void Exchange::run(Handler& handler, const std::shared_ptr<SharedState>* owner) noexcept {
  owner_ = owner;
  Counters& counters = context_.counters;
  Counters::sub(counters.requests_queued);
  Counters::raise_max(counters.requests_running_max, Counters::add(counters.requests_running));
  observe::PoolCounters* figures =
      pool != nullptr && pool->own_figures ? &pool->counters : nullptr;
  if (figures != nullptr) {
    Counters::sub(figures->queued);
    Counters::raise_max(figures->running_max, Counters::add(figures->running));
  }
  const std::chrono::milliseconds queue_timeout =
      pool != nullptr ? pool->queue_timeout : std::chrono::milliseconds(0);
  bool failed = false;
  bool too_large = false;
  const auto started = std::chrono::steady_clock::now();
  started_ = started;
  const auto waited = started - admitted_at;
  if (stopped()) {
    // Cancelled while queued but after the I/O thread could take it back (a deadline, or an
    // abort racing the worker's pop): nothing to run, only the end to send.
  } else if (queue_timeout.count() > 0 && waited > queue_timeout) {
    // mod_wsgi's queue timeout: after this long the client has most likely given up, and
    // running the request would only delay the ones behind it.
    context_.logger.log(LogLevel::Warning,
                        "conn {} req {}: waited {} ms in the queue: answered 503", connection_id_,
                        id_, std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
    failed = true;
    answer_status(503);
  } else {
    Request request(*this);
    Response response(*this);
    try {
      handler.handle(request, response);
    } catch (const LimitExceeded& e) {
      // The client sent more than the handler takes: its error, not the handler's.
      too_large = true;
      answer_failure(LogLevel::Warning, 413, "body too large for the handler", e.what());
    } catch (const std::exception& e) {
      failed = true;
      answer_failure(LogLevel::Error, 500, "handler threw", e.what());
    } catch (...) {
      failed = true;
      answer_failure(LogLevel::Error, 500, "handler threw",
                     "an exception not derived from std::exception");
    }
  }
  Counters::sub(counters.requests_running);
  if (figures != nullptr) Counters::sub(figures->running);
  owner_ = nullptr;
  if (detached()) {
    // The stream's handle may end the request from here on, on its own thread.
    release_stream_hold();
    return;
  }
  // A refused detach was counted as overloaded.
  if (!stream_refused_) {
    Counters::add(stopped()   ? counters.requests_aborted
                  : too_large ? counters.requests_body_too_large
                  : failed    ? counters.requests_failed
                              : counters.requests_completed);
  }
  // Formatted before finish() (which may be the last touch of this exchange), written after,
  // so that the sink never delays END_REQUEST.
  std::string access;
  if (context_.access_log) {
    try {
      access = access_line(started, waited,
                           stopped()   ? "aborted"
                           : too_large ? "too_large"
                           : failed    ? "error"
                                       : "ok");
    } catch (...) {
      // Out of memory: this request goes unlogged.
    }
  }
  const util::Logger& logger = context_.logger;  // outlives this exchange, which finish() may end
  finish();
  if (!access.empty()) logger.emit(LogLevel::Info, access);
}

std::string Exchange::access_line(std::chrono::steady_clock::time_point started,
                                  std::chrono::steady_clock::duration waited,
                                  std::string_view result) const {
  const std::string uri = observe::request_uri(params_);
  return observe::access_line(
      observe::AccessEntry{.method = observe::param(params_, "REQUEST_METHOD"),
                           .uri = uri,
                           .status = status_,
                           .bytes = body_bytes_,
                           .duration = std::chrono::steady_clock::now() - started,
                           .queue_wait = waited,
                           .result = result,
                           .reason = {},
                           .connection_id = connection_id_,
                           .request_id = id_,
                           .pool = pool != nullptr && pool->own_figures ? pool->name : ""});
}

void Exchange::finish() noexcept {
  // FastCGI 1.0 §6.2: the Responder ends its streams with empty records, then ends the
  // request. The closing records always go out, even after a stop: END_REQUEST is what tells
  // the client the id is free again. (Only allocation can throw here; noexcept then ends the
  // process, as there is no way to finish the request.)
  // The handler is done: its slot goes to the next request before the client can see the
  // end and send one.
  release_slot();
  // The last body record waits for room under the budget as every other one did; the closing
  // records then go with it, without waiting. (A stream's writes never wait; its closing
  // records, a few dozen bytes, pass the budget as one write would.)
  if (!stopped() && !detached() && (!headers_sent_ || chunk_.size() > kHeaderSize)) {
    output_->wait_for_room(stop_.get_token());
  }
  const StopReason reason = stop_reason_.load(std::memory_order_relaxed);
  if (reason == StopReason::Deadline || reason == StopReason::Shutdown) {
    if (output_started_) {
      // Part of the response went out and the rest never will: ending it with
      // FCGI_REQUEST_COMPLETE would pass a short response off as whole. The connection closes
      // instead, without an END_REQUEST for it, and the web server reports the error.
      ended_.store(true, std::memory_order_release);
      context_.notices.push({Notice::Kind::Cut, this}, true);
      return;
    }
    // Nothing of the handler's response went out: the client gets a whole one, a 503.
    status_ = 503;
    chunk_.clear();
    protocol::append_records(chunk_, protocol::RecordType::Stdout, id_, http::server_response(503));
  } else if (!stopped()) {
    send_headers();
    // The whole response is here, so its length is known: a web server then need not send it
    // chunked (nginx does so for a response without Content-Length).
    if (header_end_ != 0 && wants_content_length()) {
      // Formatted on the stack: the steady path of a small response allocates nothing.
      char line[48];
      const auto formatted =
          fmt::format_to_n(line, sizeof line, "Content-Length: {}\r\n", body_bytes_);
      chunk_.insert(header_end_, line, formatted.size);
    }
    if (chunk_.size() > kHeaderSize) {
      seal_chunk();
    } else {
      chunk_.clear();
    }
  } else {
    chunk_.clear();
  }
  protocol::append_records(chunk_, protocol::RecordType::Stdout, id_, std::string_view());
  if (stderr_used_) {
    protocol::append_records(chunk_, protocol::RecordType::Stderr, id_, std::string_view());
  }
  protocol::append_end_request(chunk_, id_, app_status_, protocol::ProtocolStatus::RequestComplete);
  // Ended before its END_REQUEST can reach the client, which may then reuse the id at once.
  ended_.store(true, std::memory_order_release);
  const bool loop_owed = output_->write_last(chunk_) == Output::Written::NeedsLoop;
  // The I/O thread only has to take the request off its table, which it does whenever it next
  // runs: no wake-up, unless the output needs it or the connection closes after this request.
  context_.notices.push({Notice::Kind::Ended, this}, loop_owed || !keep_conn_);
}

}  // namespace fcgimux::dispatch

namespace fcgimux::dispatch {

bool Exchange::wait_for(std::chrono::steady_clock::duration duration) {
  const std::stop_token stop = stop_.get_token();
  std::unique_lock lock(mutex_);
  // Body pushes notify readable_ too: the predicate keeps the wait going through them.
  readable_.wait_for(lock, stop, duration, [] { return false; });
  return !stop.stop_requested();
}

bool Exchange::take_stream_slot() noexcept {
  std::atomic<std::uint64_t>& open = context_.counters.streams_open;
  std::uint64_t seen = open.load(std::memory_order_relaxed);
  do {
    if (seen >= context_.max_streams) return false;
  } while (!open.compare_exchange_weak(seen, seen + 1, std::memory_order_relaxed));
  return true;
}

ResponseStream Exchange::detach() {
  if (response_closed_ || stopped()) return {};
  // Made first: when it cannot be, nothing has changed.
  auto state = std::make_unique<StreamState>(*this, owner_ != nullptr ? *owner_ : nullptr,
                                             context_.counters, context_.logger);
  if (!take_stream_slot()) {
    context_.logger.log(LogLevel::Warning,
                        "conn {} req {}: refused: overloaded ({} streams open)", connection_id_,
                        id_, context_.max_streams);
    Counters::add(context_.counters.requests_overloaded);
    stream_refused_ = true;
    answer_status(503);
    response_closed_ = true;
    return {};
  }
  response_closed_ = true;
  // The worker and the handle: see the file comment.
  stream_holds_.store(2, std::memory_order_relaxed);
  detached_.store(true, std::memory_order_relaxed);
  // Out of max_requests: the request no longer keeps ordinary ones waiting.
  release_slot();
  return ResponseStream(std::move(state));
}

ResponseStream::Written Exchange::stream_write(std::span<const std::byte> bytes) {
  using Written = ResponseStream::Written;
  if (stopped()) return Written::Closed;
  if (headers_sent_ && chunk_.size() == kHeaderSize && bytes.empty()) return Written::Queued;
  if (!output_->has_room()) return Written::WouldBlock;
  send_headers();
  header_end_ = 0;
  body_bytes_ += bytes.size();
  chunk_.append(as_chars(bytes));
  seal_chunk();
  const Output::Written written = output_->write_last(chunk_);
  // The buffer is kept for the next write.
  chunk_.assign(kHeaderSize, '\0');
  if (written == Output::Written::Dropped) return Written::Closed;
  if (written == Output::Written::NeedsLoop) context_.notices.push({Notice::Kind::Output, this}, true);
  output_started_ = true;
  return Written::Queued;
}

void Exchange::release_stream_hold() noexcept {
  // The last holder sees every write the others made to the exchange.
  if (stream_holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) end_stream();
}

void Exchange::end_stream() noexcept {
  Counters& counters = context_.counters;
  Counters::sub(counters.streams_open);
  Counters::add(stopped() ? counters.requests_aborted : counters.requests_completed);
  std::string access;
  if (context_.access_log) {
    try {
      access = access_line(started_, started_ - admitted_at, stopped() ? "aborted" : "ok");
    } catch (...) {
      // Out of memory: this request goes unlogged.
    }
  }
  const util::Logger& logger = context_.logger;  // outlives this exchange, which finish() may end
  finish();
  if (!access.empty()) logger.emit(LogLevel::Info, access);
}

}  // namespace fcgimux::dispatch
