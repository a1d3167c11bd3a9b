// SPDX-License-Identifier: MIT
// libfcgi_echo: the echo contract (examples/echo_handler.hpp) on libfcgi (Debian's libfcgi-dev),
// the reference FastCGI library, as its threaded example (examples/threaded.c) runs it: N
// threads, each calling FCGX_Accept_r on one shared listening socket with a mutex around the
// accept. A thread serves one connection at a time; libfcgi does not multiplex (a second
// request on a busy connection is answered FCGI_CANT_MPX_CONN).
//
// With FCGI_KEEP_CONN the mutex also covers reading the next request of a kept connection
// (FCGX_Accept_r does both), so one thread waiting on a quiet connection blocks every other
// thread's next request, and a spare thread blocked in accept() under the mutex blocks all
// kept connections until a new connection arrives. Linux's accept() needs no serialization,
// so "nomutex" runs the same loop without the mutex: the fairer baseline for throughput.
//
// Built by bench/run, not by CMake: cc -O2 libfcgi_echo.c -lfcgi -lpthread
// Usage: libfcgi_echo HOST:PORT THREADS [mutex|nomutex]   (default mutex)

#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kChunkSize = 16 * 1024, kBacklog = 4096 };

static int listen_socket;
static char xs[kChunkSize];  // kChunkSize bytes of 'x', for size=N
static pthread_mutex_t accept_mutex = PTHREAD_MUTEX_INITIALIZER;
static int use_mutex = 1;

// The value of `key` in a query string such as "a=1&size=42" when it is a decimal number;
// -1 otherwise.
static long query_number(const char* query, const char* key) {
  const size_t key_length = strlen(key);
  for (const char* pair = query; pair != NULL && *pair != '\0';) {
    const char* next = strchr(pair, '&');
    if (strncmp(pair, key, key_length) == 0 && pair[key_length] == '=') {
      const char* digits = pair + key_length + 1;
      char* end = NULL;
      const long value = strtol(digits, &end, 10);
      const char* stop = next != NULL ? next : pair + strlen(pair);
      if (end != digits && end == stop && value >= 0) return value;
    }
    pair = next != NULL ? next + 1 : NULL;
  }
  return -1;
}

static int compare_params(const void* a, const void* b) {
  const char* x = *(const char* const*)a;
  const char* y = *(const char* const*)b;
  // Sort by name: compare up to the '=' of each, '=' ordering before any name byte.
  for (;; ++x, ++y) {
    const unsigned char cx = *x == '=' ? 0 : (unsigned char)*x;
    const unsigned char cy = *y == '=' ? 0 : (unsigned char)*y;
    if (cx != cy || cx == 0) return (int)cx - (int)cy;
  }
}

// One "NAME=VALUE\n" line per param, sorted by name.
static void write_params(FCGX_Request* request) {
  size_t count = 0;
  while (request->envp[count] != NULL) ++count;
  char** sorted = malloc(count * sizeof *sorted);
  if (sorted == NULL) return;
  memcpy(sorted, request->envp, count * sizeof *sorted);
  qsort(sorted, count, sizeof *sorted, compare_params);
  for (size_t i = 0; i < count; ++i) {
    FCGX_PutS(sorted[i], request->out);
    FCGX_PutChar('\n', request->out);
  }
  free(sorted);
}

static void handle(FCGX_Request* request) {
  const char* query = FCGX_GetParam("QUERY_STRING", request->envp);
  if (query == NULL) query = "";
  const long sleep_ms = query_number(query, "sleep_ms");
  if (sleep_ms > 0) {
    const struct timespec pause = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
  }
  const long status = query_number(query, "status");
  FCGX_FPrintF(request->out, "Status: %ld\r\nContent-Type: text/plain\r\n\r\n",
               status >= 0 ? status : 200L);

  const long size = query_number(query, "size");
  if (size >= 0) {
    for (long left = size; left > 0; left -= kChunkSize) {
      FCGX_PutStr(xs, (int)(left < kChunkSize ? left : kChunkSize), request->out);
    }
    return;
  }
  char chunk[kChunkSize];
  int count = FCGX_GetStr(chunk, kChunkSize, request->in);
  if (count == 0) {
    write_params(request);
    return;
  }
  for (; count > 0; count = FCGX_GetStr(chunk, kChunkSize, request->in)) {
    FCGX_PutStr(chunk, count, request->out);
  }
}

static void* serve(void* unused) {
  (void)unused;
  FCGX_Request request;
  FCGX_InitRequest(&request, listen_socket, 0);
  for (;;) {
    // As libfcgi's examples/threaded.c: "Some platforms require accept() serialization".
    if (use_mutex) pthread_mutex_lock(&accept_mutex);
    const int rc = FCGX_Accept_r(&request);
    if (use_mutex) pthread_mutex_unlock(&accept_mutex);
    if (rc < 0) break;
    handle(&request);
    FCGX_Finish_r(&request);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || atoi(argv[2]) <= 0 ||
      (argc == 4 && strcmp(argv[3], "mutex") != 0 && strcmp(argv[3], "nomutex") != 0)) {
    fprintf(stderr, "usage: libfcgi_echo HOST:PORT THREADS [mutex|nomutex]\n");
    return 2;
  }
  use_mutex = argc < 4 || strcmp(argv[3], "mutex") == 0;
  memset(xs, 'x', sizeof xs);
  if (FCGX_Init() != 0) {
    fprintf(stderr, "libfcgi_echo: FCGX_Init failed\n");
    return 1;
  }
  listen_socket = FCGX_OpenSocket(argv[1], kBacklog);
  if (listen_socket < 0) {
    fprintf(stderr, "libfcgi_echo: cannot listen on %s\n", argv[1]);
    return 1;
  }
  const int threads = atoi(argv[2]);
  pthread_t* ids = calloc((size_t)threads, sizeof *ids);
  if (ids == NULL) return 1;
  for (int i = 0; i < threads; ++i) pthread_create(&ids[i], NULL, serve, NULL);
  for (int i = 0; i < threads; ++i) pthread_join(ids[i], NULL);
  free(ids);
  return 0;
}
