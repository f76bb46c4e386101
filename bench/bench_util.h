/* bench_util.h - what the C benches (bench_kernels.c, bench_json.c, bench_fp32.c) share:
 * the report printer and the clock they time with. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* Creates dir (if missing) and opens dir/name as the report file, which
 * every bench_out() line from now on also goes to (the file replaces one
 * opened before). The path is left in path[cap]. NULL if it cannot be
 * opened: the report then goes to stdout only. */
FILE *bench_report_open(const char *dir, const char *name, char *path, size_t cap);
void bench_report_close(void);

/* printf to stdout and to the report file; stdout is flushed at once, so a
 * long run shows its progress. */
void bench_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The clock bench_now_s() reads: this thread's CPU time by default. Other
 * processes share these cores and would otherwise add the time we sit
 * descheduled to whatever runs then (everything measured runs on the
 * calling thread). A bench may set CLOCK_MONOTONIC for wall-clock time. */
extern clockid_t bench_clock;
double bench_now_s(void);
#endif
