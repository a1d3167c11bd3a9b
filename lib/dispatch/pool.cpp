// SPDX-License-Identifier: MIT
#include "dispatch/pool.hpp"

namespace fcgimux::dispatch {

PoolState::PoolState(const Pool& spec, Handler& pool_handler, observe::Counters& totals,
                     bool detailed, bool figures, observe::PoolCounters* elsewhere)
    : name(spec.name),
      workers(spec.workers),
      max_requests(spec.max_requests),
      queue_timeout(spec.queue_timeout),
      request_timeout(spec.request_timeout),
      slow_request_threshold(spec.slow_request_threshold),
      handler(spec.handler != nullptr ? *spec.handler : pool_handler),
      own_figures(figures),
      counters(elsewhere != nullptr ? *elsewhere : own_counters),
      queue(spec.workers),
      board(spec.workers, totals, detailed) {}

PoolStats PoolState::figures(const Stats& totals) const {
  const PoolStats shape{.name = name, .workers = workers, .max_requests = max_requests};
  return own_figures ? counters.snapshot(shape)
                     : observe::PoolCounters::from_totals(shape, totals);
}

bool path_has_prefix(std::string_view path, std::string_view prefix) noexcept {
  if (!path.starts_with(prefix)) return false;
  return prefix.empty() || prefix.back() == '/' || path.size() == prefix.size() ||
         path[prefix.size()] == '/';
}

std::size_t choose_pool(std::span<const Pool> pools, protocol::Role role,
                        std::span<const protocol::NameValue> params) {
  if (pools.empty()) return 0;
  std::string_view path;
  bool script_name = false;
  for (const protocol::NameValue& pair : params) {
    if (pair.name == "SCRIPT_NAME") {
      path = pair.value;
      script_name = true;
    } else if (pair.name == "DOCUMENT_URI" && !script_name) {
      path = pair.value;
    }
  }
  for (std::size_t i = 0; i < pools.size(); ++i) {
    const Pool& pool = pools[i];
    if (!pool.prefix.empty() && !path_has_prefix(path, pool.prefix)) continue;
    if (pool.role && *pool.role != role) continue;
    if (pool.predicate && !pool.predicate(params)) continue;
    return i + 1;
  }
  return 0;
}

}  // namespace fcgimux::dispatch
