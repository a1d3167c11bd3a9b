// SPDX-License-Identifier: MIT
// The smallest complete fcgimux program. It listens on the addresses given as arguments
// (hello tcp:127.0.0.1:9001 unix:/tmp/hello.sock), else where it was started to (a socket on
// descriptor 0 from spawn-fcgi or a web server, systemd's sockets), else on tcp:127.0.0.1:9000.
// fcgimux::serve() prints where it listens, or why it cannot and exits 1.
#include <fcgimux/fcgimux.hpp>

int main(int argc, char** argv) {
  fcgimux::serve({.listen = std::vector<std::string>(argv + 1, argv + argc)},
                 [](fcgimux::Request& request, fcgimux::Response& response) {
                   response.header("Content-Type", "text/plain; charset=utf-8");
                   response.print("Hello from fcgimux, {}!\n",
                                  request.param("REMOTE_ADDR").value_or("stranger"));
                 });
}
