// SPDX-License-Identifier: MIT
// The Router: routes by method and path pattern, and answers 400, 404 and 405 itself.

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgimux/http.hpp"
#include "fcgimux/request.hpp"
#include "fcgimux/response.hpp"
#include "http/ascii.hpp"

namespace fcgimux::http {
namespace {

// Splits `path` (which starts with '/') into its segments: "/" is one empty segment,
// "/items/" is "items" and "".
std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);
  for (;;) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return segments;
    path.remove_prefix(slash + 1);
  }
}

bool is_segment_name(std::string_view name) noexcept {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::invalid_argument bad_route(const Route& route, std::string_view why) {
  return std::invalid_argument("http::Router: route \"" + route.method + " " + route.pattern +
                               "\": " + std::string(why));
}

}  // namespace

std::string_view PathParams::operator[](std::string_view name) const noexcept {
  for (const auto& [segment_name, value] : segments_) {
    if (segment_name == name) return value;
  }
  return {};
}

Router::Router(std::vector<Route> routes, StatusBody errors) : errors_(errors) {
  for (Route& route : routes) {
    if (!ascii::is_token(route.method)) throw bad_route(route, "the method is not a token");
    if (!route.handler) throw bad_route(route, "the handler is empty");
    if (!route.pattern.starts_with('/')) throw bad_route(route, "the pattern must start with '/'");
    CompiledRoute compiled{.method = route.method, .segments = {}, .handler = {}};
    const std::vector<std::string_view> segments = split_segments(route.pattern);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const std::string_view segment = segments[i];
      if (segment.starts_with('{') && segment.ends_with('}') && segment.size() >= 2) {
        const std::string_view name = segment.substr(1, segment.size() - 2);
        if (!is_segment_name(name)) {
          throw bad_route(route, "a segment name is letters, digits and '_', not first a digit");
        }
        for (const Segment& seen : compiled.segments) {
          if (seen.named && seen.text == name) throw bad_route(route, "a segment name repeats");
        }
        compiled.segments.push_back({std::string(name), true});
        continue;
      }
      if (segment.find_first_of("{}") != std::string_view::npos) {
        throw bad_route(route, "a named segment \"{name}\" must be a whole segment");
      }
      if (segment.find('%') != std::string_view::npos) {
        throw bad_route(route, "literal segments are written decoded, without '%'");
      }
      if (segment.empty() && i + 1 < segments.size()) {
        throw bad_route(route, "only the last segment may be empty");
      }
      compiled.segments.push_back({std::string(segment), false});
    }
    // Same method, same literals at the same places, named segments at the same places: the
    // two would match exactly the same requests.
    for (const CompiledRoute& other : routes_) {
      const bool same =
          other.method == compiled.method &&
          std::equal(other.segments.begin(), other.segments.end(), compiled.segments.begin(),
                     compiled.segments.end(), [](const Segment& a, const Segment& b) {
                       return a.named == b.named && (a.named || a.text == b.text);
                     });
      if (same) throw bad_route(route, "another route with this method matches the same paths");
    }
    compiled.handler = std::move(route.handler);
    routes_.push_back(std::move(compiled));
  }
  // Most specific first: at the first segment where two routes differ in kind, the literal one.
  // Routes whose segments are of the same kinds keep their order (a path can match at most one
  // of them per method, as their literals differ).
  std::stable_sort(routes_.begin(), routes_.end(),
                   [](const CompiledRoute& a, const CompiledRoute& b) {
                     return std::lexicographical_compare(
                         a.segments.begin(), a.segments.end(), b.segments.begin(), b.segments.end(),
                         [](const Segment& x, const Segment& y) { return !x.named && y.named; });
                   });
}

void Router::handle(Request& request, Response& response) {
  const std::string_view raw = raw_path(request);
  if (!raw.starts_with('/')) return send_status(response, 404, errors_);
  const std::vector<std::string_view> raw_segments = split_segments(raw);
  std::vector<std::string> segments(raw_segments.size());
  for (std::size_t i = 0; i < raw_segments.size(); ++i) {
    if (percent_decode(raw_segments[i], segments[i]) != Error::None) {
      return send_status(response, 400, errors_);
    }
  }

  const std::string_view method = http::method(request);
  const CompiledRoute* chosen = nullptr;
  const CompiledRoute* get_route = nullptr;  // for a HEAD without a HEAD route
  std::vector<std::string_view> allowed;
  for (const CompiledRoute& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool matches = true;
    for (std::size_t i = 0; matches && i < segments.size(); ++i) {
      const Segment& segment = route.segments[i];
      matches = segment.named ? !segments[i].empty() : segment.text == segments[i];
    }
    if (!matches) continue;
    if (route.method == method && chosen == nullptr) chosen = &route;
    if (route.method == "GET" && get_route == nullptr) get_route = &route;
    allowed.push_back(route.method);
  }
  if (chosen == nullptr && method == "HEAD") chosen = get_route;
  if (chosen == nullptr) {
    if (allowed.empty()) return send_status(response, 404, errors_);
    if (get_route != nullptr) allowed.push_back("HEAD");
    // Not std::ranges::unique: clang 14, which builds the fuzz targets from this library's
    // sources, rejects the libstdc++ 12 subrange it returns.
    std::sort(allowed.begin(), allowed.end());
    allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
    std::string allow;
    for (const std::string_view name : allowed) {
      if (!allow.empty()) allow.append(", ");
      allow.append(name);
    }
    response.header("Allow", allow);
    return send_status(response, 405, errors_);
  }

  PathParams params;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& segment = chosen->segments[i];
    if (segment.named) params.segments_.emplace_back(segment.text, segments[i]);
  }
  chosen->handler(request, response, params);
}

}  // namespace fcgimux::http
