// SPDX-License-Identifier: MIT
#pragma once

// Handlers that detach their responses and hand the streams to the test thread.

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include "fcgi_client.hpp"
#include "fcgimux/handler.hpp"
#include "lambda_handler.hpp"
#include "socket.hpp"

namespace fcgimux::test {

// The streams handlers detached, handed to the test thread.
// Threading: Thread-safe.
class StreamBox {
 public:
  void put(ResponseStream stream) {
    {
      const std::lock_guard lock(mutex_);
      streams_.push_back(std::move(stream));
    }
    changed_.notify_all();
  }
  // Waits (5 s at most) until `count` streams arrived, and takes them. Throws TestError.
  std::vector<ResponseStream> take(std::size_t count) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, kTimeout, [&] { return streams_.size() >= count; })) {
      throw TestError("the handlers did not detach in time");
    }
    return std::exchange(streams_, {});
  }
  ResponseStream take_one() { return std::move(take(1).front()); }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ResponseStream> streams_;  // Guarded by mutex_.
};

// Detaches every request whose QUERY_STRING is "stream" into `box`; answers "ok" otherwise.
inline LambdaHandler streaming_handler(StreamBox& box) {
  return LambdaHandler([&box](fcgimux::Request& request, fcgimux::Response& response) {
    if (request.param("QUERY_STRING") != "stream") return response.write("ok");
    response.header("Content-Type", "text/plain");
    box.put(response.detach());
  });
}

inline Params stream_params() { return {{"REQUEST_METHOD", "GET"}, {"QUERY_STRING", "stream"}}; }

}  // namespace fcgimux::test
