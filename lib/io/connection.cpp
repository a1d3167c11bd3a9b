// SPDX-License-Identifier: MIT
#include "io/connection.hpp"

#include <fmt/format.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <optional>
#include <utility>

#include "dispatch/pool.hpp"
#include "http/server_response.hpp"
#include "io/server_core.hpp"
#include "observe/access_log.hpp"

namespace fcgimux::io {

namespace {

using dispatch::Exchange;
using observe::Counters;
using protocol::ProtocolStatus;
using protocol::RecordType;

std::span<const std::byte> as_bytes(std::string_view text) noexcept {
  return std::as_bytes(std::span(text));
}

}  // namespace

Connection::Connection(ServerCore& server, std::uint64_t id)
    : server_(server),
      id_(id),
      idle_since_(uv_now(&server.loop)),
      output_(std::make_unique<ConnectionOutput>(*this, server.config.connection_output_budget,
                                                 server.pieces, server.counters)) {}

Connection& Connection::of(const Exchange& exchange) noexcept {
  return static_cast<Connection&>(static_cast<ConnectionOutput&>(exchange.output()).transport());
}

Connection::~Connection() {
  // Only reached once closed and without exchanges (free_if_done), or when the server is torn
  // down after its loop ended; either way no worker holds an exchange of ours.
  for (Exchange* exchange : requests_) delete exchange;
}

std::uint64_t Connection::now() const noexcept { return uv_now(&server_.loop); }

// --- reading -----------------------------------------------------------------------------------

void Connection::received(std::span<const std::byte> bytes) noexcept {
  server_.assert_in_loop_thread();
  Counters::add(server_.counters.bytes_in, bytes.size());
  if (state_ != State::Open) return;
  if (const std::span<const std::byte> rest = consume(bytes); !rest.empty()) {
    wait_for_output(rest);
  }
  flush();
}

void Connection::read_ended(int error) noexcept {
  server_.assert_in_loop_thread();
  if (error != 0) return close(LogLevel::Info, uv_strerror(error));
  const bool mid_request =
      !decoder_.at_record_boundary() || std::any_of(requests_.begin(), requests_.end(),
                                                    [](const Exchange* e) { return !e->admitted; });
  close(mid_request ? LogLevel::Info : LogLevel::Debug,
        mid_request ? "peer closed in the middle of a request" : "peer closed");
}

std::span<const std::byte> Connection::consume(std::span<const std::byte> bytes) noexcept {
  try {
    protocol::Record record;
    while (state_ == State::Open) {
      const protocol::DecodeStatus status = decoder_.next(bytes, record);
      if (status == protocol::DecodeStatus::NeedMore) break;
      if (status == protocol::DecodeStatus::Error) {
        close(LogLevel::Warning, protocol::to_string(decoder_.error()));
        break;
      }
      replied_ = false;
      handle_record(record);
      // Every byte queued counts, replies of the I/O thread's own included: a reply that
      // finds the output over its budget stops the reading until the peer reads. Workers'
      // bytes alone do not: their writers wait instead, and the records a peer sends while
      // it does not read (an abort, the next request's body) must still arrive.
      if (replied_ && output_->over_budget()) return bytes;
    }
  } catch (const std::exception& e) {
    close(LogLevel::Error, e.what());
  }
  return {};
}

void Connection::handle_record(const protocol::Record& record) {
  const protocol::Header& header = record.header;
  // FastCGI 1.0 §3.3: records on the null request id are management records.
  if (header.request_id == protocol::kNullRequestId) return handle_management(record);
  switch (header.type) {
    case RecordType::BeginRequest:
      return handle_begin(record);
    case RecordType::AbortRequest:
      return handle_abort(header.request_id);
    case RecordType::Params:
    case RecordType::Stdin:
    case RecordType::Data:
      break;
    default:
      return close(
          LogLevel::Warning,
          fmt::format("record type {} ({}) on request {}", static_cast<unsigned>(header.type),
                      protocol::to_string(header.type), header.request_id));
  }
  // FastCGI 1.0 §3.3: records for a request id that is not active are ignored (a request the
  // server already answered may still be sending its body).
  Exchange* exchange = find(header.request_id);
  if (exchange == nullptr) return;
  if (header.type == RecordType::Params) return handle_params(*exchange, record.content);
  handle_body(*exchange, record);
}

void Connection::handle_management(const protocol::Record& record) {
  // FastCGI 1.0 §4.1: FCGI_GET_VALUES asks for variables; answer those we know, leave out the
  // rest. §4.2: any other management type is answered FCGI_UNKNOWN_TYPE.
  if (record.header.type != RecordType::GetValues) {
    std::string answer;
    protocol::append_unknown_type(answer, static_cast<std::uint8_t>(record.header.type));
    return send_reply(answer);
  }
  std::vector<protocol::NameValue> asked;
  const std::string_view content(reinterpret_cast<const char*>(record.content.data()),
                                 record.content.size());
  if (const protocol::Error error = protocol::parse_name_values(content, asked);
      error != protocol::Error::None) {
    return close(LogLevel::Warning, fmt::format("FCGI_GET_VALUES: {}", protocol::to_string(error)));
  }
  const Config& config = server_.config;
  const std::string max_conns = std::to_string(config.max_connections);
  // What one connection may carry: every pool's admission bound, as its requests may go to
  // any pool (Config::max_requests_per_connection says what a pool split means for it).
  std::size_t admissible = config.max_requests;
  for (const Pool& pool : config.pools) admissible += pool.max_requests;
  const std::string max_reqs = std::to_string(
      config.multiplex ? std::min(admissible, config.max_requests_per_connection) : admissible);
  const protocol::NameValue known[] = {{protocol::kMaxConns, max_conns},
                                       {protocol::kMaxReqs, max_reqs},
                                       {protocol::kMpxsConns, config.multiplex ? "1" : "0"}};
  // Each known name is answered once, in the order first asked, however often a query repeats
  // it: the answer then always fits in one record.
  std::vector<protocol::NameValue> answers;
  for (const protocol::NameValue& pair : asked) {
    for (const protocol::NameValue& answer : known) {
      if (pair.name != answer.name) continue;
      if (std::none_of(answers.begin(), answers.end(),
                       [&](const protocol::NameValue& a) { return a.name == answer.name; })) {
        answers.push_back(answer);
      }
    }
  }
  std::string answer;
  protocol::append_get_values_result(answer, answers);
  send_reply(answer);
}

void Connection::handle_begin(const protocol::Record& record) {
  const std::uint16_t request_id = record.header.request_id;
  protocol::BeginRequestBody body;
  if (protocol::parse_begin_request(record.content, body) != protocol::Error::None) {
    return close(LogLevel::Warning,
                 fmt::format("FCGI_BEGIN_REQUEST for request {} has {} bytes, not 8", request_id,
                             record.content.size()));
  }
  if (find(request_id) != nullptr) {
    return close(LogLevel::Warning,
                 fmt::format("FCGI_BEGIN_REQUEST for request {}, which is active", request_id));
  }
  const bool keep_conn = (body.flags & protocol::kKeepConn) != 0;
  if (!keep_conn) close_when_idle_ = true;
  const Config& config = server_.config;
  if (std::find(config.roles.begin(), config.roles.end(), static_cast<protocol::Role>(body.role)) ==
      config.roles.end()) {
    // FastCGI 1.0 §5.5: a role the application does not play is FCGI_UNKNOWN_ROLE.
    server_.logger.log(LogLevel::Warning, "conn {} req {}: refused: role {} not served", id_,
                       request_id, body.role);
    Counters::add(server_.counters.requests_refused);
    reply(request_id, ProtocolStatus::UnknownRole);
    return close_if_done();
  }
  if (const std::size_t live = live_requests();
      live > 0 && (!config.multiplex || live >= config.max_requests_per_connection)) {
    // FastCGI 1.0 §5.5: FCGI_CANT_MPX_CONN for a request on a connection that cannot take
    // another one.
    server_.logger.log(LogLevel::Warning,
                       "conn {} req {}: refused: {} requests in flight on this connection", id_,
                       request_id, live);
    Counters::add(server_.counters.requests_refused);
    reply(request_id, ProtocolStatus::CantMpxConn);
    return close_if_done();
  }
  // Room for a few: a request may arrive while those before it, ended, await their notices.
  if (requests_.capacity() == 0) requests_.reserve(4);
  requests_.push_back(server_.make_exchange(id_, request_id, static_cast<protocol::Role>(body.role),
                                            keep_conn, *output_));
}

void Connection::handle_abort(std::uint16_t request_id) {
  Exchange* exchange = find(request_id);
  if (exchange == nullptr || exchange->stopped()) return;
  server_.logger.log(LogLevel::Debug, "conn {} req {}: aborted by the client", id_, request_id);
  // FastCGI 1.0 §5.4: the application answers FCGI_ABORT_REQUEST with FCGI_END_REQUEST: at
  // once for a request no handler runs, when the handler returns for a running one.
  if (!exchange->admitted || server_.take_back(*exchange)) {
    reply(request_id, ProtocolStatus::RequestComplete);
    remove(*exchange);
    return close_if_done();
  }
  exchange->stop(dispatch::StopReason::ClientAbort);
}

void Connection::handle_params(Exchange& exchange, std::span<const std::byte> content) {
  if (exchange.admitted) {
    return close(LogLevel::Warning,
                 fmt::format("FCGI_PARAMS for request {} after their end", exchange.id()));
  }
  const std::uint16_t request_id = exchange.id();
  if (!content.empty()) {
    // Params are bounded three ways: each request's by max_params_bytes (in the exchange);
    // those of a connection's requests still sending theirs together by the same; those of
    // every request not yet ended, in all connections, by pending_params_budget.
    if (!server_.hold_pending_params(content.size())) {
      server_.logger.log(LogLevel::Warning,
                         "conn {} req {}: refused: params of requests not yet ended past "
                         "pending_params_budget ({})",
                         id_, request_id, server_.config.pending_params_budget);
      log_refused(exchange, unavailable_status(requests_.size() == 1), "overload");
      remove(exchange);
      reply_overloaded(request_id);
      return close_if_done();
    }
    const std::size_t limit = server_.config.max_params_bytes;
    if (pending_params_ + content.size() > limit ||
        exchange.append_params(content) != protocol::Error::None) {
      server_.release_pending_params(content.size());
      return refuse_large_params(exchange,
                                 pending_params_ > exchange.params_size()
                                     ? " with this connection's other requests still sending theirs"
                                     : "");
    }
    pending_params_ += content.size();
    return;
  }
  // FastCGI 1.0 §3.3: an empty record ends the PARAMS stream; the request is complete enough
  // to run. Its end is the progress the idle clock counts, whatever the answer.
  end_params(exchange);
  if (admitted_here_ == 0) idle_since_ = now();
  if (const protocol::Error error = exchange.finish_params(); error != protocol::Error::None) {
    if (error == protocol::Error::NameValueTooLarge) {
      return refuse_large_params(exchange, " counting the memory its many pairs take");
    }
    server_.logger.log(LogLevel::Warning, "conn {} req {}: refused: bad params: {}", id_,
                       request_id, protocol::to_string(error));
    Counters::add(server_.counters.requests_refused);
    log_refused(exchange, 400, "bad_params");
    remove(exchange);
    reply(request_id, ProtocolStatus::RequestComplete, http::server_response(400));
    return close_if_done();
  }
  if (const std::optional<std::string> page =
          server_.pages.answer(exchange.role(), exchange.params(), id_, request_id)) {
    remove(exchange);
    reply(request_id, ProtocolStatus::RequestComplete, *page);
    return close_if_done();
  }
  if (const std::uint64_t limit = server_.config.max_body_bytes; limit > 0) {
    const std::optional<std::uint64_t> length = protocol::content_length(exchange.params());
    if (length && *length > limit) {
      server_.logger.log(LogLevel::Warning,
                         "conn {} req {}: refused: CONTENT_LENGTH {} past max_body_bytes ({})", id_,
                         request_id, *length, limit);
      Counters::add(server_.counters.requests_refused);
      Counters::add(server_.counters.requests_refused_body);
      log_refused(exchange, 413, "body_too_large");
      remove(exchange);
      reply(request_id, ProtocolStatus::RequestComplete, http::server_response(413));
      return close_if_done();
    }
  }
  if (!server_.admit(exchange)) {
    server_.logger.log(LogLevel::Warning,
                       "conn {} req {}: refused: overloaded ({} requests admitted in pool {})",
                       id_, request_id, exchange.pool->max_requests, exchange.pool->name);
    log_refused(exchange, unavailable_status(requests_.size() == 1), "overload");
    remove(exchange);
    reply_overloaded(request_id);
    return close_if_done();
  }
  ++admitted_here_;
}

void Connection::refuse_large_params(Exchange& exchange, std::string_view how) {
  const std::uint16_t request_id = exchange.id();
  server_.logger.log(LogLevel::Warning,
                     "conn {} req {}: refused: params larger than max_params_bytes ({}){}", id_,
                     request_id, server_.config.max_params_bytes, how);
  Counters::add(server_.counters.requests_refused);
  Counters::add(server_.counters.requests_refused_params);
  log_refused(exchange, 431, "params_too_large");
  remove(exchange);
  reply(request_id, ProtocolStatus::RequestComplete, http::server_response(431));
  close_if_done();
}

void Connection::handle_body(Exchange& exchange, const protocol::Record& record) {
  const bool is_stdin = record.header.type == RecordType::Stdin;
  // FCGI_DATA belongs to the Filter role; anything else has no reader for it.
  if (!is_stdin && exchange.role() != protocol::Role::Filter) return;
  if (!exchange.admitted) {
    // FastCGI 1.0 §6.2-6.4: the body streams come after the params. Body bytes held for a
    // request that may never be admitted would escape every bound.
    return close(LogLevel::Warning,
                 fmt::format("{} for request {} before the end of its FCGI_PARAMS",
                             protocol::to_string(record.header.type), exchange.id()));
  }
  if (exchange.stopped()) return;
  if (record.content.empty()) {
    return is_stdin ? exchange.end_stdin() : exchange.end_data();
  }
  const bool filled =
      is_stdin ? exchange.push_stdin(record.content) : exchange.push_data(record.content);
  if (filled) hold_reading();
}

// --- answering ---------------------------------------------------------------------------------

Exchange* Connection::find(std::uint16_t request_id) const noexcept {
  for (Exchange* exchange : requests_) {
    if (exchange->id() == request_id && !exchange->ended()) return exchange;
  }
  return nullptr;
}

std::size_t Connection::live_requests() const noexcept {
  return static_cast<std::size_t>(std::count_if(requests_.begin(), requests_.end(),
                                                [](const Exchange* e) { return !e->ended(); }));
}

void Connection::reply(std::uint16_t request_id, ProtocolStatus status, std::string_view response) {
  std::string records;
  if (!response.empty()) {
    protocol::append_records(records, RecordType::Stdout, request_id, as_bytes(response));
    protocol::append_records(records, RecordType::Stdout, request_id, std::string_view());
  }
  protocol::append_end_request(records, request_id, 0, status);
  send_reply(records);
}

void Connection::send_reply(std::string_view records) {
  output_->append(records);
  replied_ = true;
}

void Connection::reply_overloaded(std::uint16_t request_id) {
  Counters::add(server_.counters.requests_overloaded);
  answer_unavailable(request_id);
}

void Connection::answer_unavailable(std::uint16_t request_id) {
  if (unavailable_status(requests_.empty()) == 0) {
    reply(request_id, ProtocolStatus::Overloaded);
  } else {
    reply(request_id, ProtocolStatus::RequestComplete, http::server_response(503));
  }
}

int Connection::unavailable_status(bool alone) const noexcept {
  OverloadReply how = server_.config.overload_reply;
  if (how == OverloadReply::Automatic) {
    // A client that multiplexes knows FCGI_OVERLOADED; one that sends a request per
    // connection (nginx, Apache) turns it into a bare 502, so it gets a 503 it can pass on.
    how = alone ? OverloadReply::Http503 : OverloadReply::ProtocolStatus;
  }
  return how == OverloadReply::ProtocolStatus ? 0 : 503;
}

void Connection::log_refused(const Exchange& exchange, int status,
                             std::string_view reason) noexcept {
  if (!server_.config.access_log) return;
  try {
    const std::span<const protocol::NameValue> params = exchange.params();
    const std::string uri = observe::request_uri(params);
    // The body bytes of the server's answer, as a handler's would count.
    std::size_t bytes = 0;
    if (status != 0) {
      const std::string response = http::server_response(status);
      bytes = response.size() - (response.find("\r\n\r\n") + 4);
    }
    server_.logger.emit(LogLevel::Info, observe::access_line(observe::AccessEntry{
                                            .method = observe::param(params, "REQUEST_METHOD"),
                                            .uri = uri,
                                            .status = status,
                                            .bytes = bytes,
                                            .duration = std::chrono::nanoseconds(0),
                                            .queue_wait = std::chrono::nanoseconds(0),
                                            .result = "refused",
                                            .reason = reason,
                                            .connection_id = id_,
                                            .request_id = exchange.id(),
                                            .pool = exchange.pool != nullptr &&
                                                            exchange.pool->own_figures
                                                        ? exchange.pool->name
                                                        : ""}));
  } catch (const std::exception&) {
    // Out of memory: this request goes unlogged.
  }
}

void Connection::end_params(Exchange& exchange) noexcept {
  if (exchange.params_ended) return;
  exchange.params_ended = true;
  pending_params_ -= exchange.params_size();
}

void Connection::remove(Exchange& exchange) noexcept {
  end_params(exchange);
  // The server's count holds a request's params while it is queued and runs too: they stay in
  // memory until it ends.
  server_.release_pending_params(exchange.params_size());
  if (exchange.holds_reader()) release_reading();
  if (exchange.admitted) {
    server_.release_admission(exchange);
    if (--admitted_here_ == 0) idle_since_ = now();
  }
  requests_.erase(std::find(requests_.begin(), requests_.end(), &exchange));
  server_.retire_exchange(exchange);
}

void Connection::hold_reading() noexcept {
  const bool was_held = reading_held();
  ++read_holds_;
  update_reading(was_held);
}

void Connection::release_reading() noexcept {
  const bool was_held = reading_held();
  --read_holds_;
  update_reading(was_held);
}

void Connection::update_reading(bool was_held) noexcept {
  if (state_ != State::Open || reading_held() == was_held) return;
  if (reading_held()) return pause_reading();
  if (const int rc = resume_reading(); rc != 0) close(LogLevel::Warning, uv_strerror(rc));
}

void Connection::wait_for_output(std::span<const std::byte> rest) noexcept {
  try {
    unconsumed_.assign(reinterpret_cast<const char*>(rest.data()), rest.size());
  } catch (const std::exception& e) {
    return close(LogLevel::Error, e.what());
  }
  const bool was_held = reading_held();
  waiting_for_output_ = true;
  update_reading(was_held);
  // flush() reads on at once if a worker made room meanwhile.
  output_->hold_reader();
}

void Connection::read_on_if_room() noexcept {
  // What the last read brought before the output filled up comes first.
  const std::span<const std::byte> rest = consume(as_bytes(unconsumed_));
  if (state_ != State::Open) return;
  if (!rest.empty()) {
    unconsumed_.erase(0, unconsumed_.size() - rest.size());
    output_->hold_reader();
    return;
  }
  // At most one read's worth: not worth keeping between waits.
  std::string().swap(unconsumed_);
  waiting_for_output_ = false;
  update_reading(true);
}

void Connection::close_if_done() noexcept {
  // A draining server closes a connection between requests, unless the peer already sent
  // more: those bytes may be the next request, and closing would reset it.
  if (state_ == State::Open && requests_.empty() && !async_write_ && output_->idle() &&
      (close_when_idle_ || (server_.draining() && decoder_.at_record_boundary() &&
                            unconsumed_.empty() && unread_bytes() == 0))) {
    close(LogLevel::Debug, "done");
  }
}

// --- writing -----------------------------------------------------------------------------------

bool Connection::deliver(const dispatch::Notice& notice) noexcept {
  server_.assert_in_loop_thread();
  Exchange& exchange = *notice.exchange;
  switch (notice.kind) {
    case dispatch::Notice::Kind::BodyRead:
      if (state_ == State::Open) release_reading();
      break;
    case dispatch::Notice::Kind::Output:
      // The flush that follows does what the output needs.
      break;
    case dispatch::Notice::Kind::Cut: {
      const std::uint16_t request_id = exchange.id();
      // At the shutdown deadline one Warning has counted them all (ServerCore::begin_drain):
      // a thousand open streams cut there make a line each at Info, not a thousand warnings.
      const bool shutdown = exchange.stop_reason() == dispatch::StopReason::Shutdown;
      const LogLevel level = shutdown ? LogLevel::Info : LogLevel::Warning;
      const std::string_view cause = shutdown ? "the server's stop" : "its request_timeout";
      remove(exchange);
      try {
        close(level, fmt::format("response to request {} cut short by {}, so it gets no "
                                 "END_REQUEST",
                                 request_id, cause));
      } catch (const std::exception&) {
        close(level, "a response cut short");
      }
      break;
    }
    case dispatch::Notice::Kind::Ended:
      served_ = true;
      remove(exchange);
      break;
  }
  if (state_ != State::Open) {
    free_if_done();
    return false;
  }
  return true;
}

void Connection::flush() noexcept {
  server_.assert_in_loop_thread();
  while (state_ == State::Open && !async_write_) {
    if (output_->flush(async_pieces_) == ConnectionOutput::Flush::Async) {
      const int rc = write(async_pieces_);
      if (rc < 0) {
        output_->async_written(false);
        return close(LogLevel::Info, uv_strerror(rc));
      }
      if (rc == 0) {
        async_write_ = true;
        break;
      }
      output_->async_written(true);
      continue;
    }
    if (!waiting_for_output_ || output_->over_budget()) break;
    read_on_if_room();
  }
  close_if_done();
}

void Connection::written(int status) noexcept {
  server_.assert_in_loop_thread();
  async_write_ = false;
  if (output_) output_->async_written(status == 0);
  if (status != 0) {
    if (status != UV_ECANCELED) close(LogLevel::Info, uv_strerror(status));
    return free_if_done();
  }
  flush();
}

// --- closing -----------------------------------------------------------------------------------

void Connection::close(LogLevel level, std::string_view why) noexcept {
  server_.assert_in_loop_thread();
  if (state_ != State::Open) return;
  state_ = State::Closing;
  server_.logger.log(level, "conn {}: closed: {}", id_, why);
  // Stopped before the output closes, so that a writer the closing output wakes finds its
  // request stopped, not a write that silently went nowhere.
  stop_requests(dispatch::StopReason::ClientGone);
  // Waits for a worker in the middle of a send: no one touches the socket once it returns.
  if (output_) output_->close();
  std::string().swap(unconsumed_);
  close_transport();
}

void Connection::transport_closed() noexcept {
  server_.assert_in_loop_thread();
  state_ = State::Closed;
  free_if_done();
}

void Connection::free_if_done() noexcept {
  if (state_ == State::Closed && requests_.empty() && !async_write_) {
    server_.remove_connection(*this);
  }
}

void Connection::drain() noexcept {
  // Only a connection idle between requests closes at once. One that has not completed a
  // request yet (accepted a moment ago) is likely carrying a request already on its way:
  // closing it would lose that request. It gets a short grace (the sweep calls drain() again),
  // then closes; one whose request arrives stays until that request ends (close_if_done).
  // A connection with a request still arriving (its params, or a record, begun and not
  // finished), or with bytes not read yet, gets a longer grace from the start of the drain:
  // a web server sends a request's params at once, so one that has not finished them by then
  // is stuck or hostile, and waiting for it would hold the stop until the shutdown deadline.
  constexpr std::uint64_t kFreshGraceMs = 250;
  constexpr std::uint64_t kArrivingGraceMs = 1'000;
  if (state_ != State::Open || admitted_here_ > 0 || async_write_ || !output_->idle()) return;
  if (requests_.empty() && decoder_.at_record_boundary() && unread_bytes() == 0) {
    if (!served_ && now() - idle_since_ < kFreshGraceMs) return;
    return close(LogLevel::Debug, "server stopping");
  }
  if (now() - server_.drain_started() < kArrivingGraceMs) return;
  close(LogLevel::Info, "server stopping: a request still arriving 1 s after the stop began");
}

void Connection::sweep(std::uint64_t now) noexcept {
  server_.assert_in_loop_thread();
  if (state_ != State::Open) return;
  if (server_.draining()) drain();
  if (state_ != State::Open) return;
  const Config& config = server_.config;
  if (admitted_here_ == 0 &&
      now - idle_since_ >= static_cast<std::uint64_t>(config.idle_timeout.count())) {
    return close(LogLevel::Info,
                 requests_.empty() ? "idle timeout" : "idle timeout with a request incomplete");
  }
  if (!server_.request_timeouts()) return;
  const auto steady_now = std::chrono::steady_clock::now();
  for (Exchange* exchange : requests_) {
    if (!exchange->admitted || exchange->ended() || exchange->stopped()) continue;
    const std::chrono::milliseconds timeout = exchange->pool->request_timeout;
    if (timeout.count() > 0 && exchange->admitted_at < steady_now - timeout) {
      server_.logger.log(LogLevel::Warning,
                         "conn {} req {}: cancelled: past request_timeout ({} ms)", id_,
                         exchange->id(), timeout.count());
      exchange->stop(dispatch::StopReason::Deadline);
    }
  }
}

void Connection::cancel_requests() noexcept {
  server_.assert_in_loop_thread();
  stop_requests(dispatch::StopReason::Shutdown);
  flush();
}

void Connection::stop_requests(dispatch::StopReason reason) noexcept {
  for (std::size_t i = requests_.size(); i-- > 0;) {
    Exchange* exchange = requests_[i];
    if (!exchange->admitted) {
      remove(*exchange);
    } else if (server_.take_back(*exchange)) {
      const std::uint16_t request_id = exchange->id();
      remove(*exchange);
      // Never ran, so the whole answer is the server's: the one it gives when it cannot take
      // a request (on a connection still open).
      if (state_ == State::Open) answer_unavailable(request_id);
    } else if (!exchange->ended()) {
      exchange->stop(reason);
    }
  }
}

std::unique_ptr<ConnectionOutput> Connection::abandon_requests(
    std::vector<Exchange*>& exchanges) noexcept {
  for (Exchange* exchange : requests_) {
    exchanges.push_back(exchange);
    server_.release_admission(*exchange);
  }
  requests_.clear();
  admitted_here_ = 0;
  std::unique_ptr<ConnectionOutput> output = std::move(output_);
  free_if_done();
  return output;
}

}  // namespace fcgimux::io
