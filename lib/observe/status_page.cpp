// SPDX-License-Identifier: MIT
#include "observe/status_page.hpp"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <iterator>
#include <type_traits>
#include <variant>

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

// A field's value. Each format writes it its own way (see written()): a string escaped as the
// format needs, a time as local time or as seconds since the epoch, a double with php-fpm's
// two decimals.
using Value =
    std::variant<std::string, std::int64_t, std::uint64_t, double, system_clock::time_point>;

// One line of a block, under php-fpm's name for it. The formats agree on the names but for
// case, which the renderers handle, and a child's number, which json_name overrides.
struct Field {
  std::string_view name;  // as the text format writes it
  Value value;
  std::string_view json_name = {};  // JSON's and XML's name, where it differs from `name`
};

// A block of fields in the order php-fpm writes them: the pool's, a child's or a worker's.
using Block = std::vector<Field>;

// The pool's fields, then the supervisor's when the server has several processes: every
// format writes the two blocks together, the second right after the first.
Block summary_block(const Snapshot& s) {
  const PoolFields p = pool_fields(s);
  Block block{{"pool", std::string(s.pool)},
              {"process manager", "static"},
              {"start time", s.start_time},
              {"start since", p.start_since},
              {"accepted conn", p.accepted},
              {"listen queue", p.listen_queue},
              {"max listen queue", p.max_listen_queue},
              {"listen queue len", p.listen_queue_len},
              {"idle processes", p.idle},
              {"active processes", p.active},
              {"total processes", p.total},
              {"max active processes", p.max_active},
              {"max children reached", p.max_children_reached},
              {"slow requests", p.slow}};
  if (!s.processes.empty()) {
    block.insert(block.end(), {{"child processes", s.stats.processes_running},
                               {"process restarts", s.stats.process_restarts},
                               {"process recycles", s.stats.process_recycles}});
  }
  return block;
}

Block child_block(const ProcessSnapshot& process) {
  return {{"process number", std::uint64_t{process.number}, "number"},
          {"pid", process.pid},
          {"state", std::string(process.state)},
          {"start time", process.started},
          {"requests", process.requests},
          {"memory", process.rss_bytes}};
}

// A worker's fields, led by its pool's name when the server has named pools.
Block worker_block(const Snapshot& s, const WorkerSnapshot& w) {
  // Built from a list rather than with push_back, whose moved Field GCC 12 at -O2 takes for
  // uninitialized (-Wmaybe-uninitialized).
  Block block = s.pools.empty() ? Block() : Block{{"pool", std::string(w.pool)}};
  block.insert(block.end(), {{"pid", std::int64_t{w.thread_id}},
                             {"state", std::string(state_name(w))},
                             {"start time", w.started},
                             {"start since", seconds_between(w.started, s.now)},
                             {"requests", w.requests},
                             {"request duration", std::int64_t{w.duration.count()}},
                             {"request method", std::string(or_dash(w.method))},
                             {"request URI", std::string(or_dash(w.uri))},
                             {"content length", w.content_length},
                             {"user", std::string(or_dash(w.user))},
                             {"script", std::string(or_dash(w.script))},
                             {"last request cpu", 0.0},
                             {"last request memory", std::uint64_t{0}}});
  return block;
}

std::vector<Block> child_blocks(const Snapshot& s) {
  std::vector<Block> blocks;
  for (const ProcessSnapshot& process : s.processes) blocks.push_back(child_block(process));
  return blocks;
}

std::vector<Block> worker_blocks(const Snapshot& s) {
  std::vector<Block> blocks;
  for (const WorkerSnapshot& worker : s.worker) blocks.push_back(worker_block(s, worker));
  return blocks;
}

// `field`'s name in `format`. php-fpm's text format says "request URI" where its other formats
// write every name in lower case, and XML joins the words with dashes.
std::string field_name(const Field& field, Format format) {
  if (format == Format::Text) return std::string(field.name);
  const bool data = format == Format::Json || format == Format::Xml;
  std::string name(data && !field.json_name.empty() ? field.json_name : field.name);
  for (char& c : name) {
    c = format == Format::Xml && c == ' '
            ? '-'
            : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name;
}

// `value` as `format` writes it.
std::string written(const Value& value, Format format) {
  const bool data = format == Format::Json || format == Format::Xml;
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (format == Format::Json) return fmt::format("\"{}\"", json_escape(v));
          return format == Format::Text ? v : html_escape(v);
        } else if constexpr (std::is_same_v<T, system_clock::time_point>) {
          return data ? std::to_string(epoch_seconds(v)) : written(local_time(v), format);
        } else if constexpr (std::is_same_v<T, double>) {
          return fmt::format("{:.2f}", v);
        } else {
          return std::to_string(v);
        }
      },
      value);
}

// `name:` padded to php-fpm's value column, then the value, a line each.
void text_block(std::string& out, const Block& block) {
  for (const Field& field : block) {
    append(out, "{:<22}{}\n", field_name(field, Format::Text) + ":",
           written(field.value, Format::Text));
  }
}

Page text(const Snapshot& s, bool full) {
  std::string out;
  text_block(out, summary_block(s));
  if (full) {
    for (const Block& child : child_blocks(s)) {
      out += "\n========================\n";
      text_block(out, child);
    }
    for (const Block& worker : worker_blocks(s)) {
      out += "\n************************\n";
      text_block(out, worker);
    }
  }
  return {"text/plain", std::move(out)};
}

// `"name":value,...`.
void json_members(std::string& out, const Block& block) {
  for (const Field& field : block) {
    if (&field != &block.front()) out += ',';
    append(out, "\"{}\":{}", field_name(field, Format::Json), written(field.value, Format::Json));
  }
}

void json_array(std::string& out, const std::vector<Block>& blocks) {
  out += '[';
  for (const Block& block : blocks) {
    if (&block != &blocks.front()) out += ',';
    out += '{';
    json_members(out, block);
    out += '}';
  }
  out += ']';
}

Page json(const Snapshot& s, bool full) {
  std::string out = "{";
  json_members(out, summary_block(s));
  if (full) {
    if (!s.processes.empty()) {
      out += ",\"children\":";
      json_array(out, child_blocks(s));
    }
    out += ", \"processes\":";
    json_array(out, worker_blocks(s));
  }
  out += '}';
  return {"application/json", std::move(out)};
}

// `<name>value</name>` for each field, each followed by `separator`.
void xml_elements(std::string& out, const Block& block, std::string_view separator) {
  for (const Field& field : block) {
    append(out, "<{0}>{1}</{0}>{2}", field_name(field, Format::Xml),
           written(field.value, Format::Xml), separator);
  }
}

// `<list>`, then each block as an `<item>` on a line of its own, then `</list>`.
void xml_list(std::string& out, std::string_view list, std::string_view item,
              const std::vector<Block>& blocks) {
  append(out, "<{}>\n", list);
  for (const Block& block : blocks) {
    append(out, "<{}>", item);
    xml_elements(out, block, "");
    append(out, "</{}>\n", item);
  }
  append(out, "</{}>\n", list);
}

Page xml(const Snapshot& s, bool full) {
  std::string out = "<?xml version=\"1.0\" ?>\n<status>\n";
  xml_elements(out, summary_block(s), "\n");
  if (full) {
    if (!s.processes.empty()) xml_list(out, "children", "child", child_blocks(s));
    xml_list(out, "processes", "process", worker_blocks(s));
  }
  out += "</status>";
  return {"text/xml", std::move(out)};
}

// A bordered table: a header row of the names in `header`, then a row of values per block.
// The header comes apart from the rows so that it stands when there are none.
void html_table(std::string& out, const Block& header, const std::vector<Block>& rows) {
  out += "<table border=\"1\">\n<tr>";
  for (const Field& field : header) append(out, "<th>{}</th>", field_name(field, Format::Html));
  out += "</tr>\n";
  for (const Block& row : rows) {
    out += "<tr>";
    for (const Field& field : row) append(out, "<td>{}</td>", written(field.value, Format::Html));
    out += "</tr>\n";
  }
  out += "</table>";
}

Page html(const Snapshot& s, const Query& query) {
  std::string out =
      "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
      "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n<head>";
  if (query.refresh_seconds > 0) {
    append(out, "<meta http-equiv=\"refresh\" content=\"{}\" />", query.refresh_seconds);
  }
  append(out, "<title>fcgimux status: {}</title></head>\n<body>\n<table>\n", html_escape(s.pool));
  for (const Field& field : summary_block(s)) {
    append(out, "<tr><th>{}</th><td>{}</td></tr>\n", field_name(field, Format::Html),
           written(field.value, Format::Html));
  }
  out += "</table>\n";
  if (query.full) {
    // Blank snapshots lend the header rows their names.
    if (!s.processes.empty()) {
      html_table(out, child_block({}), child_blocks(s));
      out += '\n';
    }
    html_table(out, worker_block(s, {}), worker_blocks(s));
  }
  out += "</body></html>";
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

// The Stats counters as fcgimux_* metrics, in the page's order, after fcgimux_workers (the
// snapshot's worker count, not a counter).
struct StatsMetric {
  std::string_view name;
  std::string_view type;
  std::string_view help;
  std::uint64_t Stats::*member;
};
constexpr StatsMetric kStatsMetrics[] = {
    {"connections_accepted_total", "counter", "Connections accepted.",
     &Stats::connections_accepted},
    {"connections_refused_total", "counter",
     "Connections closed at once: past max_connections or not an allowed client.",
     &Stats::connections_refused},
    {"connections_open", "gauge", "Connections open.", &Stats::connections_open},
    {"requests_admitted_total", "counter", "Requests given to the workers.",
     &Stats::requests_admitted},
    {"requests_completed_total", "counter", "Requests whose handler returned.",
     &Stats::requests_completed},
    {"requests_failed_total", "counter", "Requests whose handler threw.", &Stats::requests_failed},
    {"requests_body_too_large_total", "counter",
     "Requests answered 413 as the handler's read_all() found the body past its limit.",
     &Stats::requests_body_too_large},
    {"requests_aborted_total", "counter", "Requests cancelled by an abort, a close or a deadline.",
     &Stats::requests_aborted},
    {"requests_overloaded_total", "counter", "Requests refused past max_requests.",
     &Stats::requests_overloaded},
    {"requests_refused_total", "counter",
     "Requests refused: role, multiplexing, params or body limits.", &Stats::requests_refused},
    {"requests_refused_params_total", "counter",
     "Requests refused 431: params past max_params_bytes.", &Stats::requests_refused_params},
    {"requests_refused_body_total", "counter",
     "Requests refused 413: CONTENT_LENGTH past max_body_bytes.", &Stats::requests_refused_body},
    {"requests_abandoned_total", "counter",
     "Requests still running when the server stopped without them.", &Stats::requests_abandoned},
    {"requests_running", "gauge", "Requests in a handler.", &Stats::requests_running},
    {"requests_queued", "gauge", "Requests waiting for a worker.", &Stats::requests_queued},
    {"requests_running_max", "gauge", "Most requests in handlers at once.",
     &Stats::requests_running_max},
    {"requests_queued_max", "gauge", "Most requests waiting at once.", &Stats::requests_queued_max},
    {"slow_requests_total", "counter", "Requests that ran past slow_request_threshold.",
     &Stats::slow_requests},
    {"streams_open", "gauge", "Detached responses not yet ended.", &Stats::streams_open},
    {"stream_writes_dropped_total", "counter",
     "Writes to detached responses after their stop or end.", &Stats::stream_writes_dropped},
    {"received_bytes_total", "counter", "Bytes read from clients.", &Stats::bytes_in},
    {"sent_bytes_total", "counter", "Bytes written to clients.", &Stats::bytes_out},
    {"input_buffered_bytes", "gauge", "Body bytes read, not yet read by handlers.",
     &Stats::input_buffered},
    {"output_buffered_bytes", "gauge", "Bytes queued for clients, not yet sent.",
     &Stats::output_buffered},
    {"params_pending_bytes", "gauge", "Params held by requests not yet ended.",
     &Stats::params_pending},
    {"processes_running", "gauge", "Processes serving (Config::processes).",
     &Stats::processes_running},
    {"process_restarts_total", "counter", "Child processes that died unasked, replaced.",
     &Stats::process_restarts},
    {"process_recycles_total", "counter",
     "Child processes replaced for their request or memory limit, or a rolling restart.",
     &Stats::process_recycles},
};

Page prometheus(const Snapshot& s, bool full) {
  std::string out;
  phpfpm_metrics(out, s);
  metric(out, "workers", "gauge", "Worker threads.", s.workers);
  for (const StatsMetric& m : kStatsMetrics) metric(out, m.name, m.type, m.help, s.stats.*m.member);
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
