// SPDX-License-Identifier: MIT

// go_echo: the echo contract (examples/echo_handler.hpp) on Go's standard net/http/fcgi, which
// multiplexes: each request runs in its own goroutine. A semaphore caps running handlers at
// -workers, so that the pool matches fcgimux's and libfcgi's thread count. A request with
// "stream=1" in its query gets an event stream instead (see stream), outside the semaphore.
//
// Built by bench/run with the standard library only (a go.mod without requires, GOFLAGS=-mod=mod,
// GOPROXY=off): go build -o go_echo .
// Usage: go_echo -listen HOST:PORT -workers N
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"sort"
	"strconv"
	"strings"
	"time"
)

const chunkSize = 16 * 1024

var xs = []byte(strings.Repeat("x", chunkSize))

// queryNumber returns the value of key in a query string such as "a=1&size=42" when it is a
// decimal number.
func queryNumber(query, key string) (int, bool) {
	for _, pair := range strings.Split(query, "&") {
		name, value, found := strings.Cut(pair, "=")
		if !found || name != key {
			continue
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

type echo struct{ slots chan struct{} }

// stream is bench/run's streams scenario, as fcgimux_bench_echo_server serves it: a
// text/event-stream response, its header flushed at once, then one event a second, each
// flushed, until the client leaves (a write fails). It holds no slot of the semaphore, as a
// detached fcgimux response holds no worker: in Go, one goroutine per open stream.
func stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	flusher.Flush()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for n := 1; ; n++ {
		select {
		case <-ticker.C:
		case <-r.Context().Done():
			return
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: %d\n\n", n, n); err != nil {
			return
		}
		flusher.Flush()
	}
}

func (e echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n, ok := queryNumber(r.URL.RawQuery, "stream"); ok && n == 1 {
		stream(w, r)
		return
	}
	if e.slots != nil {
		e.slots <- struct{}{}
		defer func() { <-e.slots }()
	}
	query := r.URL.RawQuery
	if ms, ok := queryNumber(query, "sleep_ms"); ok {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	if status, ok := queryNumber(query, "status"); ok {
		w.WriteHeader(status)
	}
	if size, ok := queryNumber(query, "size"); ok {
		for left := size; left > 0; left -= chunkSize {
			w.Write(xs[:min(left, chunkSize)])
		}
		return
	}
	chunk := make([]byte, chunkSize)
	n, _ := io.ReadFull(r.Body, chunk[:1])
	if n == 0 {
		writeParams(w, r)
		return
	}
	w.Write(chunk[:n])
	io.CopyBuffer(w, r.Body, chunk)
}

// writeParams lists the params one "NAME=VALUE\n" line each, sorted by name. net/http/fcgi
// turns the standard CGI params into the http.Request and hands back only the others
// (fcgi.ProcessEnv), so the standard ones are rebuilt from the request here.
func writeParams(w http.ResponseWriter, r *http.Request) {
	params := fcgi.ProcessEnv(r)
	params["REQUEST_METHOD"] = r.Method
	params["REQUEST_URI"] = r.RequestURI
	params["QUERY_STRING"] = r.URL.RawQuery
	params["SERVER_PROTOCOL"] = r.Proto
	for name, values := range r.Header {
		params["HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = values[0]
	}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "%s=%s\n", name, params[name])
	}
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "HOST:PORT to listen on")
	workers := flag.Int("workers", 16, "handlers running at once at most (0: no limit)")
	flag.Parse()
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	handler := echo{}
	if *workers > 0 {
		handler.slots = make(chan struct{}, *workers)
	}
	log.Fatal(fcgi.Serve(listener, handler))
}
