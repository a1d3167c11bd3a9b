// SPDX-License-Identifier: MIT
#include "observe/stack_trace.hpp"

#include <cxxabi.h>
#include <execinfo.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

namespace fcgimux::observe {

namespace {

constexpr int kSignal = SIGURG;
constexpr int kMaxFrames = 64;
// The frames of the capture itself, innermost first: the handler, and the signal trampoline
// the kernel returns through (glibc's __restore_rt).
constexpr int kOwnFrames = 2;

// A capture's states. Idle → Asked by the caller; Asked → Taking → Taken by the handler;
// Taken → Idle by the caller once it has read the frames, or Asked → Idle when it gives up.
enum State : int { kIdle, kAsked, kTaking, kTaken };

struct Capture {
  std::atomic<int> state{kIdle};
  pthread_t target{};  // written before state becomes kAsked, read by the handler after
  void* frames[kMaxFrames]{};
  int depth = 0;  // written by the handler before state becomes kTaken
  sem_t taken;    // posted by the handler once per capture
};

Capture capture;
std::mutex capture_mutex;  // one caller at a time
std::atomic<bool> enabled{false};

void on_stack_signal(int) noexcept {
  const int saved_errno = errno;
  int asked = kAsked;
  // A SIGURG for another reason (out-of-band data) or another thread is not ours to answer.
  if (capture.state.load(std::memory_order_acquire) == kAsked &&
      pthread_equal(capture.target, pthread_self()) != 0 &&
      capture.state.compare_exchange_strong(asked, kTaking, std::memory_order_acq_rel)) {
    capture.depth = backtrace(capture.frames, kMaxFrames);
    capture.state.store(kTaken, std::memory_order_release);
    sem_post(&capture.taken);
  }
  errno = saved_errno;
}

// "binary(_ZN3foo3barEv+0x1c) [0x...]" with the mangled name demangled.
std::string demangled(std::string_view frame) {
  const std::size_t open = frame.find('(');
  const std::size_t plus = frame.find('+', open);
  if (open == std::string_view::npos || plus == std::string_view::npos ||
      frame.substr(open + 1, 2) != "_Z") {
    return std::string(frame);
  }
  const std::string mangled(frame.substr(open + 1, plus - open - 1));
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status), &std::free);
  if (status != 0 || !name) return std::string(frame);
  return std::string(frame.substr(0, open + 1)) + name.get() + std::string(frame.substr(plus));
}

}  // namespace

bool enable_stack_traces() noexcept {
  static const bool installed = [] {
    struct sigaction current {};
    if (sigaction(kSignal, nullptr, &current) != 0) return false;
    if ((current.sa_flags & SA_SIGINFO) != 0 ||
        (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN)) {
      return false;
    }
    // The first backtrace() loads libgcc's unwinder (dlopen, malloc): here, not in a handler.
    void* warm_up[1];
    backtrace(warm_up, 1);
    if (sem_init(&capture.taken, 0, 0) != 0) return false;
    struct sigaction action {};
    action.sa_handler = on_stack_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(kSignal, &action, nullptr) == 0;
  }();
  enabled.store(installed, std::memory_order_release);
  return installed;
}

std::vector<std::string> stack_of(pthread_t thread, std::chrono::milliseconds wait) {
  if (!enabled.load(std::memory_order_acquire)) return {};
  const std::lock_guard lock(capture_mutex);
  // An earlier capture whose caller gave up while its handler ran has finished since: its
  // post is still counted.
  if (int taken = kTaken;
      capture.state.compare_exchange_strong(taken, kIdle, std::memory_order_acq_rel)) {
    while (sem_trywait(&capture.taken) == 0) {
    }
  }
  // Still running, very late: no stack this time.
  if (capture.state.load(std::memory_order_acquire) != kIdle) return {};

  capture.target = thread;
  capture.state.store(kAsked, std::memory_order_release);
  if (pthread_kill(thread, kSignal) != 0) {
    capture.state.store(kIdle, std::memory_order_release);
    return {};
  }
  timespec deadline{};
  clock_gettime(CLOCK_REALTIME, &deadline);
  const auto nanoseconds =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count() + deadline.tv_nsec;
  deadline.tv_sec += static_cast<time_t>(nanoseconds / 1'000'000'000);
  deadline.tv_nsec = static_cast<long>(nanoseconds % 1'000'000'000);
  int rc = 0;
  while ((rc = sem_timedwait(&capture.taken, &deadline)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    // No answer in time: withdraw the request, unless the handler has just taken it (then the
    // next call finds it Taken and drains its post).
    int asked = kAsked;
    capture.state.compare_exchange_strong(asked, kIdle, std::memory_order_acq_rel);
    return {};
  }
  const int depth = capture.depth;
  std::vector<std::string> frames;
  if (depth > kOwnFrames) {
    const std::unique_ptr<char*, decltype(&std::free)> symbols(
        backtrace_symbols(capture.frames + kOwnFrames, depth - kOwnFrames), &std::free);
    if (symbols) {
      try {
        for (int i = 0; i < depth - kOwnFrames; ++i) frames.push_back(demangled(symbols.get()[i]));
      } catch (...) {
        frames.clear();
      }
    }
  }
  capture.state.store(kIdle, std::memory_order_release);
  return frames;
}

}  // namespace fcgimux::observe
