// SPDX-License-Identifier: MIT
#pragma once

// The output of the connection a request arrived on, as the request's worker sees it: the one
// place its records go. The I/O layer implements it (io/connection_output.hpp: one per
// connection, the only place outgoing bytes wait); this layer knows no socket.
//
// Threading: Thread-safe: the workers of a connection's requests call it at once.

#include <chrono>
#include <stop_token>
#include <string_view>

namespace fcgimux::dispatch {

class Output {
 public:
  enum class Written : unsigned char {
    Done,       // the records are on the socket, or queued behind others for whoever writes
    NeedsLoop,  // queued, and the I/O thread must take over: send it a Notice::Output
    Dropped,    // nothing was written: the request was stopped or the connection is gone
  };

  // Appends `records`, whole records of one request, waiting while the connection already
  // holds its budget of unsent bytes (Config::connection_output_budget). Returns Dropped once
  // `stop` fires or the connection closes. May send on the caller's thread: `records` is read
  // before it returns and not kept.
  virtual Written write(std::string_view records, std::stop_token stop) = 0;
  // Waits, as write() does, until the connection holds less than its budget; returns false,
  // at once, once `stop` fires or the connection closes. For a request's last body record,
  // which write_last() then sends with the closing records in one go.
  virtual bool wait_for_room(std::stop_token stop) = 0;
  // Waits as wait_for_room() does, but returns false once `deadline` passes too. For a
  // detached response's writer, which must never wait for good.
  virtual bool wait_for_room_until(std::stop_token stop,
                                   std::chrono::steady_clock::time_point deadline) = 0;
  // Whether the connection holds less than its budget: a write would not wait. Lock-free; a
  // hint, as others may append right after.
  virtual bool has_room() const noexcept = 0;
  // Appends `records` as write() does, without waiting: a request's last records must always
  // go out, and a detached response's writes go out after has_room() said yes (so the budget
  // is passed by one write per writer at most). Dropped only once the connection closed.
  virtual Written write_last(std::string_view records) = 0;

  // The server may keep an output after its connection is gone, for workers it abandoned
  // (dispatch/worker_pool.hpp), and free it through this base.
  virtual ~Output() = default;
};

}  // namespace fcgimux::dispatch
