// SPDX-License-Identifier: MIT
#pragma once

// The libuv handle of a stream that is either a TCP socket or a Unix socket (a pipe, in
// libuv's words), viewed as whichever type a libuv call wants.
//
// Threading: I/O thread only, as every libuv handle.

#include <uv.h>

namespace fcgimux::io {

union StreamHandle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

}  // namespace fcgimux::io
