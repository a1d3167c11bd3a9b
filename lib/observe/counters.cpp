// SPDX-License-Identifier: MIT
#include "observe/counters.hpp"

#include <algorithm>
#include <iterator>

namespace fcgimux::observe {

namespace {

// How a figure adds up across processes: a total adds, also after its process ended; a figure
// of the moment adds while its process lives; a most-at-once figure takes the largest.
enum class Kind { Total, Now, Most };

template <class Live, class Figures>
struct Field {
  Counters::Counter Live::*counter;
  std::uint64_t Figures::*figure;
  Kind kind;
};

using C = Counters;
using S = Stats;
constexpr Field<C, S> kFields[] = {
    {&C::connections_accepted, &S::connections_accepted, Kind::Total},
    {&C::connections_refused, &S::connections_refused, Kind::Total},
    {&C::connections_open, &S::connections_open, Kind::Now},
    {&C::requests_admitted, &S::requests_admitted, Kind::Total},
    {&C::requests_completed, &S::requests_completed, Kind::Total},
    {&C::requests_failed, &S::requests_failed, Kind::Total},
    {&C::requests_body_too_large, &S::requests_body_too_large, Kind::Total},
    {&C::requests_aborted, &S::requests_aborted, Kind::Total},
    {&C::requests_overloaded, &S::requests_overloaded, Kind::Total},
    {&C::requests_refused, &S::requests_refused, Kind::Total},
    {&C::requests_refused_params, &S::requests_refused_params, Kind::Total},
    {&C::requests_refused_body, &S::requests_refused_body, Kind::Total},
    {&C::requests_abandoned, &S::requests_abandoned, Kind::Total},
    {&C::requests_running, &S::requests_running, Kind::Now},
    {&C::requests_queued, &S::requests_queued, Kind::Now},
    {&C::bytes_in, &S::bytes_in, Kind::Total},
    {&C::bytes_out, &S::bytes_out, Kind::Total},
    {&C::input_buffered, &S::input_buffered, Kind::Now},
    {&C::output_buffered, &S::output_buffered, Kind::Now},
    {&C::params_pending, &S::params_pending, Kind::Now},
    {&C::requests_running_max, &S::requests_running_max, Kind::Most},
    {&C::requests_queued_max, &S::requests_queued_max, Kind::Most},
    {&C::slow_requests, &S::slow_requests, Kind::Total},
    {&C::streams_open, &S::streams_open, Kind::Now},
    {&C::stream_writes_dropped, &S::stream_writes_dropped, Kind::Total},
};

// A pool's figure also names the server's figure that stands for it when the default pool is
// the only one (PoolCounters::from_totals).
struct PoolField : Field<PoolCounters, PoolStats> {
  std::uint64_t Stats::*total;
};

using P = PoolCounters;
using PS = PoolStats;
constexpr PoolField kPoolFields[] = {
    {{&P::admitted, &PS::requests_admitted, Kind::Total}, &S::requests_admitted},
    {{&P::overloaded, &PS::requests_overloaded, Kind::Total}, &S::requests_overloaded},
    {{&P::running, &PS::requests_running, Kind::Now}, &S::requests_running},
    {{&P::queued, &PS::requests_queued, Kind::Now}, &S::requests_queued},
    {{&P::running_max, &PS::requests_running_max, Kind::Most}, &S::requests_running_max},
    {{&P::queued_max, &PS::requests_queued_max, Kind::Most}, &S::requests_queued_max},
    {{&P::slow, &PS::slow_requests, Kind::Total}, &S::slow_requests},
};

// Every counter is in its table (PoolCounters::in_flight aside): a counter added without a
// row would be left out of the sums, the folds and the resets.
static_assert(sizeof(Counters) == std::size(kFields) * sizeof(Counters::Counter));
static_assert(sizeof(PoolCounters) == (std::size(kPoolFields) + 1) * sizeof(Counters::Counter));

template <class Live, class Fields>
void fold(const Live& from, Live& into, const Fields& fields) noexcept {
  for (const auto& field : fields) {
    const std::uint64_t value = (from.*field.counter).load(std::memory_order_relaxed);
    if (field.kind == Kind::Total) Counters::add(into.*field.counter, value);
    if (field.kind == Kind::Most) Counters::raise_max(into.*field.counter, value);
  }
}

template <class Figures, class Fields>
void sum(Figures& into, const Figures& from, const Fields& fields) noexcept {
  for (const auto& field : fields) {
    std::uint64_t& value = into.*field.figure;
    value = field.kind == Kind::Most ? std::max(value, from.*field.figure)
                                     : value + from.*field.figure;
  }
}

}  // namespace

Stats Counters::snapshot() const noexcept {
  Stats stats;
  for (const auto& field : kFields) {
    stats.*field.figure = (this->*field.counter).load(std::memory_order_relaxed);
  }
  stats.processes_running = 1;
  return stats;
}

void Counters::fold_into(Counters& into) const noexcept { fold(*this, into, kFields); }

void Counters::reset() noexcept {
  for (const auto& field : kFields) (this->*field.counter).store(0, std::memory_order_relaxed);
}

void Counters::add(Stats& into, const Stats& from) noexcept { sum(into, from, kFields); }

void PoolCounters::fold_into(PoolCounters& into) const noexcept { fold(*this, into, kPoolFields); }

void PoolCounters::reset() noexcept {
  in_flight.store(0, std::memory_order_relaxed);
  for (const auto& field : kPoolFields) (this->*field.counter).store(0, std::memory_order_relaxed);
}

PoolStats PoolCounters::snapshot(PoolStats shape) const noexcept {
  for (const auto& field : kPoolFields) {
    shape.*field.figure = (this->*field.counter).load(std::memory_order_relaxed);
  }
  return shape;
}

PoolStats PoolCounters::from_totals(PoolStats shape, const Stats& totals) noexcept {
  for (const auto& field : kPoolFields) shape.*field.figure = totals.*field.total;
  return shape;
}

void PoolCounters::add(PoolStats& into, const PoolStats& from) noexcept {
  sum(into, from, kPoolFields);
}

}  // namespace fcgimux::observe
