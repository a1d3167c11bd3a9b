// SPDX-License-Identifier: MIT
// The ways an application is started (FastCGI 1.0 §2.2 and what came after it): with its
// listening socket on descriptor 0 by spawn-fcgi or cgi-fcgi -start, by systemd socket
// activation (LISTEN_FDS on descriptor 3), telling systemd when it is ready and when it stops
// (NOTIFY_SOCKET); and what it does with the Unix socket file it creates: the mode asked for,
// a stale file replaced, a live one left alone.

#include <fcntl.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "echo_handler.hpp"
#include "echo_listing.hpp"
#include "fcgi_client.hpp"
#include "log_capture.hpp"
#include "temp_dir.hpp"
#include "test_server.hpp"
#include "web_peer.hpp"

namespace fcgimux::test {
namespace {

constexpr std::string_view kSpawnFcgi = "/usr/bin/spawn-fcgi";
constexpr std::string_view kCgiFcgi = "/usr/bin/cgi-fcgi";

// Sends one request to `endpoint` and checks the echo of its params.
void check_serves(const std::string& endpoint) {
  CAPTURE(endpoint);
  FcgiClient client(endpoint);
  const Params params{{"QUERY_STRING", ""}, {"SCRIPT_NAME", "/started"}};
  const Response response = client.request(params);
  REQUIRE(response.end.has_value());
  CHECK(response.end->protocol_status == protocol::ProtocolStatus::RequestComplete);
  CHECK(parse_cgi_response(response.out).body == expected_listing(params));
}

// A socket file descriptor, closed on destruction.
// Threading: one thread at a time.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {
    if (fd_ < 0) throw TestError(fmt::format("socket: {}", std::strerror(errno)));
  }
  Descriptor(Descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Descriptor& operator=(Descriptor&&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A new socket for a child to inherit: not close-on-exec, and at descriptor 10 or above, so
// that it is not where the child is to find it (descriptor 3 for systemd's sockets).
Descriptor inheritable_socket(int domain, int type) {
  const Descriptor created(::socket(domain, type, 0));
  return Descriptor(::fcntl(created.get(), F_DUPFD, 10));
}

sockaddr_un unix_address(std::string_view path, socklen_t& length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) throw TestError("unix path too long");
  path.copy(address.sun_path, path.size());
  // "@name" is Linux's abstract namespace: a leading NUL byte, no terminating one.
  if (path.starts_with('@')) address.sun_path[0] = '\0';
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                  (path.starts_with('@') ? 0 : 1));
  return address;
}

// A listening Unix stream socket at `path`, created by the test as a socket manager would.
// A child may inherit it (see inheritable_socket()).
Descriptor unix_listener(const std::string& path) {
  Descriptor socket = inheritable_socket(AF_UNIX, SOCK_STREAM);
  socklen_t length = 0;
  const sockaddr_un address = unix_address(path, length);
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      ::listen(socket.get(), 16) != 0) {
    throw TestError(fmt::format("bind {}: {}", path, std::strerror(errno)));
  }
  return socket;
}

// A listening TCP socket on a free loopback port; `endpoint` receives "tcp:127.0.0.1:PORT".
// A child may inherit it (see inheritable_socket()).
Descriptor tcp_listener(std::string& endpoint) {
  Descriptor socket = inheritable_socket(AF_INET, SOCK_STREAM);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), size) != 0 ||
      ::listen(socket.get(), 16) != 0 ||
      ::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    throw TestError(fmt::format("tcp listener: {}", std::strerror(errno)));
  }
  endpoint = fmt::format("tcp:127.0.0.1:{}", ntohs(address.sin_port));
  return socket;
}

// --- descriptor 0: spawn-fcgi and cgi-fcgi -------------------------------------------------------

TEST_CASE("spawn-fcgi starts echo with its listening socket on descriptor 0",
          "[integration][startup]") {
  if (!installed(kSpawnFcgi, "spawn-fcgi")) return;
  const TempDir dir;
  const bool unix_socket = GENERATE(true, false);
  CAPTURE(unix_socket);
  std::vector<std::string> argv{std::string(kSpawnFcgi), "-n"};
  std::string expected;
  if (unix_socket) {
    const std::string path = (dir.path() / "echo.sock").string();
    argv.insert(argv.end(), {"-s", path});
    expected = "unix:" + path;
  } else {
    const int port = free_port();
    argv.insert(argv.end(), {"-a", "127.0.0.1", "-p", std::to_string(port)});
    expected = fmt::format("tcp:127.0.0.1:{}", port);
  }
  // -n: spawn-fcgi binds the socket, puts it on descriptor 0 and execs echo in its place.
  argv.insert(argv.end(), {"--", FCGIMUX_ECHO_BINARY});
  ChildProcess echo(argv);
  // echo, started without --listen, found the socket on descriptor 0 and announces it.
  CHECK(announced_address(echo) == expected);
  check_serves(expected);
  check_serves(expected);
  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

// A process that became this process's child when its parent exited: the orphan of a program
// that starts a server and exits (cgi-fcgi -start), adopted because this process is a child
// subreaper (prctl(2) PR_SET_CHILD_SUBREAPER) while a Subreaper lives. Killed and reaped on
// destruction unless wait() reaped it.
class Adopted {
 public:
  explicit Adopted(pid_t pid)
      : pid_(pid), exit_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {
    if (exit_ < 0) throw TestError(fmt::format("pidfd_open: {}", std::strerror(errno)));
  }
  ~Adopted() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(exit_);
  }
  Adopted(const Adopted&) = delete;
  Adopted& operator=(const Adopted&) = delete;

  void signal(int signal_number) { ::kill(pid_, signal_number); }
  // Waits (at most kTimeout) for the exit, and returns the exit code or 128 + the signal.
  int wait() {
    pollfd entry{.fd = exit_, .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, static_cast<int>(kTimeout.count())) != 1) {
      throw TestError("the adopted process did not exit");
    }
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) throw TestError("waitpid failed");
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_;
  int exit_;
  bool reaped_ = false;
};

// Makes this process a child subreaper for its life.
class Subreaper {
 public:
  Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
  ~Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); }
  Subreaper(const Subreaper&) = delete;
  Subreaper& operator=(const Subreaper&) = delete;
};

// The children of this process whose command name (/proc/PID/stat) is `name`.
std::vector<pid_t> children_named(std::string_view name) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    const std::string stat(std::istreambuf_iterator<char>(in), {});
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so the last ')' ends it.
    const std::size_t open = stat.find('(');
    const std::size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 >= stat.size()) {
      continue;
    }
    const std::string_view comm = std::string_view(stat).substr(open + 1, close - open - 1);
    const long parent = std::strtol(stat.c_str() + close + 4, nullptr, 10);
    if (comm == name && parent == ::getpid()) found.push_back(std::stoi(pid));
  }
  return found;
}

TEST_CASE("cgi-fcgi -start starts echo with its listening socket on descriptor 0",
          "[integration][startup]") {
  if (!installed(kCgiFcgi, "libfcgi-bin")) return;
  const TempDir dir;
  const std::string path = (dir.path() / "echo.sock").string();
  const Subreaper subreaper;
  // cgi-fcgi binds the socket, forks echo with it on descriptor 0 and descriptors 1 and 2
  // closed (as FastCGI 1.0 §2.2 says), and exits: the socket listens once it has exited.
  ChildProcess cgi_fcgi({std::string(kCgiFcgi), "-start", "-connect", path, FCGIMUX_ECHO_BINARY});
  REQUIRE(cgi_fcgi.wait() == 0);
  const std::vector<pid_t> orphans = children_named("echo");
  REQUIRE(orphans.size() == 1);
  Adopted echo(orphans.front());

  check_serves("unix:" + path);
  // Bad input makes the server log a warning, which with descriptor 2 closed must go nowhere
  // harmful; the server goes on.
  {
    FcgiClient client("unix:" + path);
    client.send_raw(std::string(8, '\x7f'));
    CHECK_FALSE(client.read_record().has_value());
  }
  check_serves("unix:" + path);
  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

// --- systemd -------------------------------------------------------------------------------------

// Starts echo (with `arguments`) as systemd socket activation does: `listener` on descriptor 3,
// LISTEN_FDS=1 and LISTEN_PID set to echo's own pid. A bash wrapper moves the descriptor and
// learns the pid ($$), then execs echo, which keeps that pid.
ChildProcess activated_echo(const Descriptor& listener, const std::vector<std::string>& arguments,
                            std::string_view listen_pid = "$$") {
  std::vector<std::string> argv{
      "/bin/bash", "-c",
      fmt::format("exec 3<&{0} {0}<&-; export LISTEN_FDS=1 LISTEN_PID={1}; exec \"$0\" \"$@\"",
                  listener.get(), listen_pid),
      FCGIMUX_ECHO_BINARY};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return ChildProcess(argv);
}

TEST_CASE("echo takes the socket systemd passes on descriptor 3 (LISTEN_FDS, LISTEN_PID)",
          "[integration][startup]") {
  const TempDir dir;
  const bool unix_socket = GENERATE(true, false);
  const std::vector<std::string> arguments =
      GENERATE(std::vector<std::string>{}, std::vector<std::string>{"--listen", "systemd"});
  CAPTURE(unix_socket, arguments);
  std::string endpoint;
  std::optional<Descriptor> listener;
  if (unix_socket) {
    const std::string path = (dir.path() / "activated.sock").string();
    listener.emplace(unix_listener(path));
    endpoint = "unix:" + path;
  } else {
    listener.emplace(tcp_listener(endpoint));
  }
  ChildProcess echo = activated_echo(*listener, arguments);
  listener.reset();  // only echo holds the socket now
  CHECK(announced_address(echo) == endpoint);
  check_serves(endpoint);
  echo.signal(SIGTERM);
  CHECK(echo.wait() == 0);
}

TEST_CASE("echo --listen systemd fails when LISTEN_PID names another process",
          "[integration][startup]") {
  std::string endpoint;
  const Descriptor listener = tcp_listener(endpoint);
  ChildProcess echo = activated_echo(listener, {"--listen", "systemd"}, "1");
  std::string output;
  while (const std::optional<std::string> line = echo.read_line()) output += *line + "\n";
  CHECK_THAT(output, Catch::Contains("systemd passed no socket"));
  CHECK(echo.wait() == 1);
}

// A Unix datagram socket bound where NOTIFY_SOCKET will point, as systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(std::string address)
      : address_(std::move(address)), socket_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    socklen_t length = 0;
    const sockaddr_un bound = unix_address(address_, length);
    if (::bind(socket_.get(), reinterpret_cast<const sockaddr*>(&bound), length) != 0) {
      throw TestError(fmt::format("bind {}: {}", address_, std::strerror(errno)));
    }
  }

  const std::string& address() const { return address_; }

  // The next datagram; throws TestError when none arrives within kTimeout.
  std::string receive() {
    pollfd entry{.fd = socket_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&entry, 1, static_cast<int>(kTimeout.count())) != 1) {
      throw TestError("no datagram on the notify socket");
    }
    std::array<char, 4096> buffer;
    const ssize_t size = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (size < 0) throw TestError(fmt::format("recv: {}", std::strerror(errno)));
    return std::string(buffer.data(), static_cast<std::size_t>(size));
  }

 private:
  std::string address_;
  Descriptor socket_;
};

TEST_CASE("echo tells NOTIFY_SOCKET READY=1 once it listens and STOPPING=1 on SIGTERM",
          "[integration][startup]") {
  const TempDir dir;
  const bool abstract = GENERATE(false, true);
  CAPTURE(abstract);
  NotifySocket notify(abstract ? fmt::format("@fcgimux-test-notify-{}", ::getpid())
                               : (dir.path() / "notify").string());
  ChildProcess echo({"/usr/bin/env", "NOTIFY_SOCKET=" + notify.address(), FCGIMUX_ECHO_BINARY,
                     "--listen", "tcp:127.0.0.1:0"});
  CHECK(notify.receive() == "READY=1");
  check_serves(announced_address(echo));
  echo.signal(SIGTERM);
  CHECK(notify.receive() == "STOPPING=1");
  CHECK(echo.wait() == 0);
}

TEST_CASE("echo pings the systemd watchdog at half of WATCHDOG_USEC", "[integration][startup]") {
  const TempDir dir;
  NotifySocket notify((dir.path() / "notify").string());
  ChildProcess echo({"/usr/bin/env", "NOTIFY_SOCKET=" + notify.address(), "WATCHDOG_USEC=100000",
                     FCGIMUX_ECHO_BINARY, "--listen", "tcp:127.0.0.1:0"});
  CHECK(notify.receive() == "READY=1");
  for (int i = 0; i < 3; ++i) CHECK(notify.receive() == "WATCHDOG=1");
  echo.signal(SIGTERM);
  // Watchdog pings may still be on their way; STOPPING=1 comes after them.
  std::string message;
  do {
    message = notify.receive();
  } while (message == "WATCHDOG=1");
  CHECK(message == "STOPPING=1");
  CHECK(echo.wait() == 0);
}

// --- the Unix socket file ------------------------------------------------------------------------

TEST_CASE("a Unix socket gets the permission bits of Config::unix_socket_mode",
          "[integration][startup]") {
  const unsigned mode = GENERATE(0660u, 0600u, 0666u);
  CAPTURE(mode);
  const TempDir dir;
  const std::string path = (dir.path() / "app.sock").string();
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + path};
  config.unix_socket_mode = mode;
  TestServer server(handler, config);
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
  CHECK((info.st_mode & 07777) == mode);
  check_serves(server.endpoint());
  server.stop();
  // The server removes the socket file it created.
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a stale Unix socket file nobody listens on is replaced", "[integration][startup]") {
  const TempDir dir;
  const std::string path = (dir.path() / "app.sock").string();
  {
    // A server that died: its socket was bound (and listened) and closed, the file left behind.
    const Descriptor dead = unix_listener(path);
  }
  REQUIRE(std::filesystem::is_socket(path));
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + path};
  TestServer server(handler, config);
  check_serves(server.endpoint());
  server.stop();
}

TEST_CASE("a live Unix socket, or a file that is no socket, makes run() throw and stays",
          "[integration][startup]") {
  const TempDir dir;
  const std::string path = (dir.path() / "app.sock").string();
  echo::EchoHandler handler;
  Config config = test_config();
  config.listen = {"unix:" + path};

  const std::string live_message =
      "another process listens on this socket: cannot bind unix:" + path +
      ": address already in use";

  SECTION("another server listens there") {
    TestServer live(handler, config);
    CHECK_THROWS_MATCHES(TestServer(handler, config), std::system_error,
                         Catch::Message(live_message));
    CHECK(std::filesystem::is_socket(path));
    check_serves(live.endpoint());
    live.stop();
  }
  SECTION("another program listens there") {
    const Descriptor live = unix_listener(path);
    CHECK_THROWS_MATCHES(TestServer(handler, config), std::system_error,
                         Catch::Message(live_message));
    CHECK(std::filesystem::is_socket(path));
    FcgiClient connects("unix:" + path);
  }
  SECTION("a regular file is there") {
    std::ofstream(path) << "not a socket";
    CHECK_THROWS_MATCHES(TestServer(handler, config), std::system_error,
                         Catch::Message(path +
                                        " is a file, not a socket (remove it, or choose another "
                                        "path): cannot bind unix:" +
                                        path + ": address already in use"));
    std::ifstream in(path);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "not a socket");
  }
}

TEST_CASE("a root process warns once when only root may connect to its Unix socket",
          "[integration][startup]") {
  if (::geteuid() != 0) {
    WARN("skipped: the warning is for a process running as root");
    return;
  }
  const TempDir dir;
  const std::string path = (dir.path() / "app.sock").string();
  echo::EchoHandler handler;
  LogCapture log;
  Config config = test_config();
  config.listen = {"unix:" + path};
  config.log = log.sink();
  config.log_level = LogLevel::Info;

  SECTION("srwxr-xr-x, what the usual umask gives: nginx's www-data cannot connect") {
    config.unix_socket_mode = 0755;
    TestServer server(handler, config);
    const auto warnings = log.lines(LogLevel::Warning, "socket owner");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] ==
          "unix:" + path +
              ": socket owner root, group root, mode 0755: only root may connect, so a web "
              "server whose workers run as another user (nginx: www-data) answers 502; set "
              "Config::unix_socket_mode to 0660 and give the socket the web server's group "
              "(create it in a directory of that group with the set-group-ID bit: chmod 2750)");
    server.stop();
  }
  SECTION("srw-rw---- in a set-group-ID directory of another group, as the guide sets it up") {
    // nogroup (65534) stands for www-data, which the test machine may not have.
    const std::filesystem::path shared = dir.path() / "shared";
    std::filesystem::create_directory(shared);
    REQUIRE(::chown(shared.c_str(), 0, 65534) == 0);
    REQUIRE(::chmod(shared.c_str(), 02750) == 0);
    const std::string socket_path = (shared / "app.sock").string();
    config.listen = {"unix:" + socket_path};
    config.unix_socket_mode = 0660;
    TestServer server(handler, config);
    struct stat info {};
    REQUIRE(::stat(socket_path.c_str(), &info) == 0);
    CHECK(info.st_gid == 65534);
    CHECK(log.lines(LogLevel::Warning, "socket owner").empty());
    const auto lines = log.lines(LogLevel::Info, "socket owner");
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::StartsWith("unix:" + socket_path + ": socket owner root, group ") &&
                             Catch::EndsWith(", mode 0660"));
    server.stop();
  }
  SECTION("srw-rw-rw-: anyone may connect, and the owner and mode are information") {
    config.unix_socket_mode = 0666;
    TestServer server(handler, config);
    CHECK(log.lines(LogLevel::Warning, "socket owner").empty());
    CHECK(log.lines(LogLevel::Info, "socket owner") ==
          std::vector<std::string>{"unix:" + path + ": socket owner root, group root, mode 0666"});
    server.stop();
  }
}

}  // namespace
}  // namespace fcgimux::test
