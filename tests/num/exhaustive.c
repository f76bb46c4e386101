/* exhaustive.c - every one of the 2^32 float bit patterns through
 * qs_num_format and back through qs_num_parse (and, for every 64th, strtof
 * too): the same bits must come back, the text at most 15 bytes. (The
 * parser itself is checked against strtof on other inputs by the num unit
 * suite and tests/fuzz/fuzz_number.c.)
 *
 *   make num-exhaustive        (~2-4 min on 2 cores; not part of make test)
 *   build/num_exhaustive [THREADS] */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/num.h"

typedef struct job {
  uint64_t lo, hi, checked, failed;
} job;

static void *run(void *arg) {
  job *j = arg;
  char buf[QS_NUM_FORMAT_MAX + 1];
  for (uint64_t v = j->lo; v < j->hi; v++) {
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    if (!isfinite(f)) continue;
    size_t k = qs_num_format(buf, f);
    float g = 0;
    size_t pos = 0;
    uint32_t w = ~u;
    if (k <= 15 && qs_num_parse(buf, k, &pos, &g) == QS_NUM_OK && pos == k) memcpy(&w, &g, 4);
    if ((u & 63) == 0) {
      buf[k] = '\0';
      float h = strtof(buf, NULL);
      uint32_t x;
      memcpy(&x, &h, 4);
      if (x != u) w = ~u;
    }
    j->checked++;
    if (w != u && j->failed++ < 10) {
      buf[k] = '\0';
      fprintf(stderr, "num-exhaustive: %08x -> \"%s\" -> %08x\n", u, buf, w);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 2;
  if (nt < 1 || nt > 64) nt = 2;
  pthread_t th[64];
  job jobs[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t all = UINT64_C(1) << 32, step = all / (uint64_t)nt;
  for (int i = 0; i < nt; i++) {
    jobs[i] = (job){(uint64_t)i * step, i == nt - 1 ? all : (uint64_t)(i + 1) * step, 0, 0};
    if (pthread_create(&th[i], NULL, run, &jobs[i])) return 1;
  }
  uint64_t checked = 0, failed = 0;
  for (int i = 0; i < nt; i++) {
    pthread_join(th[i], NULL);
    checked += jobs[i].checked;
    failed += jobs[i].failed;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("num-exhaustive: %llu finite floats formatted and parsed back in %.0f s, %llu failed\n",
         (unsigned long long)checked, s, (unsigned long long)failed);
  return failed ? 1 : 0;
}
