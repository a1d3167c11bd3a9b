// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <utility>

#include "fcgimux/handler.hpp"

namespace fcgimux::test {

// A Handler that calls a function, so that a test can write the handler it needs inline.
// It spells fcgimux::Response in full: inside fcgimux::test, Response is the test client's.
// Threading: handle() runs on several workers at once; the function synchronizes what it
// shares.
class LambdaHandler : public Handler {
 public:
  using Function = std::function<void(fcgimux::Request&, fcgimux::Response&)>;

  explicit LambdaHandler(Function function) : function_(std::move(function)) {}
  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    function_(request, response);
  }

 private:
  Function function_;
};

}  // namespace fcgimux::test
