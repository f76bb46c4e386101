/* log.h - the clock and the log line. A leaf. */
#ifndef QS_LOG_H
#define QS_LOG_H

#include <stdint.h>

uint64_t qs_now_ns(void);

/* One line to stderr, prefixed with the UTC time; written with a single
 * write() so lines from different threads never interleave. Nothing when
 * qs_g.cfg.silent. */
void qs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
