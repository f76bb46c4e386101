/* gemv_f32_avx512vnni.c - the fp32 single-row product (gemv_f32.h) with
 * AVX-512F: zmm lanes are outputs, each one the reference's chain of fmaf
 * in k order (vfmadd231ps rounds once, as fmaf does), so the bits are the
 * reference's. Compiled alone with the avx512vnni tier's flags (Makefile,
 * *_avx512vnni.c; it needs only AVX-512F) and used by that tier. Overflow:
 * none but IEEE's own (+-inf, as in the reference). */
#include <immintrin.h>

#include "gemv_f32.h"

/* Up to 16 zmm accumulators (256 outputs: the shipped model's widest layer
 * in one pass over x) of 32 registers, plus the broadcast input and a
 * weight vector. */
#define NVMAX 16

static inline __attribute__((always_inline)) void tile(const float *x, size_t K,
                                                      const float *wt, size_t ldw,
                                                      const float *b, size_t n0,
                                                      size_t N, int nv, float *y) {
  __m512 acc[NVMAX];
  size_t left = N - n0;
  /* The last vector may hang past N: masked for b and y (wt's padding
   * columns are zero and readable). */
  for (int v = 0; v < nv; v++) {
    size_t have = left - (size_t)v * 16;
    __mmask16 m = have >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << have) - 1);
    acc[v] = _mm512_maskz_loadu_ps(m, b + n0 + (size_t)v * 16);
  }
  for (size_t k = 0; k < K; k++) {
    float xv = x[k];
    if (xv == 0.0f) continue;
    __m512 bx = _mm512_set1_ps(xv);
    const float *w = wt + k * ldw + n0;
    for (int v = 0; v < nv; v++) acc[v] = _mm512_fmadd_ps(bx, _mm512_load_ps(w + v * 16), acc[v]);
  }
  for (int v = 0; v < nv; v++) {
    size_t have = left - (size_t)v * 16;
    __mmask16 m = have >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << have) - 1);
    _mm512_mask_storeu_ps(y + n0 + (size_t)v * 16, m, acc[v]);
  }
}

void qat__gemv_f32_avx512(const float *x, size_t K, const float *wt, size_t ldw,
                          const float *b, size_t N, float *y) {
  for (size_t n0 = 0; n0 < N; n0 += NVMAX * 16) {
    size_t nv = (N - n0 + 15) / 16;
    /* A constant count per case, so the accumulators stay in registers. */
    switch (nv >= NVMAX ? NVMAX : nv) {
      case 16: tile(x, K, wt, ldw, b, n0, N, 16, y); break;
      case 15: tile(x, K, wt, ldw, b, n0, N, 15, y); break;
      case 14: tile(x, K, wt, ldw, b, n0, N, 14, y); break;
      case 13: tile(x, K, wt, ldw, b, n0, N, 13, y); break;
      case 12: tile(x, K, wt, ldw, b, n0, N, 12, y); break;
      case 11: tile(x, K, wt, ldw, b, n0, N, 11, y); break;
      case 10: tile(x, K, wt, ldw, b, n0, N, 10, y); break;
      case 9: tile(x, K, wt, ldw, b, n0, N, 9, y); break;
      case 8: tile(x, K, wt, ldw, b, n0, N, 8, y); break;
      case 7: tile(x, K, wt, ldw, b, n0, N, 7, y); break;
      case 6: tile(x, K, wt, ldw, b, n0, N, 6, y); break;
      case 5: tile(x, K, wt, ldw, b, n0, N, 5, y); break;
      case 4: tile(x, K, wt, ldw, b, n0, N, 4, y); break;
      case 3: tile(x, K, wt, ldw, b, n0, N, 3, y); break;
      case 2: tile(x, K, wt, ldw, b, n0, N, 2, y); break;
      default: tile(x, K, wt, ldw, b, n0, N, 1, y); break;
    }
  }
}
