// SPDX-License-Identifier: MIT
#pragma once

#include <functional>

#include "fcgimux/config.hpp"
#include "fcgimux/request.hpp"
#include "fcgimux/response.hpp"

namespace fcgimux {

/// Application code. One Handler object serves every request.
/// Threading: handle() runs concurrently on up to Config::workers threads; the handler
/// synchronizes its own shared state. It must outlive the Server that uses it.
class Handler {
 public:
  virtual ~Handler() = default;
  /// Runs on a worker thread. May block (reads and writes do). Returning ends the request; an
  /// exception becomes a 500 response (if no header was sent yet) and an error log line naming
  /// the request's method and URI, and the connection goes on (LimitExceeded: see there).
  virtual void handle(Request& request, Response& response) = 0;
};

/// For small programs: runs a Server with `config` until SIGINT/SIGTERM, calling `fn` for each
/// request as Handler::handle() would. Once its listeners are bound, it prints
/// "PROGRAM: listening on ADDRESS" to stderr for each (Server::local_endpoints()). When the
/// Server cannot start (a bad Config, a port in use: what its constructor and run() throw), it
/// prints "PROGRAM: " and the exception's message to stderr and ends the process with
/// std::exit(1), so it never returns then; a program that wants to handle those errors itself
/// runs a Server instead. Call it from one thread.
void serve(const Config& config, std::function<void(Request&, Response&)> fn);

}  // namespace fcgimux
