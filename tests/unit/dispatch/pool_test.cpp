// SPDX-License-Identifier: MIT
// Which pool takes a request: prefix at a path-segment boundary, role, predicate, the first
// match, and the default pool for the rest.

#include "dispatch/pool.hpp"

#include <catch2/catch.hpp>
#include <span>
#include <string_view>
#include <vector>

namespace fcgimux::dispatch {
namespace {

using protocol::NameValue;
using protocol::Role;

TEST_CASE("a prefix matches at a path-segment boundary, or plainly when it ends in '/'",
          "[dispatch][pool]") {
  CHECK(path_has_prefix("/slow", "/slow"));
  CHECK(path_has_prefix("/slow/report", "/slow"));
  CHECK_FALSE(path_has_prefix("/slower", "/slow"));
  CHECK_FALSE(path_has_prefix("/slo", "/slow"));
  CHECK(path_has_prefix("/slow/", "/slow/"));
  CHECK_FALSE(path_has_prefix("/slow", "/slow/"));
  CHECK(path_has_prefix("/anything", "/"));
}

TEST_CASE("the first pool whose match a request meets takes it, the rest go to the default",
          "[dispatch][pool]") {
  const std::vector<Pool> pools{
      {.name = "auth", .role = Role::Authorizer},
      {.name = "reports", .prefix = "/reports"},
      {.name = "reports-too", .prefix = "/reports/big"},
      {.name = "posts",
       .predicate = [](std::span<const NameValue> params) {
         for (const NameValue& pair : params) {
           if (pair.name == "REQUEST_METHOD") return pair.value == "POST";
         }
         return false;
       }},
  };
  const auto choose = [&](Role role, std::vector<NameValue> params) {
    return choose_pool(pools, role, params);
  };
  CHECK(choose(Role::Authorizer, {{"SCRIPT_NAME", "/reports"}}) == 1);
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/reports"}}) == 2);
  // First match wins: "reports" comes before "reports-too".
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/reports/big"}}) == 2);
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/reportsx"}}) == 0);
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/x"}, {"REQUEST_METHOD", "POST"}}) == 4);
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/x"}, {"REQUEST_METHOD", "GET"}}) == 0);
  CHECK(choose(Role::Responder, {}) == 0);
  // DOCUMENT_URI stands in for a missing SCRIPT_NAME, never for one that is there.
  CHECK(choose(Role::Responder, {{"DOCUMENT_URI", "/reports/1"}}) == 2);
  CHECK(choose(Role::Responder, {{"DOCUMENT_URI", "/reports/1"}, {"SCRIPT_NAME", "/x"}}) == 0);
  CHECK(choose(Role::Responder, {{"SCRIPT_NAME", "/x"}, {"DOCUMENT_URI", "/reports/1"}}) == 0);
  CHECK(choose_pool({}, Role::Responder, std::vector<NameValue>{{"SCRIPT_NAME", "/r"}}) == 0);
}

TEST_CASE("a pool with several criteria takes only requests that meet all of them",
          "[dispatch][pool]") {
  const std::vector<Pool> pools{{.name = "both", .prefix = "/a", .role = Role::Filter}};
  const std::vector<NameValue> params{{"SCRIPT_NAME", "/a/b"}};
  CHECK(choose_pool(pools, Role::Filter, params) == 1);
  CHECK(choose_pool(pools, Role::Responder, params) == 0);
}

}  // namespace
}  // namespace fcgimux::dispatch
