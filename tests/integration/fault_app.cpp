// SPDX-License-Identifier: MIT
// fault_app: the echo handler in a program that the fault tests start as a child process, for
// faults that take the whole process: a handler stuck past the shutdown deadline, and a
// descriptor limit the server runs into. Logs at Info to stderr; prints "listening on ADDRESS"
// once bound, and "abandoned N" when run() returns.
//
//   fault_app --listen ADDRESS [--max-open-files N] [--shutdown-timeout-ms N]
//
// A request whose QUERY_STRING is "stuck" blocks its worker forever, ignoring its stop token;
// it logs "stuck handler running" first.

#include <fmt/core.h>
#include <sys/resource.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>

#include "echo_handler.hpp"
#include "fcgimux/server.hpp"

namespace {

class FaultHandler final : public echo::EchoHandler {
 public:
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    if (request.param("QUERY_STRING") != "stuck") return EchoHandler::handle(request, response);
    std::fputs("stuck handler running\n", stderr);
    std::mutex mutex;
    std::condition_variable never_notified;
    std::unique_lock lock(mutex);
    never_notified.wait(lock, [] { return false; });
  }
};

bool parse(std::string_view text, unsigned long& number) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, number);
  return error == std::errc{} && stop == end;
}

}  // namespace

int main(int argc, char** argv) {
  fcgimux::Config config{.workers = 2, .log_level = fcgimux::LogLevel::Info};
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string_view flag = args[i];
    const std::string_view value = args[i + 1];
    unsigned long number = 0;
    if (flag == "--listen") {
      config.listen.emplace_back(value);
    } else if (flag == "--max-open-files" && parse(value, number)) {
      const rlimit limit{.rlim_cur = number, .rlim_max = number};
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 1;
    } else if (flag == "--shutdown-timeout-ms" && parse(value, number)) {
      config.shutdown_timeout = std::chrono::milliseconds(number);
    } else {
      fmt::print(stderr, "fault_app: bad argument '{}'\n", flag);
      return 2;
    }
  }
  // Made on the heap and not freed when a handler was abandoned: that one may still run.
  auto handler = std::make_unique<FaultHandler>();
  try {
    fcgimux::Server server(config, *handler);
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
    const std::uint64_t abandoned = server.stats().requests_abandoned;
    fmt::print("abandoned {}\n", abandoned);
    std::fflush(stdout);
    if (abandoned > 0) static_cast<void>(handler.release());
  } catch (const std::exception& error) {
    fmt::print(stderr, "fault_app: {}\n", error.what());
    return 1;
  }
  return 0;
}
