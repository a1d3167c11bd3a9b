// SPDX-License-Identifier: MIT
#pragma once

// The status page's text: pure functions from a snapshot of the server to a page, in
// php-fpm's field names, order and formats (sapi/fpm/fpm/fpm_status.c), so that what reads
// php-fpm's status page reads this one. No I/O, no threads, no clock: the caller passes the
// time, so the output is a function of the snapshot alone.
//
// How php-fpm's fields map here (docs/status.md says it for users):
//   pool                  Config::pool_name
//   process manager       "static": a fixed pool of worker threads
//   start time, since     when the server started, and seconds since
//   accepted conn         Stats::requests_admitted (requests given to the workers)
//   listen queue          Stats::requests_queued (admitted, waiting for a worker)
//   max listen queue      Stats::requests_queued_max
//   listen queue len      how many requests the queue can hold: max_requests - workers
//   idle/active/total     workers idle, running a request, in all
//   max active processes  Stats::requests_running_max
//   max children reached  Stats::requests_overloaded (refused past max_requests)
//   slow requests         Stats::slow_requests
// With named pools (Config::pools), `?pool=NAME` shows that pool alone in the same fields (its
// workers, queue and figures, php-fpm's one status page per pool), and without it the page
// shows the whole server under Config::pool_name; Prometheus and OpenMetrics then give each
// php-fpm family one sample per pool with a `pool` label, and every worker under ?full names
// its pool. A server without named pools shows exactly what it did before they existed.
// And per worker under ?full: pid (the worker's thread id), state ("Idle" or "Running"),
// start time and since (the worker's), requests, request duration (µs), method, URI, content
// length, user (REMOTE_USER), script (SCRIPT_FILENAME); last request cpu and memory are
// always 0 (a thread's CPU time costs a system call per request to read, and threads share
// one heap).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fcgimux/server.hpp"
#include "observe/worker_board.hpp"

namespace fcgimux::observe {

enum class Format : unsigned char { Text, Json, Xml, Html, OpenMetrics, Prometheus };

// What the query string asks for. Keys as PHP's $_GET sees them ("json", "full", "json=1"),
// in php-fpm's precedence: html, xml, json, openmetrics, then prometheus; else text.
struct Query {
  Format format = Format::Text;
  bool full = false;
  std::string pool{};  // ?pool=NAME, as it is in the query string; empty: the whole server
  unsigned refresh_seconds = 5;  // ?html: the page reloads itself this often; 0 = never
};
Query parse_query(std::string_view query_string);

// One child process of a server of several (Config::processes > 1), from the scoreboard.
struct ProcessSnapshot {
  unsigned number = 0;  // Config::on_process_start's argument
  std::int64_t pid = 0;
  std::string_view state;  // "Starting", "Ready", "Retiring" or "Leaving"
  std::chrono::system_clock::time_point started;
  std::uint64_t requests = 0;  // admitted
  std::uint64_t rss_bytes = 0;
};

// The server as the page shows it.
struct Snapshot {
  std::string_view pool;
  std::chrono::system_clock::time_point start_time;
  std::chrono::system_clock::time_point now;
  Stats stats;
  unsigned workers = 0;
  std::uint64_t queue_capacity = 0;             // listen queue len
  std::vector<observe::WorkerSnapshot> worker;  // by pool, then index; read only with Query::full
  // Empty when the server has no named pools; else the pools shown (every one, or the one
  // asked for), each with the name its workers carry in WorkerSnapshot::pool.
  std::vector<PoolStats> pools{};
  // Empty for a server of one process; else every child, by slot. The figures above are then
  // the sum over all of them, and the text, JSON and Prometheus formats add the process
  // figures (running, restarts, recycles), with ?full a block per child: the workers listed
  // are those of the child that answered.
  std::vector<ProcessSnapshot> processes{};
};

struct Page {
  std::string content_type;
  std::string body;
};

// The page for `query`. Times in the text and HTML formats are local time, as php-fpm's.
Page render(const Snapshot& snapshot, const Query& query);

// `text` for a JSON string's inside: quotes, backslashes and control characters escaped, a
// byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string json_escape(std::string_view text);
// `text` with & < > " ' as character references.
std::string html_escape(std::string_view text);

}  // namespace fcgimux::observe
