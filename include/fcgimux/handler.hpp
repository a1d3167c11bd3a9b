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
  /// exception becomes a 500 response (if no header was sent yet) and an error log line, and
  /// the connection goes on.
  virtual void handle(Request& request, Response& response) = 0;
};

/// For small programs: runs a Server with `config` until SIGINT/SIGTERM, calling `fn` for each
/// request as Handler::handle() would. Throws as Server's constructor and run() do.
void serve(const Config& config, std::function<void(Request&, Response&)> fn);

}  // namespace fcgimux
