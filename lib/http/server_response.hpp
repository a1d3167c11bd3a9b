// SPDX-License-Identifier: MIT
#pragma once

// The CGI responses the server writes itself, without the handler: 413, 431, 503 and the like
// from the I/O thread, and 500 or 503 in a handler's place. One builder, so that every one of
// them carries the same header block and body as http::send_status() writes.
//
// Threading: Thread-safe (pure functions).

#include <string>

namespace fcgimux::http {

// Appends "<code> <reason phrase>" (RFC 9110 §15), or "<code>" alone for a code without one:
// the value of a CGI Status header, and the body of the server's own answers.
void append_status_line(std::string& out, int status);

// The whole CGI response (FastCGI 1.0 §6.2: what goes on FCGI_STDOUT) for `status`:
// "Status: <code> <reason phrase>", "Content-Type: text/plain; charset=utf-8", for 503 also
// "Retry-After: 1", its Content-Length, then the body "<code> <reason phrase>\n".
std::string server_response(int status);

}  // namespace fcgimux::http
