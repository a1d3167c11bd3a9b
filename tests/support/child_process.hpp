// SPDX-License-Identifier: MIT
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "socket.hpp"

namespace fcgimux::test {

// A child process whose standard output and error go to one pipe that the test reads. If it
// is still running on destruction it is killed (SIGKILL) and reaped, so a failing test never
// leaves it behind. Every wait is bounded by `timeout`.
// Threading: one thread at a time, except that one thread may read_line() while another calls
// pid(), signal() and wait() (they share no state), so that a program that logs a lot can be
// read as it writes while a test drives it.
class ChildProcess {
 public:
  // Starts the program at path argv[0] with `argv`, the test's environment, and default
  // signal dispositions. Throws TestError when it cannot be started.
  explicit ChildProcess(std::vector<std::string> argv,
                        std::chrono::milliseconds timeout = kTimeout);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of output, without its newline; nothing at the end of the output. Throws
  // TestError when no complete line arrives in time.
  std::optional<std::string> read_line();
  // The child's process id, for /proc.
  pid_t pid() const noexcept { return pid_; }
  // Sends `signal_number` to the child.
  void signal(int signal_number);
  // Waits for the child to exit and returns its exit code, or 128 + the signal that killed it
  // (as shells report it). Throws TestError when it does not exit in time.
  int wait();

 private:
  std::chrono::milliseconds timeout_;
  pid_t pid_ = -1;
  int output_ = -1;  // read end of the output pipe
  int exit_ = -1;    // pidfd: readable once the child has exited
  std::string pending_;
  bool reaped_ = false;
};

}  // namespace fcgimux::test
