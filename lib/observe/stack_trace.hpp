// SPDX-License-Identifier: MIT
#pragma once

// The stack of another thread of this process, taken while it runs: what php-fpm's slow log
// gives with a request's backtrace, for a worker thread.
//
// How: the caller sends the thread SIGURG. The handler, on that thread, records its return
// addresses with glibc's backtrace() into one buffer allocated before any signal (static
// storage: a signal arriving after its caller gave up never writes to freed memory), then
// posts a semaphore. The caller waits for it a bounded time, and symbolizes the addresses with
// backtrace_symbols() on its own thread. The handler does nothing else: it touches only that
// buffer, atomics and sem_post(), all async-signal-safe once backtrace() has loaded the
// unwinder, which enable_stack_traces() makes it do first, outside any handler.
//
// What the program sees: its worker thread is interrupted once, for microseconds. The handler
// is installed with SA_RESTART, so reads, writes and waits on locks go on; calls that Linux
// never restarts (poll, select, epoll_wait, nanosleep, which libstdc++'s sleep_for resumes)
// return EINTR as for any signal.
//
// Threading: Thread-safe. Captures are taken one at a time, process-wide.

#include <pthread.h>

#include <chrono>
#include <string>
#include <vector>

namespace fcgimux::observe {

// Installs the SIGURG handler, unless the program has one of its own for SIGURG: then it
// leaves it alone and returns false (no stacks). Returns true once installed; later calls
// return the first one's answer.
bool enable_stack_traces() noexcept;

// The frames of `thread` at the moment it takes the signal, symbolized as backtrace_symbols()
// writes them (demangled where it can), innermost first, without the handler's own frames.
// Empty when stacks are off, the thread did not answer within `wait`, or memory ran out.
// `thread` must be running for the whole call.
std::vector<std::string> stack_of(pthread_t thread, std::chrono::milliseconds wait);

}  // namespace fcgimux::observe
