// SPDX-License-Identifier: MIT
#include "fcgi_client.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace fcgimux::test {
namespace {

using protocol::RecordType;

// Calls `emit(piece, padding)` for each non-empty record of a stream, as `framing` cuts it.
template <class Emit>
void for_each_record(std::string_view content, const Framing& framing, Emit emit) {
  for (std::size_t turn = 0; !content.empty(); ++turn) {
    if (framing.record_sizes.empty()) throw TestError("Framing::record_sizes is empty");
    const std::size_t wanted = framing.record_sizes[turn % framing.record_sizes.size()];
    if (wanted == 0 || wanted > protocol::kMaxContentLength) {
      throw TestError(fmt::format("a record cannot carry {} bytes", wanted));
    }
    const std::string_view piece = content.substr(0, wanted);
    content.remove_prefix(piece.size());
    emit(piece, framing.padding.value_or(protocol::padding_for(piece.size())));
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    return lower(x) == lower(y);
  });
}

}  // namespace

void append_record(std::string& out, RecordType type, std::uint16_t request_id,
                   std::string_view content, std::uint8_t padding) {
  std::array<std::byte, protocol::kHeaderSize> header;
  protocol::encode_header({.type = type,
                           .request_id = request_id,
                           .content_length = static_cast<std::uint16_t>(content.size()),
                           .padding_length = padding},
                          header);
  out.append(reinterpret_cast<const char*>(header.data()), header.size());
  out.append(content);
  out.append(padding, '\xa5');
}

void append_stream(std::string& out, RecordType type, std::uint16_t request_id,
                   std::string_view content, const Framing& framing) {
  for_each_record(content, framing, [&](std::string_view piece, std::uint8_t padding) {
    append_record(out, type, request_id, piece, padding);
  });
  append_record(out, type, request_id, {}, framing.padding.value_or(0));
}

std::vector<std::string> stream_records(RecordType type, std::uint16_t request_id,
                                        std::string_view content, const Framing& framing) {
  std::vector<std::string> records;
  for_each_record(content, framing, [&](std::string_view piece, std::uint8_t padding) {
    append_record(records.emplace_back(), type, request_id, piece, padding);
  });
  append_record(records.emplace_back(), type, request_id, {}, framing.padding.value_or(0));
  return records;
}

std::string encode_params(const Params& params) {
  std::string block;
  for (const auto& [name, value] : params) protocol::append_name_value(block, name, value);
  return block;
}

FcgiClient::FcgiClient(std::string_view endpoint, std::chrono::milliseconds timeout)
    : socket_(Socket::connect(endpoint, timeout)) {}

void FcgiClient::send_raw(std::string_view bytes) {
  socket_.send_all(bytes, received_);
  decode_received();
}

void FcgiClient::send_begin_request(std::uint16_t id, bool keep_conn, protocol::Role role) {
  std::string out;
  protocol::append_begin_request(out, id, static_cast<std::uint16_t>(role),
                                 keep_conn ? protocol::kKeepConn : 0);
  send_raw(out);
}

void FcgiClient::send_params(std::uint16_t id, const Params& params, const Framing& framing) {
  std::string out;
  append_stream(out, RecordType::Params, id, encode_params(params), framing);
  send_raw(out);
}

void FcgiClient::send_stdin(std::uint16_t id, std::string_view body, const Framing& framing) {
  std::string out;
  append_stream(out, RecordType::Stdin, id, body, framing);
  send_raw(out);
}

void FcgiClient::send_abort(std::uint16_t id) {
  std::string out;
  protocol::append_abort_request(out, id);
  send_raw(out);
}

void FcgiClient::send_request(const Params& params, std::string_view body,
                              const RequestOptions& options) {
  std::string out;
  protocol::append_begin_request(out, options.id,
                                 static_cast<std::uint16_t>(protocol::Role::Responder),
                                 options.keep_conn ? protocol::kKeepConn : 0);
  append_stream(out, RecordType::Params, options.id, encode_params(params), options.params);
  append_stream(out, RecordType::Stdin, options.id, body, options.body);
  send_raw(out);
}

std::optional<ReceivedRecord> FcgiClient::read_record() {
  while (records_.empty()) {
    if (!socket_.receive(received_)) {
      if (!decoder_.at_record_boundary()) {
        throw TestError("the server closed the connection in the middle of a record");
      }
      return std::nullopt;
    }
    decode_received();
  }
  ReceivedRecord record = std::move(records_.front());
  records_.pop_front();
  return record;
}

Responses FcgiClient::collect(std::span<const std::uint16_t> ids) {
  Responses responses;
  for (const std::uint16_t id : ids) responses.by_id[id];
  while (responses.end_order.size() < responses.by_id.size()) {
    const std::optional<ReceivedRecord> record = read_record();
    if (!record) {
      throw TestError(fmt::format("the server closed the connection with {} of {} requests open",
                                  responses.by_id.size() - responses.end_order.size(),
                                  responses.by_id.size()));
    }
    const auto& [header, content] = *record;
    const auto found = responses.by_id.find(header.request_id);
    if (found == responses.by_id.end() || found->second.end) {
      throw TestError(fmt::format("unexpected {} for request id {}",
                                  protocol::to_string(header.type), header.request_id));
    }
    Response& response = found->second;
    switch (header.type) {
      case RecordType::Stdout:
        if (response.out_ended) throw TestError("FCGI_STDOUT after the end of its stream");
        response.out += content;
        response.out_ended = content.empty();
        break;
      case RecordType::Stderr:
        response.err += content;
        break;
      case RecordType::EndRequest: {
        protocol::EndRequestBody end;
        if (protocol::parse_end_request(std::as_bytes(std::span(content)), end) !=
            protocol::Error::None) {
          throw TestError(fmt::format("FCGI_END_REQUEST with {} content bytes", content.size()));
        }
        response.end = end;
        responses.end_order.push_back(header.request_id);
        break;
      }
      default:
        throw TestError(
            fmt::format("unexpected {} from the server", protocol::to_string(header.type)));
    }
  }
  return responses;
}

Response FcgiClient::request(const Params& params, std::string_view body,
                             const RequestOptions& options) {
  send_request(params, body, options);
  const std::array ids{options.id};
  return std::move(collect(ids).by_id.at(options.id));
}

void FcgiClient::decode_received() {
  std::span<const std::byte> in = std::as_bytes(std::span(received_));
  protocol::Record record;
  for (;;) {
    switch (decoder_.next(in, record)) {
      case protocol::DecodeStatus::Record:
        records_.push_back(
            {record.header, std::string(reinterpret_cast<const char*>(record.content.data()),
                                        record.content.size())});
        break;
      case protocol::DecodeStatus::NeedMore:
        received_.clear();
        return;
      case protocol::DecodeStatus::Error:
        throw TestError(fmt::format("the server sent a malformed stream: {}",
                                    protocol::to_string(decoder_.error())));
    }
  }
}

std::optional<std::string> CgiResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return std::nullopt;
}

CgiResponse parse_cgi_response(std::string_view out) {
  CgiResponse response;
  for (;;) {
    const std::size_t newline = out.find('\n');
    if (newline == std::string_view::npos) throw TestError("the CGI header block does not end");
    std::string_view line = out.substr(0, newline);
    out.remove_prefix(newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      throw TestError(fmt::format("CGI header line without a colon: '{}'", line));
    }
    std::string_view value = line.substr(colon + 1);
    value.remove_prefix(std::min(value.size(), value.find_first_not_of(' ')));
    response.headers.emplace_back(line.substr(0, colon), value);
  }
  if (const auto status = response.header("Status")) {
    const auto [end, error] =
        std::from_chars(status->data(), status->data() + status->size(), response.status);
    if (error != std::errc{}) throw TestError(fmt::format("bad Status header '{}'", *status));
  }
  response.body = out;
  return response;
}

}  // namespace fcgimux::test
