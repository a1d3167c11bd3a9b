// SPDX-License-Identifier: MIT
#include "fcgimux/server.hpp"

#include <utility>

#include "io/server_core.hpp"

namespace fcgimux {

// The facade's one job is to keep libuv out of the public header.
struct Server::Impl : io::ServerCore {
  using io::ServerCore::ServerCore;
};

Server::Server(Config config, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(config), handler)) {}

Server::~Server() = default;

void Server::run() { impl_->run(); }

void Server::stop() noexcept { impl_->stop(); }

std::vector<std::string> Server::local_endpoints() const { return impl_->local_endpoints(); }

Stats Server::stats() const noexcept { return impl_->stats(); }

void serve(const Config& config, std::function<void(Request&, Response&)> fn) {
  class FunctionHandler final : public Handler {
   public:
    explicit FunctionHandler(std::function<void(Request&, Response&)> f) : fn_(std::move(f)) {}
    void handle(Request& request, Response& response) override { fn_(request, response); }

   private:
    std::function<void(Request&, Response&)> fn_;
  };
  auto handler = std::make_unique<FunctionHandler>(std::move(fn));
  Server server(config, *handler);
  server.run();
  // An abandoned handler may still return into `fn` (ownership rule 5): it stays, on purpose.
  if (server.stats().requests_abandoned > 0) static_cast<void>(handler.release());
}

}  // namespace fcgimux
