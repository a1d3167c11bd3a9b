// SPDX-License-Identifier: MIT
#include "observe/counters.hpp"

namespace fcgimux::observe {

Stats Counters::snapshot() const noexcept {
  const auto get = [](const Counter& counter) { return counter.load(std::memory_order_relaxed); };
  return Stats{
      .connections_accepted = get(connections_accepted),
      .connections_refused = get(connections_refused),
      .connections_open = get(connections_open),
      .requests_admitted = get(requests_admitted),
      .requests_completed = get(requests_completed),
      .requests_failed = get(requests_failed),
      .requests_body_too_large = get(requests_body_too_large),
      .requests_aborted = get(requests_aborted),
      .requests_overloaded = get(requests_overloaded),
      .requests_refused = get(requests_refused),
      .requests_refused_params = get(requests_refused_params),
      .requests_refused_body = get(requests_refused_body),
      .requests_abandoned = get(requests_abandoned),
      .requests_running = get(requests_running),
      .requests_queued = get(requests_queued),
      .bytes_in = get(bytes_in),
      .bytes_out = get(bytes_out),
      .input_buffered = get(input_buffered),
      .output_buffered = get(output_buffered),
      .params_pending = get(params_pending),
      .requests_running_max = get(requests_running_max),
      .requests_queued_max = get(requests_queued_max),
      .slow_requests = get(slow_requests),
      .streams_open = get(streams_open),
      .stream_writes_dropped = get(stream_writes_dropped),
  };
}

}  // namespace fcgimux::observe
