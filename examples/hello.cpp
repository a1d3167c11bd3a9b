// SPDX-License-Identifier: MIT
// The smallest complete fcgimux program. It listens where it was started to (a socket on
// descriptor 0 from spawn-fcgi or a web server, systemd's sockets) or on tcp:127.0.0.1:9000.
#include <fcgimux/fcgimux.hpp>

int main() {
  fcgimux::serve({}, [](fcgimux::Request& request, fcgimux::Response& response) {
    response.header("Content-Type", "text/plain; charset=utf-8");
    response.print("Hello from fcgimux, {}!\n", request.param("REMOTE_ADDR").value_or("stranger"));
  });
}
