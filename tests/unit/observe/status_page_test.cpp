// SPDX-License-Identifier: MIT
// The status page's formats: lib/observe/status_page.cpp, against php-fpm's (fpm_status.c).

#include "observe/status_page.hpp"

#include <time.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace fcgimux::observe {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kStart{seconds(1'764'230'400)};  // 2025-11-27T08:00:00Z

// php-fpm's text time format, in local time, as the page writes it.
std::string local(system_clock::time_point time) {
  const time_t epoch = system_clock::to_time_t(time);
  tm parts{};
  localtime_r(&epoch, &parts);
  char text[64];
  strftime(text, sizeof text, "%d/%b/%Y:%H:%M:%S %z", &parts);
  return text;
}

// Two workers: one idle after two requests, one running a request for 1.5 s.
Snapshot sample() {
  Snapshot s;
  s.pool = "www";
  s.start_time = kStart;
  s.now = kStart + seconds(100);
  s.stats.requests_admitted = 42;
  s.stats.requests_queued = 3;
  s.stats.requests_queued_max = 7;
  s.stats.requests_running = 1;
  s.stats.requests_running_max = 2;
  s.stats.requests_overloaded = 5;
  s.stats.slow_requests = 1;
  s.stats.streams_open = 4;
  s.stats.stream_writes_dropped = 6;
  s.workers = 2;
  s.queue_capacity = 1022;
  observe::WorkerSnapshot idle;
  idle.index = 0;
  idle.thread_id = 1001;
  idle.started = kStart + seconds(1);
  idle.requests = 2;
  idle.method = "POST";
  idle.uri = "/upload?x=1";
  idle.content_length = 12;
  idle.duration = microseconds(2500);
  observe::WorkerSnapshot busy;
  busy.index = 1;
  busy.thread_id = 1002;
  busy.started = kStart + seconds(1);
  busy.running = true;
  busy.requests = 9;
  busy.method = "GET";
  busy.uri = "/a\"b<c>";
  busy.user = "alice";
  busy.script = "/srv/app.php";
  busy.duration = microseconds(1'500'000);
  s.worker = {idle, busy};
  return s;
}

TEST_CASE("the text page has php-fpm's fields in its order and layout", "[observe]") {
  const Page page = render(sample(), Query{});
  CHECK(page.content_type == "text/plain");
  CHECK(page.body ==
        "pool:                 www\n"
        "process manager:      static\n"
        "start time:           " +
            local(kStart) +
            "\n"
            "start since:          100\n"
            "accepted conn:        42\n"
            "listen queue:         3\n"
            "max listen queue:     7\n"
            "listen queue len:     1022\n"
            "idle processes:       1\n"
            "active processes:     1\n"
            "total processes:      2\n"
            "max active processes: 2\n"
            "max children reached: 5\n"
            "slow requests:        1\n");
}

TEST_CASE("the full text page adds php-fpm's block per worker", "[observe]") {
  const Page page = render(sample(), Query{.full = true});
  const std::string started = local(kStart + seconds(1));
  CHECK_THAT(page.body, Catch::EndsWith("slow requests:        1\n"
                                        "\n"
                                        "************************\n"
                                        "pid:                  1001\n"
                                        "state:                Idle\n"
                                        "start time:           " +
                                        started +
                                        "\n"
                                        "start since:          99\n"
                                        "requests:             2\n"
                                        "request duration:     2500\n"
                                        "request method:       POST\n"
                                        "request URI:          /upload?x=1\n"
                                        "content length:       12\n"
                                        "user:                 -\n"
                                        "script:               -\n"
                                        "last request cpu:     0.00\n"
                                        "last request memory:  0\n"
                                        "\n"
                                        "************************\n"
                                        "pid:                  1002\n"
                                        "state:                Running\n"
                                        "start time:           " +
                                        started +
                                        "\n"
                                        "start since:          99\n"
                                        "requests:             9\n"
                                        "request duration:     1500000\n"
                                        "request method:       GET\n"
                                        "request URI:          /a\"b<c>\n"
                                        "content length:       0\n"
                                        "user:                 alice\n"
                                        "script:               /srv/app.php\n"
                                        "last request cpu:     0.00\n"
                                        "last request memory:  0\n"));
}

TEST_CASE("the JSON page has php-fpm's keys, times as epoch seconds", "[observe]") {
  CHECK(render(sample(), Query{.format = Format::Json}).body ==
        "{\"pool\":\"www\",\"process manager\":\"static\",\"start time\":1764230400,"
        "\"start since\":100,\"accepted conn\":42,\"listen queue\":3,\"max listen queue\":7,"
        "\"listen queue len\":1022,\"idle processes\":1,\"active processes\":1,"
        "\"total processes\":2,\"max active processes\":2,\"max children reached\":5,"
        "\"slow requests\":1}");
  const Page full = render(sample(), Query{.format = Format::Json, .full = true});
  CHECK(full.content_type == "application/json");
  CHECK_THAT(full.body,
             Catch::EndsWith(
                 "\"slow requests\":1, \"processes\":["
                 "{\"pid\":1001,\"state\":\"Idle\",\"start time\":1764230401,\"start since\":99,"
                 "\"requests\":2,\"request duration\":2500,\"request method\":\"POST\","
                 "\"request uri\":\"/upload?x=1\",\"content length\":12,\"user\":\"-\","
                 "\"script\":\"-\",\"last request cpu\":0.00,\"last request memory\":0},"
                 "{\"pid\":1002,\"state\":\"Running\",\"start time\":1764230401,"
                 "\"start since\":99,\"requests\":9,\"request duration\":1500000,"
                 "\"request method\":\"GET\",\"request uri\":\"/a\\\"b<c>\","
                 "\"content length\":0,\"user\":\"alice\",\"script\":\"/srv/app.php\","
                 "\"last request cpu\":0.00,\"last request memory\":0}]}"));
}

TEST_CASE("the XML page has php-fpm's elements, text escaped", "[observe]") {
  const Page page = render(sample(), Query{.format = Format::Xml, .full = true});
  CHECK(page.content_type == "text/xml");
  CHECK_THAT(page.body, Catch::StartsWith("<?xml version=\"1.0\" ?>\n<status>\n<pool>www</pool>\n"
                                          "<process-manager>static</process-manager>\n"
                                          "<start-time>1764230400</start-time>\n"));
  CHECK_THAT(page.body, Catch::Contains("<slow-requests>1</slow-requests>\n<processes>\n"));
  CHECK_THAT(page.body, Catch::Contains("<request-uri>/a&quot;b&lt;c&gt;</request-uri>"));
  CHECK_THAT(page.body, Catch::EndsWith("</process>\n</processes>\n</status>"));
}

TEST_CASE("the HTML page refreshes itself and escapes what requests sent", "[observe]") {
  const Page page = render(sample(), Query{.format = Format::Html, .full = true});
  CHECK(page.content_type == "text/html");
  CHECK_THAT(page.body, Catch::Contains("<meta http-equiv=\"refresh\" content=\"5\" />"));
  CHECK_THAT(page.body, Catch::Contains("<tr><th>active processes</th><td>1</td></tr>\n"));
  CHECK_THAT(page.body, Catch::Contains("<td>/a&quot;b&lt;c&gt;</td>"));
  CHECK_THAT(page.body, !Catch::Contains("<c>"));
  CHECK_THAT(page.body, Catch::EndsWith("</table></body></html>"));
  const Page still = render(sample(), Query{.format = Format::Html, .refresh_seconds = 0});
  CHECK_THAT(still.body, !Catch::Contains("refresh"));
  CHECK_THAT(still.body, Catch::EndsWith("</table>\n</body></html>"));
}

TEST_CASE("the OpenMetrics page is php-fpm's, ending in # EOF", "[observe]") {
  const Page page = render(sample(), Query{.format = Format::OpenMetrics, .full = true});
  CHECK(page.content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8");
  CHECK_THAT(page.body, Catch::StartsWith("# HELP phpfpm_up Could pool www using a static PM on "
                                          "PHP-FPM be reached?\n# TYPE phpfpm_up gauge\n"
                                          "phpfpm_up 1\n"));
  for (const char* sample_line :
       {"\nphpfpm_start_since 100\n", "\nphpfpm_accepted_connections 42\n",
        "\nphpfpm_listen_queue 3\n", "\nphpfpm_max_listen_queue 7\n",
        "\nphpfpm_listen_queue_length 1022\n", "\nphpfpm_idle_processes 1\n",
        "\nphpfpm_active_processes 1\n", "\nphpfpm_total_processes 2\n",
        "\nphpfpm_max_active_processes 2\n", "\nphpfpm_max_children_reached 5\n",
        "\nphpfpm_slow_requests 1\n"}) {
    CHECK_THAT(page.body, Catch::Contains(sample_line));
  }
  CHECK_THAT(page.body, Catch::EndsWith("phpfpm_slow_requests 1\n# EOF\n"));
}

TEST_CASE("the Prometheus page adds every counter and, with full, each worker", "[observe]") {
  const Page page = render(sample(), Query{.format = Format::Prometheus, .full = true});
  CHECK(page.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK_THAT(page.body, Catch::Contains("\nphpfpm_active_processes 1\n"));
  CHECK_THAT(page.body, Catch::Contains("# TYPE fcgimux_requests_queued gauge\n"
                                        "fcgimux_requests_queued 3\n"));
  CHECK_THAT(page.body, Catch::Contains("\nfcgimux_slow_requests_total 1\n"));
  CHECK_THAT(page.body, Catch::Contains("# TYPE fcgimux_streams_open gauge\n"
                                        "fcgimux_streams_open 4\n"));
  CHECK_THAT(page.body, Catch::Contains("\nfcgimux_stream_writes_dropped_total 6\n"));
  CHECK_THAT(page.body, Catch::Contains("\nfcgimux_worker_busy{worker=\"1\"} 1\n"));
  CHECK_THAT(page.body, Catch::Contains("\nfcgimux_worker_requests_total{worker=\"0\"} 2\n"));
  CHECK_THAT(page.body, !Catch::Contains("# EOF"));
  // Every sample line is "name value" or "name{labels} value" with a number.
  std::size_t start = 0;
  std::size_t samples = 0;
  while (start < page.body.size()) {
    const std::size_t end = page.body.find('\n', start);
    REQUIRE(end != std::string::npos);
    const std::string line = page.body.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    CAPTURE(line);
    const std::size_t space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    CHECK(line.find_first_not_of("0123456789", space + 1) == std::string::npos);
    ++samples;
  }
  // php-fpm's 12, workers, one per Stats counter (25), the process figures (3), and 2 per
  // worker.
  CHECK(samples == 12 + 1 + 25 + 3 + 4);
}

TEST_CASE("a server of several processes shows their figures and, with full, each process",
          "[observe]") {
  Snapshot s = sample();
  s.stats.processes_running = 2;
  s.stats.process_restarts = 5;
  s.stats.process_recycles = 7;
  s.processes = {ProcessSnapshot{.number = 0,
                                 .pid = 4242,
                                 .state = "Ready",
                                 .started = s.start_time,
                                 .requests = 11,
                                 .rss_bytes = 4096},
                 ProcessSnapshot{.number = 1,
                                 .pid = 4243,
                                 .state = "Retiring",
                                 .started = s.start_time,
                                 .requests = 1000,
                                 .rss_bytes = 8192}};
  const Page text = render(s, Query{.format = Format::Text, .full = true});
  CHECK_THAT(text.body, Catch::Contains("child processes:      2\n"
                                        "process restarts:     5\n"
                                        "process recycles:     7\n"));
  CHECK_THAT(text.body, Catch::Contains("process number:       1\n"
                                        "pid:                  4243\n"
                                        "state:                Retiring\n"));
  const Page json = render(s, Query{.format = Format::Json, .full = true});
  CHECK_THAT(json.body, Catch::Contains(
                            "\"child processes\":2,\"process restarts\":5,\"process recycles\":7"));
  CHECK_THAT(json.body, Catch::Contains("{\"number\":0,\"pid\":4242,\"state\":\"Ready\","));
  const Page metrics = render(s, Query{.format = Format::Prometheus, .full = true});
  CHECK_THAT(metrics.body, Catch::Contains("\nfcgimux_process_restarts_total 5\n"));
  CHECK_THAT(metrics.body,
             Catch::Contains("\nfcgimux_process_requests_total{process=\"1\",pid=\"4243\"} 1000\n"));
  const Page xml = render(s, Query{.format = Format::Xml, .full = true});
  CHECK_THAT(xml.body, Catch::Contains("<slow-requests>1</slow-requests>\n"
                                       "<child-processes>2</child-processes>\n"
                                       "<process-restarts>5</process-restarts>\n"
                                       "<process-recycles>7</process-recycles>\n"));
  CHECK_THAT(xml.body, Catch::Contains("<children>\n<child><number>0</number><pid>4242</pid>"
                                       "<state>Ready</state>"));
  CHECK_THAT(xml.body, Catch::Contains("<requests>1000</requests><memory>8192</memory></child>\n"
                                       "</children>\n<processes>\n"));
  const Page html = render(s, Query{.format = Format::Html, .full = true});
  CHECK_THAT(html.body, Catch::Contains("<tr><th>child processes</th><td>2</td></tr>\n"
                                        "<tr><th>process restarts</th><td>5</td></tr>\n"
                                        "<tr><th>process recycles</th><td>7</td></tr>\n"
                                        "</table>\n"));
  CHECK_THAT(html.body, Catch::Contains("<tr><td>1</td><td>4243</td><td>Retiring</td>"));
  // One process: none of it in php-fpm's formats.
  for (const Format format : {Format::Text, Format::Json, Format::Xml, Format::Html}) {
    CAPTURE(static_cast<int>(format));
    const std::string body = render(sample(), Query{.format = format, .full = true}).body;
    CHECK_THAT(body, !Catch::Contains("child processes") && !Catch::Contains("child-processes") &&
                         !Catch::Contains("process number") && !Catch::Contains("<children>"));
  }
}

TEST_CASE("the query string picks the format as php-fpm does", "[observe]") {
  CHECK(parse_query("").format == Format::Text);
  CHECK(parse_query("json").format == Format::Json);
  CHECK(parse_query("json=1").format == Format::Json);
  CHECK(parse_query("full&json").full);
  CHECK(parse_query("full&json").format == Format::Json);
  CHECK_FALSE(parse_query("json").full);
  CHECK(parse_query("xml&json").format == Format::Xml);
  CHECK(parse_query("json&html").format == Format::Html);
  CHECK(parse_query("openmetrics").format == Format::OpenMetrics);
  CHECK(parse_query("prometheus&full").format == Format::Prometheus);
  CHECK(parse_query("jsonx&xjson").format == Format::Text);
  CHECK(parse_query("html&refresh=30").refresh_seconds == 30);
  CHECK(parse_query("html&refresh=0").refresh_seconds == 0);
  CHECK(parse_query("html&refresh=99999").refresh_seconds == 3600);
  CHECK(parse_query("html&refresh=soon").refresh_seconds == 5);
}

TEST_CASE("JSON strings are escaped and kept valid UTF-8", "[observe]") {
  CHECK(json_escape("plain /path?x=1") == "plain /path?x=1");
  CHECK(json_escape("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(json_escape(std::string("\n\t\x01\x7f", 4)) == "\\u000a\\u0009\\u0001\\u007f");
  CHECK(json_escape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // A lone continuation byte, a truncated sequence, an overlong form, a surrogate.
  CHECK(json_escape("a\x80z") == "a\xEF\xBF\xBDz");
  CHECK(json_escape("a\xE2\x82") == "a\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(json_escape("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(json_escape("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("HTML text is escaped", "[observe]") {
  CHECK(html_escape("<a href=\"x\">it's & more</a>") ==
        "&lt;a href=&quot;x&quot;&gt;it&#039;s &amp; more&lt;/a&gt;");
}

}  // namespace
}  // namespace fcgimux::observe
