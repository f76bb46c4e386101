/* log.c - the clock, the log line, and the process-wide state. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
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

size_t qs_log_escape(char *dst, size_t cap, const char *src, size_t n) {
  static const char hx[] = "0123456789abcdef";
  size_t k = 0;
  if (cap == 0) return 0;
  for (size_t i = 0; i < n && src[i]; i++) {
    unsigned char c = (unsigned char)src[i];
    bool plain = c >= 0x20 && c < 0x7f && c != '\\';
    size_t need = plain ? 1 : c == '\\' ? 2 : 4;
    if (k + need + 1 > cap) break;
    if (plain) {
      dst[k++] = (char)c;
    } else if (c == '\\') {
      dst[k++] = '\\';
      dst[k++] = '\\';
    } else {
      dst[k++] = '\\';
      dst[k++] = 'x';
      dst[k++] = hx[c >> 4];
      dst[k++] = hx[c & 15];
    }
  }
  dst[k] = '\0';
  return k;
}

/* One line per call, whatever the arguments hold: file names, paths, JSON
 * error texts and request bytes are all escaped here, in one place, so no
 * caller can forget and nothing can forge a second line. */
void qs_log(const char *fmt, ...) {
  if (qs_g.cfg.silent) return;
  char msg[1024], line[1024 + 40];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t k = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  k += (size_t)snprintf(line + k, sizeof line - k, ".%03ldZ ", ts.tv_nsec / 1000000);
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w < 0) return;
  k += qs_log_escape(line + k, sizeof line - k - 1, msg, sizeof msg);
  line[k++] = '\n';
  ssize_t rc = write(2, line, k);
  (void)rc; /* nothing sensible to do if stderr is gone */
}
