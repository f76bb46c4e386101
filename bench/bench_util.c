/* bench_util.c - the benches' report printer and clock (bench_util.h). */
#include "bench_util.h"

#include <stdarg.h>
#include <sys/stat.h>

static FILE *report;

clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

FILE *bench_report_open(const char *dir, const char *name, char *path, size_t cap) {
  bench_report_close();
  mkdir(dir, 0755); /* EEXIST is fine; any other failure shows in fopen */
  snprintf(path, cap, "%s/%s", dir, name);
  report = fopen(path, "w");
  return report;
}

void bench_report_close(void) {
  if (report) fclose(report);
  report = NULL;
}

void bench_out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  if (report) {
    va_start(ap, fmt);
    vfprintf(report, fmt, ap);
    va_end(ap);
  }
  fflush(stdout);
}

double bench_now_s(void) {
  struct timespec t;
  clock_gettime(bench_clock, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
