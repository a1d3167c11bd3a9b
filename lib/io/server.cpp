// SPDX-License-Identifier: MIT
#include "fcgimux/server.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "io/server_core.hpp"
#include "process/supervisor.hpp"

namespace fcgimux {

// The facade keeps libuv out of the public header, and picks the server: this process's own
// (Config::processes = 1) or a supervisor of several.
struct Server::Impl {
  Impl(Config config, Handler& handler) {
    if (config.processes > 1) {
      supervisor = std::make_unique<process::Supervisor>(std::move(config), handler);
    } else {
      core = std::make_unique<io::ServerCore>(std::move(config), handler);
    }
  }
  // Exactly one of the two.
  std::unique_ptr<io::ServerCore> core;
  std::unique_ptr<process::Supervisor> supervisor;
};

Server::Server(Config config, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(config), handler)) {}

Server::~Server() = default;

void Server::run() { impl_->core ? impl_->core->run() : impl_->supervisor->run(); }

void Server::stop() noexcept { impl_->core ? impl_->core->stop() : impl_->supervisor->stop(); }

std::vector<std::string> Server::local_endpoints() const {
  return impl_->core ? impl_->core->local_endpoints() : impl_->supervisor->local_endpoints();
}

Stats Server::stats() const {
  return impl_->core ? impl_->core->stats() : impl_->supervisor->stats();
}

void serve(const Config& config, std::function<void(Request&, Response&)> fn) {
  class FunctionHandler final : public Handler {
   public:
    explicit FunctionHandler(std::function<void(Request&, Response&)> f) : fn_(std::move(f)) {}
    void handle(Request& request, Response& response) override { fn_(request, response); }

   private:
    std::function<void(Request&, Response&)> fn_;
  };
  // glibc's name of the program, as its own error messages (error(3)) use it.
  const char* const program = program_invocation_short_name;
  try {
    auto handler = std::make_unique<FunctionHandler>(std::move(fn));
    Config announcing = config;
    announcing.on_listening = [program, next = config.on_listening](
                                  const std::vector<std::string>& endpoints) {
      for (const std::string& address : endpoints) {
        fmt::print(stderr, "{}: listening on {}\n", program, address);
      }
      if (next) next(endpoints);
    };
    Server server(std::move(announcing), *handler);
    server.run();
    // An abandoned handler may still return into `fn` (ownership rule 5): it stays, on purpose.
    if (server.stats().requests_abandoned > 0) static_cast<void>(handler.release());
  } catch (const std::exception& error) {
    // The usual end of a small program that cannot start (a port in use, a bad address): a
    // line saying why and a failed exit status, not std::terminate's "terminate called after
    // throwing" and a core dump.
    fmt::print(stderr, "{}: {}\n", program, error.what());
    std::exit(1);
  }
}

}  // namespace fcgimux
