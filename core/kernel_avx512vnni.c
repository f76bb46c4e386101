/* kernel_avx512vnni.c - the AVX-512 VNNI int8 tier: zmm, vpdpbusd. Compiled
 * alone with -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni
 * (Makefile, *_avx512vnni.c) and chosen at run time by cpu.c only when
 * CPUID and XCR0 allow all of them. Must return exactly the reference's
 * int32 for every x in 0..255 and w in -128..127.
 *
 * Why it cannot overflow. vpdpbusd (not the saturating vpdpbusds) computes
 * per int32 lane: acc + x0*w0 + x1*w1 + x2*w2 + x3*w3, x unsigned bytes, w
 * signed bytes. Each product is formed exactly in 16 bits (Intel SDM:
 * ZeroExtend16(x) * SignExtend16(w); |255 * -128| = 32640 <= 32767) and the
 * four are added to the int32 accumulator without saturation. So each
 * instruction adds the exact dot product of 4 (|sum| <= 4 * 32640 =
 * 130560), and since K <= QAT_MAX_DIM = 32768, every partial sum of a
 * lane is bounded by K * 255 * 128 = 1,069,547,520 < 2^31 - 1: the int32
 * never wraps and the result is the exact integer, the reference's (integer
 * addition is associative when no step overflows). Padding (N to 16 rows,
 * K to 4) adds products with a zero weight or a zero x: exact zeros. */
#include <immintrin.h>
#include <limits.h>
#include <math.h>

#include "kernels.h"

_Static_assert(255 * 128 <= SHRT_MAX, "a u8 x s8 product fits the 16-bit intermediate");
_Static_assert((long long)QAT_MAX_DIM * 255 * 128 <= INT_MAX,
               "K * 255 * 128 fits the int32 accumulator: no partial sum wraps");

#define VEC __m512i
#define LANES 16
#define VZERO() _mm512_setzero_si512()
#define VLOADW(p) _mm512_load_si512((const void *)(p))
#define VBCAST(i) _mm512_set1_epi32(i)
#define VDPBUSD(a, x, w) _mm512_dpbusd_epi32((a), (x), (w))
/* Rows of MR x NP panels for batches: 24 zmm accumulators + 4 weight
 * vectors + a broadcast = 29 of 32 registers; 4 panels = 64 outputs divide
 * the usual widths (256, 128), where 8 x 3 leaves a 1-panel group. GNP = 8
 * at batch 1: 8 independent accumulator chains cover vpdpbusd's latency.
 * Measured alternatives: docs/kernels.md. */
#ifndef MR /* -DMR=.. -DNP=.. for measuring other blocks; tests cover 6 x 4 */
#define MR 6
#define NP 4
#endif
#define GNP 8
#define PMAX 8

static inline void store16(int32_t *p, __m512i v, size_t cols) {
  if (cols >= 16)
    _mm512_storeu_si512((void *)p, v);
  else
    _mm512_mask_storeu_epi32(p, (__mmask16)((1u << cols) - 1), v);
}
#define VSTORE(p, v, cols) store16((p), (v), (cols))

#include "kernel_vnni.h"

/* Requantization (kernels.h), 16 outputs per vector, the tail masked. Same
 * float steps as the reference: vpaddd wraps like its uint32 add;
 * vcvtdq2ps and vmulps round to nearest (MXCSR default; the product is not
 * fused with anything); vrndscaleps with an explicit nearest-even mode is
 * rintf; the clamp is on integral floats, so the truncating conversion is
 * exact; the result is within lo..hi <= 255, so vpmovusdb only narrows. */
static inline __m128i requant16(const int32_t *a, const int32_t *b, const float *m, __m512 flo,
                                __m512 fhi, __m512i zp, __mmask16 k) {
  __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, a), _mm512_maskz_loadu_epi32(k, b));
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_maskz_loadu_ps(k, m));
  f = _mm512_roundscale_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  f = _mm512_min_ps(_mm512_max_ps(f, flo), fhi);
  /* vpmovusdb to a register, then one plain store (the masked store form
   * measured no faster here). */
  return _mm512_cvtusepi32_epi8(_mm512_add_epi32(_mm512_cvttps_epi32(f), zp));
}

static void avx512_requant_u8(const int32_t *acc, size_t M, size_t N, const int32_t *bias,
                              const float *mult, int32_t out_zp, int32_t lo, int32_t hi,
                              uint8_t *out, size_t ldo) {
  const __m512 flo = _mm512_set1_ps((float)(lo - out_zp)), fhi = _mm512_set1_ps((float)(hi - out_zp));
  const __m512i zp = _mm512_set1_epi32(out_zp);
  for (size_t m = 0; m < M; m++) {
    const int32_t *a = acc + m * N;
    uint8_t *o = out + m * ldo;
    size_t c = 0;
    for (; c + 16 <= N; c += 16)
      _mm_storeu_si128((__m128i *)(o + c), requant16(a + c, bias + c, mult + c, flo, fhi, zp, 0xffff));
    if (c < N) {
      __mmask16 k = (__mmask16)((1u << (N - c)) - 1);
      _mm_mask_storeu_epi8(o + c, k, requant16(a + c, bias + c, mult + c, flo, fhi, zp, k));
    }
  }
}

/* Input quantization (kernels.h), the same float steps as qat_quantize_u8:
 * multiply by the reciprocal, round to nearest even (explicit mode), add the
 * zero point in float, then max with qmin (vmaxps returns its second operand
 * when either is NaN, as qat_quantize_u8's compare-based clamp maps NaN to
 * qmin) and min with qmax; the tail is masked (masked-off lanes are never
 * read from memory). */
static inline __m128i quant16(const float *x, __m512 inv, __m512 zp, __m512 lo, __m512 hi,
                              __mmask16 k) {
  __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x), inv);
  v = _mm512_add_ps(zp, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  return _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v));
}

static void avx512_quantize_u8(const float *x, size_t n, const qat_qparams *p, uint8_t *q) {
  const __m512 inv = _mm512_set1_ps(1.0f / p->scale), zp = _mm512_set1_ps((float)p->zero_point);
  const __m512 lo = _mm512_set1_ps((float)p->qmin), hi = _mm512_set1_ps((float)p->qmax);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm_storeu_si128((__m128i *)(q + i), quant16(x + i, inv, zp, lo, hi, 0xffff));
  if (i < n) {
    __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
    _mm_mask_storeu_epi8(q + i, k, quant16(x + i, inv, zp, lo, hi, k));
  }
}

const qat_kernels qat__kernels_avx512vnni = {
    .name = "avx512vnni",
    .packed_size = vnni_packed_size,
    .pack = vnni_pack,
    .gemm_u8s8 = vnni_gemm_u8s8,
    .requant_u8 = avx512_requant_u8,
    .quantize_u8 = avx512_quantize_u8,
    .gemv_f32 = qat__gemv_f32_avx512,
};
