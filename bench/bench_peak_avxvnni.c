/* bench_peak_avxvnni.c - vpdpbusd ymm peak, VEX encoding (bench_peak.h).
 * 14 chains + 2 inputs = the 16 ymm registers (no spills). */
#include <immintrin.h>

#include "bench_peak.h"

int32_t bench_peak_ymm_vex(long iters, int32_t seed) {
  __m256i a[14], x = _mm256_set1_epi32(seed), w = _mm256_set1_epi32(seed * 7 + 1);
  for (int i = 0; i < 14; i++) a[i] = _mm256_set1_epi32(seed + i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < 14; i++) a[i] = _mm256_dpbusd_avx_epi32(a[i], x, w);
    __asm__ volatile("" : "+x"(x), "+x"(w));
  }
  __m256i s = a[0];
  for (int i = 1; i < 14; i++) s = _mm256_add_epi32(s, a[i]);
  int32_t o[8];
  _mm256_storeu_si256((__m256i *)o, s);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
