// SPDX-License-Identifier: MIT
#include "process/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/listener.hpp"
#include "io/server_core.hpp"
#include "io/systemd.hpp"
#include "io/uv_error.hpp"

namespace fcgimux::process {

namespace {

using observe::ProcessSlot;
using std::chrono::milliseconds;

// How often the supervisor reads the scoreboard when nothing wakes it.
constexpr milliseconds kTick{50};
// A death this soon after the start counts as quick: the next start waits.
constexpr milliseconds kQuickDeath{1'000};
constexpr milliseconds kFirstBackOff{100};
constexpr milliseconds kMostBackOff{10'000};
// After the shutdown deadline, a child gets its abandon grace (a second: ownership rule 5 in
// server.hpp) and this much more to exit before it is killed.
constexpr milliseconds kKillGrace{1'500};
// The self-pipe's byte for stop(); a signal writes its number.
constexpr unsigned char kStopByte = 0xFF;

// The self-pipe's write end, for the signal handlers.
std::atomic<int> signal_pipe{-1};

extern "C" void on_supervisor_signal(int signum) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(signum);
  [[maybe_unused]] const ssize_t n = ::write(signal_pipe.load(), &byte, 1);
  errno = saved;
}

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Installs the supervisor's handlers while alive, and puts back what was there before.
class SignalRoute {
 public:
  SignalRoute(bool active, int pipe) : active_(active) {
    if (!active_) return;
    signal_pipe.store(pipe);
    struct sigaction action {};
    action.sa_handler = on_supervisor_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      ::sigaction(kSignals[i], &action, &previous_[i]);
    }
  }
  ~SignalRoute() {
    if (!active_) return;
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      ::sigaction(kSignals[i], &previous_[i], nullptr);
    }
    signal_pipe.store(-1);
  }
  SignalRoute(const SignalRoute&) = delete;
  SignalRoute& operator=(const SignalRoute&) = delete;

  // In a child: the default dispositions again (its server installs its own for SIGINT and
  // SIGTERM), and SIGHUP ignored: it is the supervisor's.
  static void reset_in_child() noexcept {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    action.sa_handler = SIG_IGN;
    ::sigaction(SIGHUP, &action, nullptr);
  }

 private:
  bool active_;
  struct sigaction previous_[std::size(kSignals)] {};
};

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return name != nullptr ? fmt::format("signal SIG{}", name)
                           : fmt::format("signal {}", WTERMSIG(status));
  }
  return fmt::format("exit status {}", WEXITSTATUS(status));
}

std::int64_t unix_ms() noexcept {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long ms(std::chrono::steady_clock::duration d) noexcept {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

}  // namespace

Supervisor::Supervisor(Config config, Handler& handler)
    : config_(io::validated(std::move(config))),
      handler_(handler),
      logger_(config_.log_level, config_.log),
      // Two slots a number: a child and its replacement; two more for a replacement that is
      // itself retiring while the child it replaced still drains.
      scoreboard_(2 * static_cast<std::size_t>(config_.processes) + 2, 1 + config_.pools.size()),
      numbers_(config_.processes) {
  std::string error;
  std::optional<std::vector<io::Endpoint>> endpoints = io::resolve_listen(config_.listen, error);
  if (!endpoints) throw std::invalid_argument(error);
  endpoints_to_bind_ = std::move(*endpoints);
  pool_shapes_.push_back(PoolStats{.name = config_.pool_name,
                                   .workers = io::worker_count(config_.workers),
                                   .max_requests = config_.max_requests});
  for (const Pool& pool : config_.pools) {
    pool_shapes_.push_back(
        PoolStats{.name = pool.name, .workers = pool.workers, .max_requests = pool.max_requests});
  }
  int pipe[2];
  if (::pipe2(pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2 for the supervisor");
  }
  wake_read_ = pipe[0];
  wake_write_ = pipe[1];
}

Supervisor::~Supervisor() {
  stop();
  run_state_.wait_ended();
  ::close(wake_read_);
  ::close(wake_write_);
}

void Supervisor::stop() noexcept {
  stop_requested_.store(true);
  [[maybe_unused]] const ssize_t n = ::write(wake_write_, &kStopByte, 1);
}

std::vector<std::string> Supervisor::local_endpoints() const { return run_state_.endpoints(); }

Stats Supervisor::stats() const { return scoreboard_.stats(pool_shapes_, pool_shapes_.size() > 1); }

void Supervisor::run() {
  if (run_called_.exchange(true)) throw std::logic_error("Server::run() called twice");
  const util::RunState::Running running(run_state_);

  // The listeners are bound on a loop that never runs: it only holds their handles, so that
  // binding, options and the stale Unix socket check are the single server's, and so that
  // closing them at the end removes a Unix socket file this process created.
  uv_loop_t loop{};
  if (const int rc = uv_loop_init(&loop); rc != 0) throw io::uv_error(rc, "uv_loop_init");
  std::vector<std::unique_ptr<io::Listener>> listeners;
  struct Unbind {
    uv_loop_t& loop;
    std::vector<std::unique_ptr<io::Listener>>& listeners;
    ~Unbind() {
      for (const auto& listener : listeners) listener->close();
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    }
  } unbind{loop, listeners};
  const io::Listener::Options options{
      .backlog = 1024, .reuse_port = config_.reuse_port, .unix_mode = config_.unix_socket_mode};
  std::vector<std::string> addresses;
  for (const io::Endpoint& endpoint : endpoints_to_bind_) {
    listeners.push_back(std::make_unique<io::Listener>(
        endpoint, [](void*, io::Listener&) noexcept {}, this, logger_));
    std::string step;
    if (const int rc = listeners.back()->open(loop, options, step); rc != 0) {
      throw io::uv_error(rc, step + " " + endpoint.to_string());
    }
    child_listen_.push_back(fmt::format("fd:{}", listeners.back()->fd()));
    addresses.push_back(listeners.back()->local_address());
    logger_.log(LogLevel::Info, "listening on {}", addresses.back());
  }
  run_state_.publish(addresses);
  io::announce(config_, addresses, logger_);
  const int bind_loop_fd = uv_backend_fd(&loop);

  std::signal(SIGPIPE, SIG_IGN);
  const SignalRoute signals(config_.handle_signals, wake_write_);
  supervisor_pid_ = ::getpid();
  logger_.log(LogLevel::Info, "supervising {} processes", config_.processes);
  for (unsigned number = 0; number < config_.processes && !stop_requested_.load(); ++number) {
    spawn(number, bind_loop_fd);
  }
  const std::uint64_t watchdog_usec = config_.notify_systemd ? io::systemd_watchdog_usec() : 0;
  const auto watchdog_every = std::chrono::microseconds(watchdog_usec / 2);
  Clock::time_point next_watchdog = Clock::now() + watchdog_every;
  unsigned stops = 0;

  std::vector<pollfd> polled;
  for (;;) {
    polled.assign(1, pollfd{.fd = wake_read_, .events = POLLIN, .revents = 0});
    for (const Child& child : children_) {
      polled.push_back(pollfd{.fd = child.pidfd, .events = POLLIN, .revents = 0});
    }
    const int ready = ::poll(polled.data(), polled.size(), static_cast<int>(kTick.count()));
    if (ready < 0 && errno != EINTR) {
      logger_.log(LogLevel::Error, "supervisor: poll: {}", std::strerror(errno));
    }
    unsigned char bytes[64];
    for (ssize_t n; (n = ::read(wake_read_, bytes, sizeof bytes)) > 0;) {
      for (ssize_t i = 0; i < n; ++i) {
        if (bytes[i] == SIGHUP) {
          if (stopping_ || !rolling_.empty()) continue;
          logger_.log(LogLevel::Info, "signal {}: replacing every process, one by one", SIGHUP);
          rolling_since_ = Clock::now();
          for (unsigned number = 0; number < config_.processes; ++number) {
            rolling_.push_back(number);
          }
        } else {
          if (bytes[i] != kStopByte) logger_.log(LogLevel::Info, "signal {}: stopping", bytes[i]);
          ++stops;
        }
      }
    }
    if (stop_requested_.load() && stops == 0) stops = 1;
    // Before reaping: a child that drained on the same SIGTERM (systemd signals the whole
    // group) and exited in this round is then one that was asked to leave, not a death.
    if (stops > 0 && !stopping_) begin_stop();
    // Reap by pid rather than by the pollfd: a child is reaped once whichever way it is seen.
    for (std::size_t i = 0; i < children_.size();) {
      int status = 0;
      const pid_t pid = ::waitpid(children_[i].pid, &status, WNOHANG);
      if (pid == children_[i].pid) {
        reap(children_[i], status);
        children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    if (stops > 1 && !cancelled_) {
      cancelled_ = true;
      logger_.log(LogLevel::Warning, "stopped again: cancelling every request of every process");
      command_all(ProcessSlot::Command::Cancel);
    }
    if (stopping_) {
      if (children_.empty()) break;
      if (!killed_ && Clock::now() >= kill_at_) {
        killed_ = true;
        for (const Child& child : children_) {
          logger_.log(LogLevel::Error, "process {} still running past the shutdown deadline: killed",
                      child.pid);
          ::kill(child.pid, SIGKILL);
        }
      }
      continue;
    }
    reconcile(bind_loop_fd);
    if (watchdog_usec != 0 && Clock::now() >= next_watchdog) {
      io::notify_systemd("WATCHDOG=1");
      next_watchdog = Clock::now() + watchdog_every;
    }
  }
  logger_.log(LogLevel::Info, "stopped");
}

void Supervisor::begin_stop() {
  stopping_ = true;
  rolling_.clear();
  kill_at_ = Clock::now() + config_.shutdown_timeout + kKillGrace;
  if (config_.notify_systemd) io::notify_systemd("STOPPING=1");
  logger_.log(LogLevel::Info, "stopping {} processes", children_.size());
  for (Child& child : children_) child.leaving = true;
  command_all(ProcessSlot::Command::Drain);
}

void Supervisor::command_all(ProcessSlot::Command command) {
  for (const Child& child : children_) slot_of(child).command.store(command);
}

std::optional<std::size_t> Supervisor::free_slot() const noexcept {
  for (std::size_t i = 0; i < scoreboard_.slots(); ++i) {
    const bool taken = std::any_of(children_.begin(), children_.end(),
                                   [i](const Child& child) { return child.slot == i; });
    if (!taken) return i;
  }
  return std::nullopt;
}

void Supervisor::spawn(unsigned number, int bind_loop_fd) {
  const std::optional<std::size_t> slot = free_slot();
  if (!slot) return;  // every slot holds a child still draining: the next tick tries again
  scoreboard_.claim(*slot, number);
  scoreboard_.slot(*slot).started_ms.store(unix_ms());
  // Whatever the child's stdio buffers hold now would be written twice.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) serve_as_child(*slot, number, bind_loop_fd);
  if (pid < 0) {
    const int error = errno;
    scoreboard_.release(*slot);
    numbers_[number].next_start = Clock::now() + kMostBackOff;
    logger_.log(LogLevel::Error, "fork for process number {}: {}; trying again in {} ms", number,
                std::strerror(error), kMostBackOff.count());
    return;
  }
  scoreboard_.slot(*slot).pid.store(pid);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  children_.push_back(Child{.pid = pid,
                            .pidfd = pidfd,
                            .slot = *slot,
                            .number = number,
                            .started = Clock::now(),
                            .ready = false,
                            .leaving = false,
                            .replace = false});
  logger_.log(LogLevel::Info, "process {} (number {}) started", pid, number);
}

void Supervisor::serve_as_child(std::size_t slot, unsigned number, int bind_loop_fd) noexcept {
  SignalRoute::reset_in_child();
  // Dies with the supervisor; if it is already gone, this child must not serve.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != supervisor_pid_) ::_exit(1);
  // What only the supervisor uses: its pipe, its children's pidfds, the binding loop.
  ::close(wake_read_);
  ::close(wake_write_);
  for (const Child& child : children_) ::close(child.pidfd);
  if (bind_loop_fd >= 0) ::close(bind_loop_fd);
  scoreboard_.slot(slot).pid.store(::getpid());
  int status = 0;
  try {
    if (config_.on_process_start) config_.on_process_start(number);
    Config config = config_;
    config.listen = child_listen_;
    config.processes = 1;
    config.notify_systemd = false;
    config.on_process_start = {};
    config.on_listening = {};
    io::ServerCore server(std::move(config), handler_, {.scoreboard = &scoreboard_, .slot = slot});
    server.run();
  } catch (const std::exception& error) {
    logger_.log(LogLevel::Error, "process {} (number {}): {}", ::getpid(), number, error.what());
    status = 1;
  } catch (...) {
    logger_.log(LogLevel::Error, "process {} (number {}): an exception that is no std::exception",
                ::getpid(), number);
    status = 1;
  }
  std::fflush(nullptr);
  // Not exit(): the supervisor's objects, copied by the fork, are not this process's to end
  // (closing its listeners would remove a Unix socket file every process serves on).
  ::_exit(status);
}

void Supervisor::reap(Child& child, int status) {
  ::close(child.pidfd);
  const ProcessSlot& slot = slot_of(child);
  const std::uint64_t in_flight =
      slot.counters.requests_running.load(std::memory_order_relaxed) +
      slot.counters.requests_queued.load(std::memory_order_relaxed);
  scoreboard_.release(child.slot);
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (child.leaving || stopping_) {
    logger_.log(clean ? LogLevel::Info : LogLevel::Warning, "process {} (number {}) ended: {}",
                child.pid, child.number, describe_exit(status));
    return;
  }
  scoreboard_.restarts().fetch_add(1, std::memory_order_relaxed);
  Number& number = numbers_[child.number];
  const auto lived = Clock::now() - child.started;
  if (!child.ready || lived < kQuickDeath) {
    const milliseconds delay = back_off(number);
    logger_.log(LogLevel::Warning,
                "process {} (number {}) died {} ms after it started, {}, {} requests in flight: "
                "restarting in {} ms",
                child.pid, child.number, ms(lived), describe_exit(status), in_flight,
                delay.count());
    return;
  }
  number.quick_deaths = 0;
  number.next_start = Clock::now();
  logger_.log(LogLevel::Warning,
              "process {} (number {}) died: {}, {} requests in flight; restarting", child.pid,
              child.number, describe_exit(status), in_flight);
}

milliseconds Supervisor::back_off(Number& number) {
  ++number.quick_deaths;
  const milliseconds delay =
      std::min(kMostBackOff, kFirstBackOff * (1u << std::min(number.quick_deaths - 1, 7u)));
  number.next_start = Clock::now() + delay;
  return delay;
}

void Supervisor::reconcile(int bind_loop_fd) {
  const Clock::time_point now = Clock::now();
  for (Child& child : children_) {
    if (!child.ready && slot_of(child).state.load() != ProcessSlot::State::Starting) {
      child.ready = true;
    }
  }
  // The rolling restart's next number: its children started before the SIGHUP are to be
  // replaced; once none is left serving and a newer one is ready, the next number's turn.
  while (!rolling_.empty()) {
    bool old_serving = false;
    bool new_ready = false;
    for (Child& child : children_) {
      if (child.number != rolling_.front() || child.leaving) continue;
      if (child.started < rolling_since_) {
        child.replace = true;
        old_serving = true;
      } else if (child.ready) {
        new_ready = true;
      }
    }
    if (old_serving || !new_ready) break;
    rolling_.erase(rolling_.begin());
  }
  for (unsigned number = 0; number < config_.processes; ++number) {
    Child* serving = nullptr;
    Child* replacement = nullptr;
    for (Child& child : children_) {
      if (child.number != number || child.leaving) continue;
      const bool retiring =
          child.replace || slot_of(child).state.load() == ProcessSlot::State::Retiring;
      (retiring && serving == nullptr ? serving : replacement) = &child;
    }
    if (serving != nullptr && replacement == nullptr) {
      // A child to replace, none started yet. One past its memory limit within a second of its
      // start (a max_rss_per_process below what a fresh process holds) backs off as a quick
      // death. (Past max_requests_per_process that soon is only a busy service.)
      if (!serving->backed_off && now - serving->started < kQuickDeath &&
          slot_of(*serving).retiring_for_memory.load()) {
        serving->backed_off = true;
        const milliseconds delay = back_off(numbers_[number]);
        logger_.log(LogLevel::Warning,
                    "process {} (number {}) passed max_rss_per_process {} ms after it started: "
                    "replacing it in {} ms (is the limit below what a fresh process needs?)",
                    serving->pid, number, ms(now - serving->started), delay.count());
      }
      if (now >= numbers_[number].next_start) spawn(number, bind_loop_fd);
    } else if (serving != nullptr && replacement->ready) {
      // Its replacement is ready: the old one leaves.
      if (!serving->backed_off) numbers_[number].quick_deaths = 0;
      serving->leaving = true;
      slot_of(*serving).command.store(ProcessSlot::Command::Drain);
      scoreboard_.recycles().fetch_add(1, std::memory_order_relaxed);
      logger_.log(LogLevel::Info, "process {} (number {}) recycled: process {} took over",
                  serving->pid, number, replacement->pid);
    } else if (serving == nullptr && replacement == nullptr) {
      if (now >= numbers_[number].next_start) spawn(number, bind_loop_fd);
    }
  }
  if (!announced_ready_) {
    const std::size_t ready = static_cast<std::size_t>(std::count_if(
        children_.begin(), children_.end(), [](const Child& child) { return child.ready; }));
    if (ready >= config_.processes) {
      announced_ready_ = true;
      logger_.log(LogLevel::Info, "{} processes ready", ready);
      if (config_.notify_systemd) {
        io::notify_systemd(fmt::format("READY=1\nMAINPID={}", ::getpid()));
      }
    }
  }
}

}  // namespace fcgimux::process
