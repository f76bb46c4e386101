/* bench_peak_avx512vnni.c - vpdpbusd peak, zmm and EVEX ymm (bench_peak.h). */
#include <immintrin.h>

#include "bench_peak.h"

/* The inputs come from the seed, so the compiler cannot fold the chains;
 * 16 independent accumulators cover the instruction's latency. */
int32_t bench_peak_zmm(long iters, int32_t seed) {
  __m512i a[16], x = _mm512_set1_epi32(seed), w = _mm512_set1_epi32(seed * 7 + 1);
  for (int i = 0; i < 16; i++) a[i] = _mm512_set1_epi32(seed + i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, w);
    __asm__ volatile("" : "+v"(x), "+v"(w)); /* fresh inputs each round, for the compiler */
  }
  __m512i s = a[0];
  for (int i = 1; i < 16; i++) s = _mm512_add_epi32(s, a[i]);
  return _mm512_reduce_add_epi32(s);
}

int32_t bench_peak_ymm_evex(long iters, int32_t seed) {
  __m256i a[16], x = _mm256_set1_epi32(seed), w = _mm256_set1_epi32(seed * 7 + 1);
  for (int i = 0; i < 16; i++) a[i] = _mm256_set1_epi32(seed + i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) a[i] = _mm256_dpbusd_epi32(a[i], x, w);
    __asm__ volatile("" : "+v"(x), "+v"(w));
  }
  __m256i s = a[0];
  for (int i = 1; i < 16; i++) s = _mm256_add_epi32(s, a[i]);
  int32_t o[8];
  _mm256_storeu_si256((__m256i *)o, s);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
