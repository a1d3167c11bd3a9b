// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fcgimux::test {

// How long any blocking step of a test may wait for the other side before the test fails.
inline constexpr std::chrono::milliseconds kTimeout{5'000};

// Thrown by the test support code when the peer misbehaves or a bounded wait expires; Catch2
// reports it as a failure of the running test.
class TestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A connected stream socket whose every blocking call is bounded: a call that sees no
// progress for `timeout` throws TestError, so a stuck peer fails a test instead of hanging it.
// Owns its file descriptor. Threading: one thread at a time.
class Socket {
 public:
  // Connects to an endpoint as Server::local_endpoints() spells it: "tcp:HOST:PORT",
  // "tcp:[IPV6]:PORT" or "unix:PATH". Throws TestError when it cannot.
  static Socket connect(std::string_view endpoint, std::chrono::milliseconds timeout = kTimeout);

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  ~Socket();

  // Sends all of `bytes`. While the peer is not taking them, appends whatever it sends to
  // `received`, so that a peer answering while it reads cannot deadlock the exchange.
  void send_all(std::string_view bytes, std::string& received);
  // Waits for bytes and appends them to `received`. Returns false once the peer has closed
  // its side (and no byte is left to read).
  bool receive(std::string& received);
  // Closes the sending side (the peer reads end of stream).
  void shutdown_write();

  // For a peer that never reads: sends what the socket takes of `bytes` at once, reading
  // nothing, and returns how many it took (0 when its buffers are full).
  std::size_t send_some(std::string_view bytes);
  // Waits up to `timeout` for room to send, reading nothing; returns whether there is some.
  bool wait_writable(std::chrono::milliseconds timeout);
  // Shrinks the kernel's send and receive buffers to about `bytes`, so that a peer that stops
  // reading or writing is felt after little data.
  void shrink_buffers(int bytes);
  // Sets the kernel's receive buffer to about `bytes`: a peer that shrank its buffers to stop
  // reading grows it again to read quickly.
  void set_receive_buffer(int bytes);

 private:
  Socket(int fd, std::chrono::milliseconds timeout) noexcept : fd_(fd), timeout_(timeout) {}
  // Waits until `events` are ready; throws TestError after timeout_ without them.
  short wait(short events);
  // Reads once without blocking; false at end of stream.
  bool read_available(std::string& received);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  bool peer_closed_ = false;
};

}  // namespace fcgimux::test
