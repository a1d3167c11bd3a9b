// SPDX-License-Identifier: MIT
#include "io/server_core.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "dispatch/pool.hpp"
#include "dispatch/worker_pool.hpp"
#include "io/endpoint.hpp"
#include "io/stream_connection.hpp"
#include "io/systemd.hpp"
#include "io/uv_error.hpp"
#include "observe/access_log.hpp"

namespace fcgimux::io {

namespace {

using observe::Counters;

// FastCGI 1.0 §2.2: an application starts with stdout and stderr closed. Left closed, the
// next descriptors opened (the loop's epoll, libuv's pipes) would take numbers 1 and 2: log
// lines would go into them, and libuv refuses to close them. /dev/null fills the holes, as
// daemons do; descriptor 0, the listening socket there, is left alone when open.
void fill_standard_descriptors() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free number, which is this hole.
    const int opened = ::open("/dev/null", O_RDWR);
    if (opened >= 0 && opened != fd) ::close(opened);
  }
}

// Queued pieces kept for reuse across connections (io/piece_pool.hpp): 1 MiB at most.
constexpr std::size_t kSparePieces = 256;

// How long a handler gets to notice that it was cancelled at the shutdown deadline before
// the server gives up on it.
constexpr std::chrono::milliseconds kAbandonGrace{1'000};

// How often a child of a server of several processes reads its slot (ServerCore::Place), in
// milliseconds: how long a supervisor's command waits at most.
constexpr std::uint64_t kProcessTick = 50;

// Calls the application's `hook` (the Config field `name`), if set, with `args`; logs what it
// throws, since the server goes on either way.
template <class Hook, class... Args>
void call_hook(const util::Logger& logger, std::string_view name, const Hook& hook,
               const Args&... args) noexcept {
  if (!hook) return;
  try {
    hook(args...);
  } catch (const std::exception& error) {
    logger.log(LogLevel::Error, "Config::{} threw: {}", name, error.what());
  } catch (...) {
    logger.log(LogLevel::Error, "Config::{} threw", name);
  }
}

}  // namespace

void announce(const Config& config, const std::vector<std::string>& endpoints,
              const util::Logger& logger) noexcept {
  call_hook(logger, "on_listening", config.on_listening, endpoints);
}

unsigned worker_count(unsigned configured) noexcept {
  if (configured != 0) return configured;
  return std::max(4u, 2 * std::thread::hardware_concurrency());
}

Config validated(Config config) {
  const auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("Config::") + what + " must not be 0");
  };
  require(config.max_connections > 0, "max_connections");
  require(config.max_requests > 0, "max_requests");
  require(config.max_streams > 0, "max_streams");
  require(config.max_requests_per_connection > 0, "max_requests_per_connection");
  require(config.max_params_bytes > 0, "max_params_bytes");
  require(config.pending_params_budget > 0, "pending_params_budget");
  if (config.pending_params_budget < config.max_params_bytes) {
    // A request with params at the limit would always find the budget too small: refused as
    // overload, never the 431 the limit promises.
    throw std::invalid_argument("Config::pending_params_budget must be at least max_params_bytes");
  }
  require(config.request_body_budget > 0, "request_body_budget");
  require(config.connection_output_budget > 0, "connection_output_budget");
  if (config.roles.empty()) throw std::invalid_argument("Config::roles is empty");
  for (std::size_t i = 0; i < config.pools.size(); ++i) {
    const Pool& pool = config.pools[i];
    const auto refuse = [&](std::string_view why) {
      throw std::invalid_argument(
          fmt::format("Config::pools[{}] ({}): {}", i, pool.name.empty() ? "?" : pool.name, why));
    };
    if (pool.name.empty()) refuse("the name is empty");
    if (pool.name == config.pool_name) refuse("the name is the default pool's (pool_name)");
    for (std::size_t j = 0; j < i; ++j) {
      if (config.pools[j].name == pool.name) refuse("the name is taken by an earlier pool");
    }
    if (pool.workers == 0) refuse("workers must not be 0");
    if (pool.max_requests == 0) refuse("max_requests must not be 0");
    if (pool.prefix.empty() && !pool.role && !pool.predicate) {
      refuse("no match: set a prefix, a role or a predicate");
    }
    if (!pool.prefix.empty() && pool.prefix.front() != '/') refuse("the prefix must start with '/'");
  }
  if (config.processes == 0) throw std::invalid_argument("Config::processes must not be 0");
  observe::BuiltinPages::check(config);
  return config;
}

namespace {

// Resident memory of this process in bytes (/proc/self/statm); 0 when it cannot be read.
std::uint64_t resident_bytes() noexcept {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0;
  unsigned long long resident = 0;
  if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

ServerCore::ServerCore(Config configuration, Handler& application, Place place)
    : config(validated(std::move(configuration))),
      handler(application),
      shared(std::make_shared<dispatch::SharedState>(
          this->config, worker_count(this->config.workers), application,
          [](void* self) noexcept { uv_async_send(&static_cast<ServerCore*>(self)->wake_); },
          this,
          place.scoreboard == nullptr
              ? dispatch::Figures{}
              : dispatch::Figures{&place.scoreboard->slot(place.slot).counters,
                                               place.scoreboard->pool_counters(place.slot)})),
      logger(shared->logger),
      counters(shared->counters),
      notices(shared->notices),
      queue(shared->pools.front()->queue),
      exchange_context(shared->exchange_context),
      pages(this->config, counters, logger, shared->pools, place.scoreboard),
      pieces(kSparePieces),
      place_(place) {
  for (const auto& pool : shared->pools) {
    if (pool->request_timeout.count() > 0) request_timeouts_ = true;
  }
  std::string error;
  std::optional<std::vector<Endpoint>> endpoints = resolve_listen(config.listen, error);
  if (!endpoints) throw std::invalid_argument(error);
  listen_endpoints_ = std::move(*endpoints);
  std::optional<ClientFilter> filter = ClientFilter::make(config.allowed_clients, error);
  if (!filter) throw std::invalid_argument("Config::allowed_clients: " + error);
  client_filter_ = std::move(*filter);
  fill_standard_descriptors();
  // Spares for as many requests as commonly run at once; past that, requests allocate. A
  // spare keeps a few KiB at most (Exchange::retire()).
  constexpr std::size_t kMostSpares = 256;
  spare_exchanges_.reserve(std::min(config.max_requests, kMostSpares));
  if (const int rc = uv_loop_init(&loop); rc != 0) throw uv_error(rc, "uv_loop_init");
  loop.data = this;
  // Both asyncs exist for the server's whole life, so stop() and the workers can always
  // signal the loop. stop_ does not keep the loop alive: it matters only while run() runs.
  uv_async_init(&loop, &wake_, on_wake);
  uv_async_init(&loop, &stop_, on_stop);
  uv_unref(reinterpret_cast<uv_handle_t*>(&stop_));
  uv_prepare_init(&loop, &quiet_ends_);
  uv_prepare_start(&quiet_ends_, [](uv_prepare_t* prepare) noexcept {
    auto* self = static_cast<ServerCore*>(prepare->loop->data);
    if (self->notices.has_notices()) self->deliver_notices();
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&quiet_ends_));
  uv_signal_init(&loop, &sigint_);
  uv_signal_init(&loop, &sigterm_);
  uv_timer_init(&loop, &shutdown_timer_);
  uv_timer_init(&loop, &abandon_timer_);
  uv_timer_init(&loop, &sweep_timer_);
  uv_timer_init(&loop, &watchdog_timer_);
  uv_timer_init(&loop, &process_timer_);
  loop_handles_open_ = true;
}

ServerCore::~ServerCore() {
  stop();
  run_state_.wait_ended();
  // The last close callbacks run here.
  loop_thread_ = std::this_thread::get_id();
  close_loop_handles();
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&stop_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
  }
  for (const auto& listener : listeners_) listener->close();
  // Run the close callbacks, then free what is left (connections of a run() that threw).
  uv_run(&loop, UV_RUN_DEFAULT);
  connections_.clear();
  uv_loop_close(&loop);
}

void ServerCore::close_loop_handles() noexcept {
  if (!loop_handles_open_) return;
  loop_handles_open_ = false;
  for (uv_handle_t* handle :
       {reinterpret_cast<uv_handle_t*>(&wake_), reinterpret_cast<uv_handle_t*>(&quiet_ends_),
        reinterpret_cast<uv_handle_t*>(&sigint_), reinterpret_cast<uv_handle_t*>(&sigterm_),
        reinterpret_cast<uv_handle_t*>(&shutdown_timer_),
        reinterpret_cast<uv_handle_t*>(&abandon_timer_),
        reinterpret_cast<uv_handle_t*>(&sweep_timer_),
        reinterpret_cast<uv_handle_t*>(&watchdog_timer_),
        reinterpret_cast<uv_handle_t*>(&process_timer_)}) {
    uv_close(handle, nullptr);
  }
}

// --- running -----------------------------------------------------------------------------------

void ServerCore::run() {
  if (run_called_.exchange(true)) throw std::logic_error("Server::run() called twice");
  loop_thread_ = std::this_thread::get_id();
  const util::RunState::Running running(run_state_);

  try {
    bind_listeners();
  } catch (...) {
    for (const auto& listener : listeners_) listener->close();
    close_loop_handles();
    uv_run(&loop, UV_RUN_DEFAULT);
    throw;
  }
  std::vector<std::string> endpoints;
  for (const auto& listener : listeners_) {
    endpoints.push_back(listener->local_address());
    logger.log(LogLevel::Info, "listening on {}", endpoints.back());
  }
  run_state_.publish(endpoints);
  announce(config, endpoints, logger);

  // A peer that vanishes must not kill the process: a write then fails with EPIPE instead.
  std::signal(SIGPIPE, SIG_IGN);
  if (config.handle_signals) {
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&sigint_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&sigterm_));
  start_sweeping(sweep_interval_ms());
  start_systemd_notification();

  {
    dispatch::WorkerPool workers(shared);
    workers_ = &workers;
    if (place_.scoreboard != nullptr) {
      place_.scoreboard->slot(place_.slot).state.store(observe::ProcessSlot::State::Ready);
      uv_timer_start(&process_timer_, on_process_tick, kProcessTick, kProcessTick);
      uv_unref(reinterpret_cast<uv_handle_t*>(&process_timer_));
    }
    if (stop_requested_.load()) begin_drain();
    uv_run(&loop, UV_RUN_DEFAULT);
    workers_ = nullptr;
    // The loop ends once drained: every admitted request has ended or was abandoned, so every
    // worker left is idle and the pool joins at once.
  }
  logger.log(LogLevel::Info, "stopped");
}

void ServerCore::bind_listeners() {
  // A child of the supervisor shares its listening sockets with its siblings; one that holds
  // more than its share of connections leaves new ones to them (Scoreboard::within_share), or
  // whichever child happens to be awake takes a burst and keeps it for as long as the web
  // server keeps those connections.
  const Listener::Share share = [](void* self) noexcept {
    const Place& place = static_cast<ServerCore*>(self)->place_;
    return place.scoreboard->within_share(place.slot);
  };
  const Listener::Options options{.backlog = 1024,
                                  .reuse_port = config.reuse_port,
                                  .unix_mode = config.unix_socket_mode,
                                  .share = place_.scoreboard != nullptr ? share : nullptr};
  for (const Endpoint& endpoint : listen_endpoints_) {
    auto listener = std::make_unique<Listener>(
        endpoint,
        [](void* self, Listener& from) noexcept {
          static_cast<ServerCore*>(self)->accept_from(from);
        },
        this, logger);
    std::string step;
    const int rc = listener->open(loop, options, step);
    listeners_.push_back(std::move(listener));
    if (rc != 0) throw uv_error(rc, step + " " + endpoint.to_string());
  }
}

void ServerCore::assert_in_loop_thread() const noexcept {
#ifdef FCGIMUX_CHECK_THREADS
  if (std::this_thread::get_id() != loop_thread_) {
    std::fputs("fcgimux: code of the I/O thread ran on another thread\n", stderr);
    std::abort();
  }
#endif
}

void ServerCore::stop() noexcept {
  stop_requested_.store(true);
  uv_async_send(&stop_);
}

std::vector<std::string> ServerCore::local_endpoints() const {
  return run_state_.endpoints();
}

// --- connections -------------------------------------------------------------------------------

void ServerCore::accept_from(Listener& listener) noexcept { take_connection(listener, -1); }

void ServerCore::take_connection(Listener& listener, int queued_fd) noexcept {
  assert_in_loop_thread();
  try {
    auto made = std::make_unique<StreamConnection>(*this, next_connection_id(), listener.is_tcp());
    StreamConnection& accepted = *made;
    adopt(std::move(made));
    if (const int rc = accepted.accept(listener, queued_fd); rc != 0) {
      logger.log(LogLevel::Warning, "accept on {}: {}", listener.endpoint().to_string(),
                 uv_strerror(rc));
      // A connection whose handle never opened has no close callback to free it.
      if (!accepted.closed()) remove_connection(accepted);
      return;
    }
    Counters::add(counters.connections_accepted);
    const char* refusal = nullptr;
    if (connections_.size() > config.max_connections) {
      refusal = "max_connections reached";
    } else if (client_filter_.active()) {
      sockaddr_storage peer{};
      const bool known = accepted.peer_address(peer);
      if (!client_filter_.allows(known ? reinterpret_cast<const sockaddr*>(&peer) : nullptr)) {
        refusal = "peer not in the allowed clients (FCGI_WEB_SERVER_ADDRS)";
      }
    }
    if (refusal != nullptr) {
      Counters::add(counters.connections_refused);
      accepted.close(LogLevel::Warning, std::string("refused: ") + refusal);
    }
  } catch (const std::exception& e) {
    if (queued_fd >= 0) ::close(queued_fd);
    logger.log(LogLevel::Error, "accept on {}: {}", listener.endpoint().to_string(), e.what());
  }
}

void ServerCore::adopt(std::unique_ptr<Connection> connection) {
  connections_.push_front(std::move(connection));
  connections_.front()->list_position = connections_.begin();
  Counters::add(counters.connections_open);
}

void ServerCore::remove_connection(Connection& connection) noexcept {
  assert_in_loop_thread();
  Counters::sub(counters.connections_open);
  connections_.erase(connection.list_position);
  finish_if_drained();
}

bool ServerCore::admit(dispatch::Exchange& exchange) {
  assert_in_loop_thread();
  dispatch::PoolState& pool =
      *shared->pools[dispatch::choose_pool(config.pools, exchange.role(), exchange.params())];
  exchange.pool = &pool;
  if (pool.counters.in_flight.load(std::memory_order_relaxed) >= pool.max_requests) {
    if (pool.own_figures) Counters::add(pool.counters.overloaded);
    return false;
  }
  exchange.take_slot();
  exchange.admitted = true;
  exchange.admitted_at = std::chrono::steady_clock::now();
  Counters::add(counters.requests_admitted);
  Counters::raise_max(counters.requests_queued_max, Counters::add(counters.requests_queued));
  if (pool.own_figures) {
    Counters::add(pool.counters.admitted);
    Counters::raise_max(pool.counters.queued_max, Counters::add(pool.counters.queued));
  }
  pool.queue.push(&exchange);
  return true;
}

bool ServerCore::take_back(dispatch::Exchange& exchange) noexcept {
  dispatch::PoolState& pool = *exchange.pool;
  if (!pool.queue.remove(&exchange)) return false;
  Counters::sub(counters.requests_queued);
  Counters::add(counters.requests_aborted);
  if (pool.own_figures) Counters::sub(pool.counters.queued);
  return true;
}

std::size_t ServerCore::requests_in_flight() const noexcept {
  std::size_t total = 0;
  for (const auto& pool : shared->pools) {
    total += pool->counters.in_flight.load(std::memory_order_relaxed);
  }
  return total;
}

Stats ServerCore::stats() const { return pages.stats(); }

dispatch::Exchange* ServerCore::make_exchange(std::uint64_t connection_id, std::uint16_t id,
                                              protocol::Role role, bool keep_conn,
                                              dispatch::Output& output) {
  assert_in_loop_thread();
  if (spare_exchanges_.empty()) {
    return new dispatch::Exchange(exchange_context, connection_id, id, role, keep_conn, output);
  }
  dispatch::Exchange* exchange = spare_exchanges_.back().release();
  spare_exchanges_.pop_back();
  exchange->reuse(connection_id, id, role, keep_conn, output);
  return exchange;
}

void ServerCore::retire_exchange(dispatch::Exchange& exchange) noexcept {
  exchange.retire();
  if (spare_exchanges_.size() < spare_exchanges_.capacity()) {
    spare_exchanges_.emplace_back(&exchange);
  } else {
    delete &exchange;
  }
}

bool ServerCore::hold_pending_params(std::size_t bytes) noexcept {
  assert_in_loop_thread();
  if (bytes > config.pending_params_budget - pending_params_) return false;
  pending_params_ += bytes;
  Counters::add(counters.params_pending, bytes);
  return true;
}

void ServerCore::release_pending_params(std::size_t bytes) noexcept {
  pending_params_ -= bytes;
  Counters::sub(counters.params_pending, bytes);
}

void ServerCore::release_admission(dispatch::Exchange& exchange) noexcept {
  exchange.release_slot();
  finish_if_drained();
}

// --- a child of a server of several processes ---------------------------------------------------

void ServerCore::on_process_tick(uv_timer_t* timer) noexcept {
  auto* self = static_cast<ServerCore*>(timer->loop->data);
  using observe::ProcessSlot;
  ProcessSlot& slot = self->place_.scoreboard->slot(self->place_.slot);
  switch (slot.command.load()) {
    case ProcessSlot::Command::None:
      break;
    case ProcessSlot::Command::Drain:
      self->begin_drain();
      break;
    case ProcessSlot::Command::Cancel:
      self->begin_drain();
      if (!self->cancelled_by_supervisor_) {
        self->cancelled_by_supervisor_ = true;
        self->logger.log(LogLevel::Warning, "stopped again: cancelling every request");
        self->cancel_all();
      }
      break;
  }
  // Resident memory is read once a second: it takes a file read.
  if (++self->process_ticks_ % (1000 / kProcessTick) == 1) {
    slot.rss_bytes.store(resident_bytes(), std::memory_order_relaxed);
  }
  if (slot.state.load() != ProcessSlot::State::Ready) return;
  const Config& config = self->config;
  const std::uint64_t admitted = self->counters.requests_admitted.load(std::memory_order_relaxed);
  const std::uint64_t rss = slot.rss_bytes.load(std::memory_order_relaxed);
  std::string why;
  if (config.max_requests_per_process != 0 && admitted >= config.max_requests_per_process) {
    why = fmt::format("{} requests admitted, max_requests_per_process {}", admitted,
                      config.max_requests_per_process);
  } else if (config.max_rss_per_process != 0 && rss > config.max_rss_per_process) {
    why = fmt::format("resident memory {} bytes, max_rss_per_process {}", rss,
                      config.max_rss_per_process);
    slot.retiring_for_memory.store(true);
  }
  if (why.empty()) return;
  // The supervisor starts a replacement and, once it is ready, tells this one to drain.
  ProcessSlot::State ready = ProcessSlot::State::Ready;
  if (slot.state.compare_exchange_strong(ready, ProcessSlot::State::Retiring)) {
    self->logger.log(LogLevel::Info, "process {} to be recycled: {}", ::getpid(), why);
  }
}

// --- systemd -----------------------------------------------------------------------------------

void ServerCore::start_systemd_notification() noexcept {
  if (!config.notify_systemd) return;
  notify_systemd("READY=1");
  const std::uint64_t usec = systemd_watchdog_usec();
  if (usec == 0) return;
  // systemd's advice: ping at half the interval.
  const std::uint64_t interval = std::max<std::uint64_t>(1, usec / 2000);
  uv_timer_start(
      &watchdog_timer_, [](uv_timer_t*) noexcept { notify_systemd("WATCHDOG=1"); }, 0, interval);
  uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog_timer_));
}

// --- timeouts ----------------------------------------------------------------------------------

void ServerCore::start_sweeping(std::uint64_t interval_ms) noexcept {
  uv_timer_start(
      &sweep_timer_,
      [](uv_timer_t* timer) noexcept {
        auto* self = static_cast<ServerCore*>(timer->loop->data);
        if (self->notices.has_notices()) self->deliver_notices();
        const std::uint64_t now = uv_now(&self->loop);
        for (auto it = self->connections_.begin(); it != self->connections_.end();) {
          (*it++)->sweep(now);
        }
        self->pages.sweep();
      },
      interval_ms, interval_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(&sweep_timer_));
}

std::uint64_t ServerCore::sweep_interval_ms() const noexcept {
  // One timer for every connection: a sweep is a walk over the connection list, far cheaper
  // than a timer per connection (10,000 idle connections are 10,000 list steps a tick). The
  // tick is a quarter of the shortest timeout, so a timeout fires at most 25% late.
  using std::chrono::milliseconds;
  milliseconds shortest = config.idle_timeout;
  for (const auto& pool : shared->pools) {
    if (pool->request_timeout.count() > 0) shortest = std::min(shortest, pool->request_timeout);
    if (pool->slow_request_threshold.count() > 0) {
      shortest = std::min(shortest, pool->slow_request_threshold);
    }
  }
  const auto tick = std::clamp(shortest / 4, milliseconds(10), milliseconds(1000));
  return static_cast<std::uint64_t>(tick.count());
}

// --- the workers' messages ---------------------------------------------------------------------

void ServerCore::on_wake(uv_async_t* async) noexcept {
  static_cast<ServerCore*>(async->loop->data)->deliver_notices();
}

void ServerCore::deliver_notices() noexcept {
  assert_in_loop_thread();
  // uv_async_send coalesces wake-ups: take everything queued, not one notice.
  notices.drain(delivering_);
  to_flush_.clear();
  for (const dispatch::Notice& notice : delivering_) {
    Connection& connection = Connection::of(*notice.exchange);
    // An open connection stays alive until a later loop phase runs its close callback, so
    // the pointers collected here stay valid through this batch.
    if (connection.deliver(notice)) to_flush_.push_back(&connection);
  }
  for (Connection* connection : to_flush_) connection->flush();
}

// --- stopping ----------------------------------------------------------------------------------

void ServerCore::on_stop(uv_async_t* async) noexcept {
  static_cast<ServerCore*>(async->loop->data)->begin_drain();
}

void ServerCore::on_signal(uv_signal_t* signal, int signum) noexcept {
  auto* self = static_cast<ServerCore*>(signal->loop->data);
  if (self->draining_) {
    self->logger.log(LogLevel::Warning, "signal {} again: cancelling every request", signum);
    return self->cancel_all();
  }
  self->logger.log(LogLevel::Info, "signal {}: stopping", signum);
  self->begin_drain();
}

void ServerCore::begin_drain() noexcept {
  assert_in_loop_thread();
  if (draining_ || listeners_.empty()) return;
  draining_ = true;
  drain_started_ = uv_now(&loop);
  if (place_.scoreboard != nullptr) {
    place_.scoreboard->slot(place_.slot).state.store(observe::ProcessSlot::State::Leaving);
  }
  if (config.notify_systemd) notify_systemd("STOPPING=1");
  logger.log(LogLevel::Info, "draining: {} requests admitted, {} streams open, {} connections open",
             requests_in_flight(), counters.streams_open.load(std::memory_order_relaxed),
             connections_.size());
  // Connections the kernel already queued on a listener are served, not reset by its close.
  // (With SO_REUSEPORT, Linux's net.ipv4.tcp_migrate_req=1 also moves those that arrive
  // between this and the close to another process's listener.)
  for (const auto& listener : listeners_) {
    for (int fd = listener->take_queued(); fd >= 0; fd = listener->take_queued()) {
      take_connection(*listener, fd);
    }
    listener->close();
  }
  call_hook(logger, "on_drain", config.on_drain);
  uv_timer_start(
      &shutdown_timer_,
      [](uv_timer_t* timer) noexcept {
        auto* self = static_cast<ServerCore*>(timer->loop->data);
        self->logger.log(LogLevel::Warning,
                         "shutdown deadline passed: cancelling {} requests and {} streams",
                         self->requests_in_flight(),
                         self->counters.streams_open.load(std::memory_order_relaxed));
        self->cancel_all();
      },
      static_cast<std::uint64_t>(config.shutdown_timeout.count()), 0);
  // While draining, sweep often: fresh connections get only a short grace (Connection::drain).
  start_sweeping(std::min<std::uint64_t>(sweep_interval_ms(), 50));
  // drain() may close and free connections: step past each before calling it.
  for (auto it = connections_.begin(); it != connections_.end();) (*it++)->drain();
  finish_if_drained();
}

void ServerCore::cancel_all() noexcept {
  assert_in_loop_thread();
  for (auto it = connections_.begin(); it != connections_.end();) (*it++)->cancel_requests();
  // A handler that ignores its stop token gets a short grace to notice, then is abandoned.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&abandon_timer_)) != 0) return;
  uv_timer_start(
      &abandon_timer_,
      [](uv_timer_t* timer) noexcept {
        static_cast<ServerCore*>(timer->loop->data)->abandon_stuck();
      },
      static_cast<std::uint64_t>(kAbandonGrace.count()), 0);
}

void ServerCore::abandon_stuck() noexcept {
  // From here on a worker's notices go nowhere; those sent before are delivered as usual,
  // and free the exchanges that ended.
  notices.close();
  deliver_notices();
  // Every exchange still in a connection's table is now run by a worker that has not
  // returned, or held by a stream's handle the application has not let go of: closing its
  // connection stops it (a queued one is taken back), and its exchange moves to the shared
  // state, which the worker's thread (or the stream's handle) keeps alive.
  std::vector<dispatch::Exchange*> stuck;
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& connection = **it++;
    connection.close(LogLevel::Warning, "server stopping past the shutdown deadline");
    const std::size_t before = stuck.size();
    std::unique_ptr<ConnectionOutput> output = connection.abandon_requests(stuck);
    if (output && stuck.size() > before) {
      shared->abandoned_outputs.push_back(std::move(output));
    }
  }
  Counters::add(counters.requests_abandoned, stuck.size());
  for (dispatch::Exchange* exchange : stuck) {
    log_stuck(*exchange);
    shared->abandoned_exchanges.emplace_back(exchange);
  }
  const std::size_t detached = workers_ != nullptr ? workers_->abandon() : 0;
  if (!stuck.empty()) {
    logger.log(LogLevel::Error,
               "stopping without waiting for {} requests ({} worker threads "
               "detached)",
               stuck.size(), detached);
  }
  finish_if_drained();
}

void ServerCore::log_stuck(const dispatch::Exchange& exchange) noexcept {
  if (exchange.detached()) {
    logger.log(LogLevel::Error,
               "conn {} req {}: abandoned: stream still open, neither ended nor dropped after "
               "its stop",
               exchange.connection_id(), exchange.id());
    return;
  }
  const std::optional<observe::WorkerBoard::Runner> runner =
      exchange.pool != nullptr ? exchange.pool->board.runner(&exchange, exchange.admitted_at)
                               : std::nullopt;
  const auto since = runner ? runner->since : exchange.admitted_at;
  const auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - since);
  std::string uri;
  try {
    uri = observe::request_uri(exchange.params());
  } catch (const std::exception&) {
    // Out of memory: the line goes without the URI.
  }
  logger.log(LogLevel::Error,
             "conn {} req {}: abandoned: handler still running after {} ms on worker {}, "
             "ignoring its stop token: {}",
             exchange.connection_id(), exchange.id(), ran.count(),
             runner ? std::to_string(runner->index) : std::string("?"),
             uri.empty() ? std::string("(no URI in its params)") : observe::logfmt_value(uri));
}

void ServerCore::finish_if_drained() noexcept {
  if (!draining_ || requests_in_flight() != 0 ||
      !connections_.empty()) {
    return;
  }
  uv_timer_stop(&shutdown_timer_);
  uv_timer_stop(&abandon_timer_);
  uv_timer_stop(&sweep_timer_);
  uv_timer_stop(&watchdog_timer_);
  uv_timer_stop(&process_timer_);
  close_loop_handles();
}

}  // namespace fcgimux::io
