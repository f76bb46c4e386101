/* bench_peak_avx2.c - the AVX2 triple vpmaddubsw + vpmaddwd (by ones) +
 * vpaddd, 12 independent chains (bench_peak.h): what the avx2 tier's
 * 7-bit path costs per 32 multiply-adds. */
#include <immintrin.h>

#include "bench_peak.h"

int32_t bench_peak_avx2(long iters, int32_t seed) {
  /* Each chain feeds its own accumulator back as the weights, so the
   * compiler cannot share one product among chains. */
  __m256i a[12], x = _mm256_set1_epi32(seed);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_epi32(seed + i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++)
      a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, a[i]), ones));
    __asm__ volatile("" : "+x"(x));
  }
  __m256i s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_epi32(s, a[i]);
  int32_t o[8];
  _mm256_storeu_si256((__m256i *)o, s);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
