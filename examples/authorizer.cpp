// SPDX-License-Identifier: MIT
// authorizer: a FastCGI Authorizer (FastCGI 1.0 §6.3). A request whose Authorization header
// holds credentials from the users file is let through: 200 with "Variable-AUTH_USER: NAME",
// which the web server hands on to later handlers as AUTH_USER. Any other is denied: 401 with
// WWW-Authenticate, which the web server sends to the client. The users file has one entry a
// line ('#' starts a comment line):
//   basic:NAME:PASSWORD   credentials for HTTP basic authentication (RFC 7617)
//   bearer:NAME:TOKEN     a bearer token (RFC 6750) that authenticates as NAME
// Usage: authorizer --users FILE [--listen ADDRESS]... (ADDRESS as for echo; by default the
// socket the process was started with). Serves until SIGINT or SIGTERM, then drains.

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "fcgimux/fcgimux.hpp"

// A users file entry: the whole Authorization header value that proves it, and its name.
struct Credential {
  std::string authorization;
  std::string name;
};

std::string base64(std::string_view bytes) {
  constexpr std::string_view kDigits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    unsigned group = 0;
    for (std::size_t j = 0; j < 3; ++j) {
      group = group << 8 | (j < n ? static_cast<unsigned char>(bytes[i + j]) : 0u);
    }
    for (std::size_t j = 0; j < 4; ++j) out += j <= n ? kDigits[group >> (18 - 6 * j) & 63] : '=';
  }
  return out;
}

// Appends the entries of the users file at `path`; false when it cannot be read or a line is
// malformed.
bool load_users(const std::string& path, std::vector<Credential>& users) {
  std::ifstream in(path);
  for (std::string line; in && std::getline(in, line);) {
    if (line.empty() || line.starts_with('#')) continue;
    const std::size_t colon = line.find(':');
    const std::size_t second = line.find(':', colon + 1);
    if (colon == std::string::npos || second == std::string::npos) return false;
    const std::string kind = line.substr(0, colon);
    std::string name = line.substr(colon + 1, second - colon - 1);
    const std::string secret = line.substr(second + 1);
    if (kind != "basic" && kind != "bearer") return false;
    users.push_back({kind == "basic" ? "Basic " + base64(name + ":" + secret) : "Bearer " + secret,
                     std::move(name)});
  }
  return in.eof();
}

// Whether `presented` equals `expected` (not empty), in a time that depends on the length of
// `presented` only, never on where the bytes differ, so that timing gives no secret away.
bool same_secret(std::string_view presented, std::string_view expected) {
  unsigned difference = presented.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < presented.size(); ++i) {
    difference |= static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  }
  return difference == 0;
}

// Threading: Immutable after construction; safe to share.
class Authorizer : public fcgimux::Handler {
 public:
  explicit Authorizer(std::vector<Credential> users) : users_(std::move(users)) {}

  void handle(fcgimux::Request& request, fcgimux::Response& response) override {
    const std::string_view presented = fcgimux::http::header(request, "Authorization").value_or("");
    const Credential* match = nullptr;
    for (const Credential& user : users_) {
      if (same_secret(presented, user.authorization)) match = &user;
    }
    // §6.3: on a 200 the web server ignores the body and every header but the Variable-* ones.
    if (match != nullptr) return response.header("Variable-AUTH_USER", match->name);
    response.header("WWW-Authenticate", R"(Basic realm="fcgimux", charset="UTF-8")");
    fcgimux::http::send_status(response, 401);
  }

 private:
  std::vector<Credential> users_;
};

int main(int argc, char** argv) {
  fcgimux::Config config{.listen = {}, .roles = {fcgimux::Role::Authorizer}};
  std::vector<Credential> users;
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc - 1));
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    const std::string_view flag = args[i];
    if (flag == "--listen") {
      config.listen.emplace_back(args[i + 1]);
    } else if (flag != "--users" || !load_users(args[i + 1], users)) {
      fmt::print(stderr, "authorizer: bad argument or users file '{} {}'\n", flag, args[i + 1]);
      return 2;
    }
  }
  if (users.empty() || args.size() % 2 != 0) {
    fmt::print(stderr, "usage: authorizer --users FILE [--listen ADDRESS]...\n");
    return 2;
  }
  try {
    Authorizer handler(std::move(users));
    fcgimux::Server server(config, handler);
    // local_endpoints() waits until run() has bound its listeners (empty if binding failed).
    const std::jthread announcer([&server] {
      for (const auto& address : server.local_endpoints()) fmt::print("listening on {}\n", address);
      std::fflush(stdout);
    });
    server.run();
  } catch (const std::exception& error) {
    fmt::print(stderr, "authorizer: {}\n", error.what());
    return 1;
  }
  return 0;
}
