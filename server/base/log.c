/* log.c - the clock, the log line, and the process-wide state. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

qs_state qs_g;

uint64_t qs_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void qs_log(const char *fmt, ...) {
  if (qs_g.cfg.silent) return;
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  k += (size_t)snprintf(line + k, sizeof line - k, ".%03ldZ ", ts.tv_nsec / 1000000);
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(line + k, sizeof line - k - 1, fmt, ap);
  va_end(ap);
  if (w < 0) return;
  k += (size_t)w < sizeof line - k - 1 ? (size_t)w : sizeof line - k - 2;
  line[k++] = '\n';
  ssize_t rc = write(2, line, k);
  (void)rc; /* nothing sensible to do if stderr is gone */
}
