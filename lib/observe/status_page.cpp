// SPDX-License-Identifier: MIT
#include "observe/status_page.hpp"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>

namespace fcgimux::observe {

namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;
using std::chrono::system_clock;

template <class... Args>
void append(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

std::int64_t epoch_seconds(system_clock::time_point time) {
  return duration_cast<seconds>(time.time_since_epoch()).count();
}

std::int64_t seconds_between(system_clock::time_point from, system_clock::time_point to) {
  return std::max<std::int64_t>(0, duration_cast<seconds>(to - from).count());
}

// php-fpm's "%d/%b/%Y:%H:%M:%S %z", in local time.
std::string local_time(system_clock::time_point time) {
  const time_t epoch = system_clock::to_time_t(time);
  tm local{};
  char text[64];
  if (::localtime_r(&epoch, &local) == nullptr ||
      ::strftime(text, sizeof text, "%d/%b/%Y:%H:%M:%S %z", &local) == 0) {
    return std::to_string(epoch);
  }
  return text;
}

std::string_view or_dash(std::string_view text) { return text.empty() ? "-" : text; }

// The pool's numbers, in php-fpm's order.
struct PoolFields {
  std::int64_t start_since;
  std::uint64_t accepted;
  std::uint64_t listen_queue;
  std::uint64_t max_listen_queue;
  std::uint64_t listen_queue_len;
  std::uint64_t idle;
  std::uint64_t active;
  std::uint64_t total;
  std::uint64_t max_active;
  std::uint64_t max_children_reached;
  std::uint64_t slow;
};

PoolFields pool_fields(const Snapshot& s) {
  const std::uint64_t active = std::min<std::uint64_t>(s.stats.requests_running, s.workers);
  return PoolFields{.start_since = seconds_between(s.start_time, s.now),
                    .accepted = s.stats.requests_admitted,
                    .listen_queue = s.stats.requests_queued,
                    .max_listen_queue = s.stats.requests_queued_max,
                    .listen_queue_len = s.queue_capacity,
                    .idle = s.workers - active,
                    .active = active,
                    .total = s.workers,
                    .max_active = s.stats.requests_running_max,
                    .max_children_reached = s.stats.requests_overloaded,
                    .slow = s.stats.slow_requests};
}

// One named pool's fields.
PoolFields pool_fields(const Snapshot& s, const PoolStats& pool) {
  const std::uint64_t active = std::min<std::uint64_t>(pool.requests_running, pool.workers);
  return PoolFields{.start_since = seconds_between(s.start_time, s.now),
                    .accepted = pool.requests_admitted,
                    .listen_queue = pool.requests_queued,
                    .max_listen_queue = pool.requests_queued_max,
                    .listen_queue_len =
                        pool.max_requests > pool.workers ? pool.max_requests - pool.workers : 0,
                    .idle = pool.workers - active,
                    .active = active,
                    .total = pool.workers,
                    .max_active = pool.requests_running_max,
                    .max_children_reached = pool.requests_overloaded,
                    .slow = pool.slow_requests};
}

// `text` as a Prometheus label value: backslash, double quote and line feed escaped.
std::string label_value(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view state_name(const WorkerSnapshot& worker) {
  return worker.running ? "Running" : "Idle";
}

// One worker's fields, escaped for the format at hand by `escape`.
struct WorkerFields {
  std::string pool;
  long pid;
  std::string_view state;
  std::string start_time;
  std::int64_t start_since;
  std::uint64_t requests;
  std::int64_t duration_us;
  std::string method;
  std::string uri;
  std::uint64_t content_length;
  std::string user;
  std::string script;
};

template <class Escape>
WorkerFields worker_fields(const Snapshot& s, const WorkerSnapshot& w, std::string start_time,
                           Escape escape) {
  return WorkerFields{.pool = escape(w.pool),
                      .pid = w.thread_id,
                      .state = state_name(w),
                      .start_time = std::move(start_time),
                      .start_since = seconds_between(w.started, s.now),
                      .requests = w.requests,
                      .duration_us = w.duration.count(),
                      .method = escape(or_dash(w.method)),
                      .uri = escape(or_dash(w.uri)),
                      .content_length = w.content_length,
                      .user = escape(or_dash(w.user)),
                      .script = escape(or_dash(w.script))};
}

std::string same(std::string_view text) { return std::string(text); }

Page text(const Snapshot& s, bool full) {
  const PoolFields p = pool_fields(s);
  std::string out;
  append(out,
         "pool:                 {}\n"
         "process manager:      static\n"
         "start time:           {}\n"
         "start since:          {}\n"
         "accepted conn:        {}\n"
         "listen queue:         {}\n"
         "max listen queue:     {}\n"
         "listen queue len:     {}\n"
         "idle processes:       {}\n"
         "active processes:     {}\n"
         "total processes:      {}\n"
         "max active processes: {}\n"
         "max children reached: {}\n"
         "slow requests:        {}\n",
         s.pool, local_time(s.start_time), p.start_since, p.accepted, p.listen_queue,
         p.max_listen_queue, p.listen_queue_len, p.idle, p.active, p.total, p.max_active,
         p.max_children_reached, p.slow);
  if (!s.processes.empty()) {
    append(out,
           "child processes:      {}\n"
           "process restarts:     {}\n"
           "process recycles:     {}\n",
           s.stats.processes_running, s.stats.process_restarts, s.stats.process_recycles);
  }
  if (!full) return {"text/plain", std::move(out)};
  for (const ProcessSnapshot& process : s.processes) {
    append(out,
           "\n========================\n"
           "process number:       {}\n"
           "pid:                  {}\n"
           "state:                {}\n"
           "start time:           {}\n"
           "requests:             {}\n"
           "memory:               {}\n",
           process.number, process.pid, process.state, local_time(process.started),
           process.requests, process.rss_bytes);
  }
  for (const WorkerSnapshot& worker : s.worker) {
    const WorkerFields w = worker_fields(s, worker, local_time(worker.started), same);
    out += "\n************************\n";
    if (!s.pools.empty()) append(out, "pool:                 {}\n", w.pool);
    append(out,
           "pid:                  {}\n"
           "state:                {}\n"
           "start time:           {}\n"
           "start since:          {}\n"
           "requests:             {}\n"
           "request duration:     {}\n"
           "request method:       {}\n"
           "request URI:          {}\n"
           "content length:       {}\n"
           "user:                 {}\n"
           "script:               {}\n"
           "last request cpu:     0.00\n"
           "last request memory:  0\n",
           w.pid, w.state, w.start_time, w.start_since, w.requests, w.duration_us, w.method, w.uri,
           w.content_length, w.user, w.script);
  }
  return {"text/plain", std::move(out)};
}

Page json(const Snapshot& s, bool full) {
  const PoolFields p = pool_fields(s);
  std::string out;
  append(out,
         "{{\"pool\":\"{}\",\"process manager\":\"static\",\"start time\":{},"
         "\"start since\":{},\"accepted conn\":{},\"listen queue\":{},"
         "\"max listen queue\":{},\"listen queue len\":{},\"idle processes\":{},"
         "\"active processes\":{},\"total processes\":{},\"max active processes\":{},"
         "\"max children reached\":{},\"slow requests\":{}",
         json_escape(s.pool), epoch_seconds(s.start_time), p.start_since, p.accepted,
         p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle, p.active, p.total,
         p.max_active, p.max_children_reached, p.slow);
  if (!s.processes.empty()) {
    append(out, ",\"child processes\":{},\"process restarts\":{},\"process recycles\":{}",
           s.stats.processes_running, s.stats.process_restarts, s.stats.process_recycles);
  }
  if (!full) {
    out += "}";
    return {"application/json", std::move(out)};
  }
  if (!s.processes.empty()) {
    out += ",\"children\":[";
    for (const ProcessSnapshot& process : s.processes) {
      if (&process != &s.processes.front()) out += ",";
      append(out,
             "{{\"number\":{},\"pid\":{},\"state\":\"{}\",\"start time\":{},"
             "\"requests\":{},\"memory\":{}}}",
             process.number, process.pid, process.state, epoch_seconds(process.started),
             process.requests, process.rss_bytes);
    }
    out += "]";
  }
  out += ", \"processes\":[";
  bool first = true;
  for (const WorkerSnapshot& worker : s.worker) {
    if (!first) out += ",";
    first = false;
    const WorkerFields w =
        worker_fields(s, worker, std::to_string(epoch_seconds(worker.started)), json_escape);
    if (!s.pools.empty()) append(out, "{{\"pool\":\"{}\",", w.pool);
    append(out,
           "{}\"pid\":{},\"state\":\"{}\",\"start time\":{},\"start since\":{},"
           "\"requests\":{},\"request duration\":{},\"request method\":\"{}\","
           "\"request uri\":\"{}\",\"content length\":{},\"user\":\"{}\",\"script\":\"{}\","
           "\"last request cpu\":0.00,\"last request memory\":0}}",
           s.pools.empty() ? "{" : "", w.pid, w.state, w.start_time, w.start_since, w.requests, w.duration_us, w.method, w.uri,
           w.content_length, w.user, w.script);
  }
  out += "]}";
  return {"application/json", std::move(out)};
}

Page xml(const Snapshot& s, bool full) {
  const PoolFields p = pool_fields(s);
  std::string out;
  append(out,
         "<?xml version=\"1.0\" ?>\n"
         "<status>\n"
         "<pool>{}</pool>\n"
         "<process-manager>static</process-manager>\n"
         "<start-time>{}</start-time>\n"
         "<start-since>{}</start-since>\n"
         "<accepted-conn>{}</accepted-conn>\n"
         "<listen-queue>{}</listen-queue>\n"
         "<max-listen-queue>{}</max-listen-queue>\n"
         "<listen-queue-len>{}</listen-queue-len>\n"
         "<idle-processes>{}</idle-processes>\n"
         "<active-processes>{}</active-processes>\n"
         "<total-processes>{}</total-processes>\n"
         "<max-active-processes>{}</max-active-processes>\n"
         "<max-children-reached>{}</max-children-reached>\n"
         "<slow-requests>{}</slow-requests>\n",
         html_escape(s.pool), epoch_seconds(s.start_time), p.start_since, p.accepted,
         p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle, p.active, p.total,
         p.max_active, p.max_children_reached, p.slow);
  if (!s.processes.empty()) {
    append(out,
           "<child-processes>{}</child-processes>\n"
           "<process-restarts>{}</process-restarts>\n"
           "<process-recycles>{}</process-recycles>\n",
           s.stats.processes_running, s.stats.process_restarts, s.stats.process_recycles);
  }
  if (!full) {
    out += "</status>";
    return {"text/xml", std::move(out)};
  }
  if (!s.processes.empty()) {
    out += "<children>\n";
    for (const ProcessSnapshot& process : s.processes) {
      append(out,
             "<child><number>{}</number><pid>{}</pid><state>{}</state>"
             "<start-time>{}</start-time><requests>{}</requests><memory>{}</memory></child>\n",
             process.number, process.pid, html_escape(process.state),
             epoch_seconds(process.started), process.requests, process.rss_bytes);
    }
    out += "</children>\n";
  }
  out += "<processes>\n";
  for (const WorkerSnapshot& worker : s.worker) {
    const WorkerFields w =
        worker_fields(s, worker, std::to_string(epoch_seconds(worker.started)), html_escape);
    out += "<process>";
    if (!s.pools.empty()) append(out, "<pool>{}</pool>", w.pool);
    append(out,
           "<pid>{}</pid><state>{}</state><start-time>{}</start-time>"
           "<start-since>{}</start-since><requests>{}</requests>"
           "<request-duration>{}</request-duration><request-method>{}</request-method>"
           "<request-uri>{}</request-uri><content-length>{}</content-length><user>{}</user>"
           "<script>{}</script><last-request-cpu>0.00</last-request-cpu>"
           "<last-request-memory>0</last-request-memory></process>\n",
           w.pid, w.state, w.start_time, w.start_since, w.requests, w.duration_us, w.method, w.uri,
           w.content_length, w.user, w.script);
  }
  out += "</processes>\n</status>";
  return {"text/xml", std::move(out)};
}

Page html(const Snapshot& s, const Query& query) {
  const PoolFields p = pool_fields(s);
  std::string out =
      "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
      "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n<head>";
  if (query.refresh_seconds > 0) {
    append(out, "<meta http-equiv=\"refresh\" content=\"{}\" />", query.refresh_seconds);
  }
  append(out,
         "<title>fcgimux status: {0}</title></head>\n"
         "<body>\n"
         "<table>\n"
         "<tr><th>pool</th><td>{0}</td></tr>\n"
         "<tr><th>process manager</th><td>static</td></tr>\n"
         "<tr><th>start time</th><td>{1}</td></tr>\n"
         "<tr><th>start since</th><td>{2}</td></tr>\n"
         "<tr><th>accepted conn</th><td>{3}</td></tr>\n"
         "<tr><th>listen queue</th><td>{4}</td></tr>\n"
         "<tr><th>max listen queue</th><td>{5}</td></tr>\n"
         "<tr><th>listen queue len</th><td>{6}</td></tr>\n"
         "<tr><th>idle processes</th><td>{7}</td></tr>\n"
         "<tr><th>active processes</th><td>{8}</td></tr>\n"
         "<tr><th>total processes</th><td>{9}</td></tr>\n"
         "<tr><th>max active processes</th><td>{10}</td></tr>\n"
         "<tr><th>max children reached</th><td>{11}</td></tr>\n"
         "<tr><th>slow requests</th><td>{12}</td></tr>\n",
         html_escape(s.pool), html_escape(local_time(s.start_time)), p.start_since, p.accepted,
         p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle, p.active, p.total,
         p.max_active, p.max_children_reached, p.slow);
  if (!s.processes.empty()) {
    append(out,
           "<tr><th>child processes</th><td>{}</td></tr>\n"
           "<tr><th>process restarts</th><td>{}</td></tr>\n"
           "<tr><th>process recycles</th><td>{}</td></tr>\n",
           s.stats.processes_running, s.stats.process_restarts, s.stats.process_recycles);
  }
  out += "</table>\n";
  if (!query.full) {
    out += "</body></html>";
    return {"text/html", std::move(out)};
  }
  if (!s.processes.empty()) {
    out +=
        "<table border=\"1\">\n<tr><th>process number</th><th>pid</th><th>state</th>"
        "<th>start time</th><th>requests</th><th>memory</th></tr>\n";
    for (const ProcessSnapshot& process : s.processes) {
      append(out,
             "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
             process.number, process.pid, html_escape(process.state),
             html_escape(local_time(process.started)), process.requests, process.rss_bytes);
    }
    out += "</table>\n";
  }
  out +=
      "<table border=\"1\">\n<tr>";
  if (!s.pools.empty()) out += "<th>pool</th>";
  out +=
      "<th>pid</th><th>state</th><th>start time</th>"
      "<th>start since</th><th>requests</th><th>request duration</th><th>request method</th>"
      "<th>request uri</th><th>content length</th><th>user</th><th>script</th>"
      "<th>last request cpu</th><th>last request memory</th></tr>\n";
  for (const WorkerSnapshot& worker : s.worker) {
    const WorkerFields w =
        worker_fields(s, worker, html_escape(local_time(worker.started)), html_escape);
    out += "<tr>";
    if (!s.pools.empty()) append(out, "<td>{}</td>", w.pool);
    append(out,
           "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
           "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>0.00</td><td>0</td></tr>\n",
           w.pid, w.state, w.start_time, w.start_since, w.requests, w.duration_us, w.method, w.uri,
           w.content_length, w.user, w.script);
  }
  out += "</table></body></html>";
  return {"text/html", std::move(out)};
}

// php-fpm's OpenMetrics families, in its order and words (its HELP and TYPE lines included;
// phpfpm_up's HELP names the pool, so it is written where the pool is known).
struct Family {
  std::string_view name;
  std::string_view type;
  std::string_view help;
  bool type_first = false;  // php-fpm writes this family's TYPE line before its HELP line
};
constexpr Family kFamilies[] = {
    {"up", "gauge", ""},
    {"start_since", "counter", "The number of seconds since FPM has started."},
    {"accepted_connections", "counter", "The number of requests accepted by the pool."},
    {"listen_queue", "gauge", "The number of requests in the queue of pending connections."},
    {"max_listen_queue", "counter",
     "The maximum number of requests in the queue of pending connections since FPM has "
     "started."},
    {"listen_queue_length", "gauge", "The size of the socket queue of pending connections.",
     true},
    {"idle_processes", "gauge", "The number of idle processes."},
    {"active_processes", "gauge", "The number of active processes."},
    {"total_processes", "gauge", "The number of idle + active processes."},
    {"max_active_processes", "counter",
     "The maximum number of active processes since FPM has started."},
    {"max_children_reached", "counter",
     "The number of times, the process limit has been reached, when pm tries to start more "
     "children (works only for pm 'dynamic' and 'ondemand')."},
    {"slow_requests", "counter",
     "The number of requests that exceeded your 'request_slowlog_timeout' value."},
};

// The values of kFamilies, in its order.
std::array<std::uint64_t, std::size(kFamilies)> family_values(const PoolFields& p) {
  return {1,
          static_cast<std::uint64_t>(p.start_since),
          p.accepted,
          p.listen_queue,
          p.max_listen_queue,
          p.listen_queue_len,
          p.idle,
          p.active,
          p.total,
          p.max_active,
          p.max_children_reached,
          p.slow};
}

void phpfpm_metrics(std::string& out, const Snapshot& s) {
  // One sample per family, unlabelled, for a server without named pools; else one per pool.
  struct Sample {
    std::string labels;
    std::array<std::uint64_t, std::size(kFamilies)> values;
  };
  std::vector<Sample> samples;
  if (s.pools.empty()) {
    samples.push_back({"", family_values(pool_fields(s))});
  } else {
    for (const PoolStats& pool : s.pools) {
      samples.push_back({fmt::format("{{pool=\"{}\"}}", label_value(pool.name)),
                         family_values(pool_fields(s, pool))});
    }
  }
  for (std::size_t i = 0; i < std::size(kFamilies); ++i) {
    const Family& family = kFamilies[i];
    const std::string help =
        i == 0 ? fmt::format("Could pool {} using a static PM on PHP-FPM be reached?", s.pool)
               : std::string(family.help);
    if (family.type_first) {
      append(out, "# TYPE phpfpm_{0} {1}\n# HELP phpfpm_{0} {2}\n", family.name, family.type, help);
    } else {
      append(out, "# HELP phpfpm_{0} {2}\n# TYPE phpfpm_{0} {1}\n", family.name, family.type, help);
    }
    for (const Sample& sample : samples) {
      append(out, "phpfpm_{}{} {}\n", family.name, sample.labels, sample.values[i]);
    }
  }
}

Page openmetrics(const Snapshot& s) {
  std::string out;
  phpfpm_metrics(out, s);
  out += "# EOF\n";
  return {"application/openmetrics-text; version=1.0.0; charset=utf-8", std::move(out)};
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
  append(out, "# HELP fcgimux_{0} {1}\n# TYPE fcgimux_{0} {2}\nfcgimux_{0} {3}\n", name, help, type,
         value);
}

// `pool="NAME",` for a worker's metric when the server has named pools; else nothing.
std::string pool_label(const Snapshot& s, const WorkerSnapshot& w) {
  return s.pools.empty() ? std::string() : fmt::format("pool=\"{}\",", label_value(w.pool));
}

Page prometheus(const Snapshot& s, bool full) {
  std::string out;
  phpfpm_metrics(out, s);
  const Stats& t = s.stats;
  metric(out, "workers", "gauge", "Worker threads.", s.workers);
  metric(out, "connections_accepted_total", "counter", "Connections accepted.",
         t.connections_accepted);
  metric(out, "connections_refused_total", "counter",
         "Connections closed at once: past max_connections or not an allowed client.",
         t.connections_refused);
  metric(out, "connections_open", "gauge", "Connections open.", t.connections_open);
  metric(out, "requests_admitted_total", "counter", "Requests given to the workers.",
         t.requests_admitted);
  metric(out, "requests_completed_total", "counter", "Requests whose handler returned.",
         t.requests_completed);
  metric(out, "requests_failed_total", "counter", "Requests whose handler threw.",
         t.requests_failed);
  metric(out, "requests_body_too_large_total", "counter",
         "Requests answered 413 as the handler's read_all() found the body past its limit.",
         t.requests_body_too_large);
  metric(out, "requests_aborted_total", "counter",
         "Requests cancelled by an abort, a close or a deadline.", t.requests_aborted);
  metric(out, "requests_overloaded_total", "counter", "Requests refused past max_requests.",
         t.requests_overloaded);
  metric(out, "requests_refused_total", "counter",
         "Requests refused: role, multiplexing, params or body limits.", t.requests_refused);
  metric(out, "requests_refused_params_total", "counter",
         "Requests refused 431: params past max_params_bytes.", t.requests_refused_params);
  metric(out, "requests_refused_body_total", "counter",
         "Requests refused 413: CONTENT_LENGTH past max_body_bytes.", t.requests_refused_body);
  metric(out, "requests_abandoned_total", "counter",
         "Requests still running when the server stopped without them.", t.requests_abandoned);
  metric(out, "requests_running", "gauge", "Requests in a handler.", t.requests_running);
  metric(out, "requests_queued", "gauge", "Requests waiting for a worker.", t.requests_queued);
  metric(out, "requests_running_max", "gauge", "Most requests in handlers at once.",
         t.requests_running_max);
  metric(out, "requests_queued_max", "gauge", "Most requests waiting at once.",
         t.requests_queued_max);
  metric(out, "slow_requests_total", "counter", "Requests that ran past slow_request_threshold.",
         t.slow_requests);
  metric(out, "streams_open", "gauge", "Detached responses not yet ended.", t.streams_open);
  metric(out, "stream_writes_dropped_total", "counter",
         "Writes to detached responses after their stop or end.", t.stream_writes_dropped);
  metric(out, "received_bytes_total", "counter", "Bytes read from clients.", t.bytes_in);
  metric(out, "sent_bytes_total", "counter", "Bytes written to clients.", t.bytes_out);
  metric(out, "input_buffered_bytes", "gauge", "Body bytes read, not yet read by handlers.",
         t.input_buffered);
  metric(out, "output_buffered_bytes", "gauge", "Bytes queued for clients, not yet sent.",
         t.output_buffered);
  metric(out, "params_pending_bytes", "gauge", "Params held by requests not yet ended.",
         t.params_pending);
  metric(out, "processes_running", "gauge", "Processes serving (Config::processes).",
         t.processes_running);
  metric(out, "process_restarts_total", "counter", "Child processes that died unasked, replaced.",
         t.process_restarts);
  metric(out, "process_recycles_total", "counter",
         "Child processes replaced for their request or memory limit, or a rolling restart.",
         t.process_recycles);
  if (full && !s.processes.empty()) {
    out +=
        "# HELP fcgimux_process_requests_total Requests the child process admitted.\n"
        "# TYPE fcgimux_process_requests_total counter\n";
    for (const ProcessSnapshot& process : s.processes) {
      append(out, "fcgimux_process_requests_total{{process=\"{}\",pid=\"{}\"}} {}\n",
             process.number, process.pid, process.requests);
    }
  }
  if (full) {
    out +=
        "# HELP fcgimux_worker_busy Whether the worker runs a request.\n"
        "# TYPE fcgimux_worker_busy gauge\n";
    for (const WorkerSnapshot& w : s.worker) {
      append(out, "fcgimux_worker_busy{{{}worker=\"{}\"}} {}\n", pool_label(s, w), w.index,
             w.running ? 1 : 0);
    }
    out +=
        "# HELP fcgimux_worker_requests_total Requests the worker began.\n"
        "# TYPE fcgimux_worker_requests_total counter\n";
    for (const WorkerSnapshot& w : s.worker) {
      append(out, "fcgimux_worker_requests_total{{{}worker=\"{}\"}} {}\n", pool_label(s, w),
             w.index, w.requests);
    }
  }
  return {"text/plain; version=0.0.4; charset=utf-8", std::move(out)};
}

// The length of the valid UTF-8 sequence at the front of `text`, 0 if it is not one.
std::size_t utf8_sequence(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  // Overlong forms, surrogates and code points past U+10FFFF.
  if (lead == 0xE0 && byte(1) < 0xA0) return 0;
  if (lead == 0xED && byte(1) > 0x9F) return 0;
  if (lead == 0xF0 && byte(1) < 0x90) return 0;
  if (lead == 0xF4 && byte(1) > 0x8F) return 0;
  return length;
}

}  // namespace

Query parse_query(std::string_view query_string) {
  bool html = false, xml = false, json = false, openmetrics = false, prom = false;
  Query query;
  while (!query_string.empty()) {
    const std::string_view pair = query_string.substr(0, query_string.find('&'));
    query_string.remove_prefix(std::min(query_string.size(), pair.size() + 1));
    const std::size_t equals = pair.find('=');
    const std::string_view key = pair.substr(0, equals);
    if (key == "html") html = true;
    if (key == "xml") xml = true;
    if (key == "json") json = true;
    if (key == "openmetrics") openmetrics = true;
    if (key == "prometheus") prom = true;
    if (key == "full") query.full = true;
    if (key == "pool" && equals != std::string_view::npos) query.pool = pair.substr(equals + 1);
    if (key == "refresh" && equals != std::string_view::npos) {
      const std::string_view value = pair.substr(equals + 1);
      unsigned seconds = 0;
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      if (error == std::errc() && end == value.data() + value.size()) {
        query.refresh_seconds = std::min(seconds, 3600u);
      }
    }
  }
  query.format = html          ? Format::Html
                 : xml         ? Format::Xml
                 : json        ? Format::Json
                 : openmetrics ? Format::OpenMetrics
                 : prom        ? Format::Prometheus
                               : Format::Text;
  return query;
}

Page render(const Snapshot& snapshot, const Query& query) {
  switch (query.format) {
    case Format::Json:
      return json(snapshot, query.full);
    case Format::Xml:
      return xml(snapshot, query.full);
    case Format::Html:
      return html(snapshot, query);
    case Format::OpenMetrics:
      return openmetrics(snapshot);
    case Format::Prometheus:
      return prometheus(snapshot, query.full);
    case Format::Text:
      break;
  }
  return text(snapshot, query.full);
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence(text);
      if (length == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD
        text.remove_prefix(1);
      } else {
        out.append(text.substr(0, length));
        text.remove_prefix(length);
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      append(out, "\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += static_cast<char>(c);
    }
    text.remove_prefix(1);
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#039;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace fcgimux::observe
