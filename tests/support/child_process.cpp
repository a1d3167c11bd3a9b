// SPDX-License-Identifier: MIT
#include "child_process.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

extern char** environ;

namespace fcgimux::test {
namespace {

// Waits until `fd` is readable; throws TestError after `timeout`.
void wait_readable(int fd, std::chrono::milliseconds timeout, std::string_view what) {
  pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
  int ready = 0;
  do {
    ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) throw TestError(fmt::format("no {} within {} ms", what, timeout.count()));
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  std::array<int, 2> pipe_ends{};
  if (::pipe2(pipe_ends.data(), O_CLOEXEC) != 0) throw TestError("pipe2 failed");
  output_ = pipe_ends[0];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
  // The test process may block or ignore signals (a Server ignores SIGPIPE); the child starts
  // with a clean slate.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  sigaddset(&signals, SIGPIPE);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> arguments;
  for (std::string& argument : argv) arguments.push_back(argument.data());
  arguments.push_back(nullptr);
  const int error =
      posix_spawn(&pid_, arguments[0], &actions, &attributes, arguments.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_ends[1]);
  if (error != 0) {
    ::close(output_);
    throw TestError(fmt::format("cannot start {}: {}", argv[0], std::strerror(error)));
  }
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", so the system call is made directly.
  exit_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (exit_ < 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(output_);
    throw TestError(fmt::format("pidfd_open: {}", std::strerror(errno)));
  }
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::close(exit_);
  ::close(output_);
}

std::optional<std::string> ChildProcess::read_line() {
  for (;;) {
    if (const std::size_t newline = pending_.find('\n'); newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return line;
    }
    wait_readable(output_, timeout_, "line of output");
    std::array<char, 4096> buffer;
    const ssize_t count = ::read(output_, buffer.data(), buffer.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) throw TestError(fmt::format("read: {}", std::strerror(errno)));
    if (count == 0) {
      if (pending_.empty()) return std::nullopt;
      return std::exchange(pending_, {});
    }
    pending_.append(buffer.data(), static_cast<std::size_t>(count));
  }
}

void ChildProcess::signal(int signal_number) {
  if (::kill(pid_, signal_number) != 0) {
    throw TestError(fmt::format("kill: {}", std::strerror(errno)));
  }
}

int ChildProcess::wait() {
  wait_readable(exit_, timeout_, "exit of the child process");
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) {
    throw TestError(fmt::format("waitpid: {}", std::strerror(errno)));
  }
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace fcgimux::test
