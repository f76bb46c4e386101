/* log.h - the clock and the log line. A leaf. */
#ifndef QS_LOG_H
#define QS_LOG_H

#include <stddef.h>
#include <stdint.h>

uint64_t qs_now_ns(void);

/* One line to stderr, prefixed with the UTC time; written with a single
 * write() so lines from different threads never interleave. Nothing when
 * qs_g.cfg.silent. Bytes outside printable ASCII in the line are escaped. */
void qs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The log's escaping (qs_log runs every line through it; exposed for tests):
 * bytes outside printable ASCII become \xNN and a backslash becomes \\, so
 * a log line is always one line and a file name cannot forge another. Stops
 * at NUL or n; always terminates dst; returns the escaped length. */
size_t qs_log_escape(char *dst, size_t cap, const char *src, size_t n);

#endif
