// SPDX-License-Identifier: MIT
// A zero-downtime restart (docs/restart.md): the new server binds the old one's port with
// Config::reuse_port while the old one still serves, then the old one stops and drains. Traffic
// driven all the while, on a new connection per request as web servers without keep-alive
// send it, must see no failure at all.
//
// As docs/restart.md deploys it, with net.ipv4.tcp_migrate_req=1 (scripts/dev test sets it when
// it can). Without it the kernel resets a connection that reaches the old listener between the
// drain's last accept and the listener's close: such resets are then reported, not failed.

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include "echo_handler.hpp"
#include "log_capture.hpp"
#include "test_server.hpp"
#include "traffic.hpp"

namespace fcgimux::test {
namespace {

// Whether the kernel hands connections queued on a closing SO_REUSEPORT listener to another
// listener of the group.
bool kernel_migrates_requests() {
  std::ifstream setting("/proc/sys/net/ipv4/tcp_migrate_req");
  int value = 0;
  return setting >> value && value == 1;
}

TEST_CASE("a restart from one server to another on the same port loses no request",
          "[integration][restart]") {
  constexpr std::uint64_t kPerPhase = 300;
  echo::EchoHandler handler;
  LogCapture old_log;
  LogCapture new_log;
  Config config = test_config();
  config.reuse_port = true;
  config.log = old_log.sink();
  std::optional<TestServer> old_server;
  old_server.emplace(handler, config);
  const std::string endpoint = old_server->endpoint();

  Traffic traffic(endpoint, {.threads = 4, .tolerate_resets = !kernel_migrates_requests()});
  REQUIRE(traffic.wait_for_more(kPerPhase));
  INFO("the old server alone served " << traffic.completed());

  // The new process: same port, both with SO_REUSEPORT, so the kernel spreads new connections
  // over the two listeners.
  config.listen = {endpoint};
  config.log = new_log.sink();
  TestServer new_server(handler, config);
  CHECK(traffic.wait_for_more(kPerPhase));

  // The old process stops: it closes its listener, finishes what it admitted, and exits.
  old_server->stop();
  CHECK(traffic.wait_for_more(kPerPhase));
  traffic.stop();

  INFO("failures:\n" << traffic.failures());
  CHECK(traffic.failures().empty());
  if (traffic.resets() > 0) {
    WARN(traffic.resets() << " connections reset as the old listener closed: this kernel has "
                             "net.ipv4.tcp_migrate_req=0 (docs/restart.md)");
  }
  const Stats old_stats = old_server->server().stats();
  const Stats new_stats = new_server.server().stats();
  CHECK(old_stats.requests_completed > 0);
  CHECK(new_stats.requests_completed > 0);
  CHECK(old_stats.requests_completed + new_stats.requests_completed == traffic.completed());
  new_server.stop();
}

}  // namespace
}  // namespace fcgimux::test
