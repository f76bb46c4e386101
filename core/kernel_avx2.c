/* kernel_avx2.c - the AVX2 int8 tier (compiled with -mavx2 -mfma alone and
 * chosen at run time by cpu.c). Must return exactly the reference's int32
 * for every x in 0..255 and w in -128..127.
 *
 * The trap: vpmaddubsw adds two u8*s8 products into a SATURATING int16, and
 * 255*127*2 = 64770 > 32767, so the usual AVX2 int8 GEMM (oneDNN's on this
 * CPU) is wrong on full-range inputs. Three exact paths, chosen per call or
 * per block of x, all reading weights packed once (pack) in two layouts,
 * both in panels of 8 output rows, K and N padded with zero weights (which
 * add exact zeros):
 *   pair layout: panel p, pair j: [w[8p][2j] w[8p][2j+1] w[8p+1][2j] ...
 *     w[8p+7][2j+1]] (16 bytes);
 *   quad layout: panel p, step s: [w[8p][4s..4s+3] ... w[8p+7][4s..4s+3]]
 *     (32 bytes: 4 consecutive k of one row per int32 lane).
 *
 * 1. Batches, full range (pair layout): widen to 16 bits. x is zero-extended
 *    into a stack panel, w sign-extended in-register (vpmovsxbw); a 32-bit
 *    broadcast of (x[2j], x[2j+1]) times the panel vector with vpmaddwd gives
 *    in lane c x[2j]*w[c][2j] + x[2j+1]*w[c][2j+1]. Cannot overflow:
 *    vpmaddwd's 16x16-bit products are exact in 32 bits and
 *    |pair| <= 2*255*128 = 65280; no saturation anywhere.
 * 2. Batches whose block of rows has no x >= 128 (quad layout): vpmaddubsw
 *    is then exact, |pair| <= 2*127*128 = 32512 <= 32767, widened to int32
 *    by vpmaddwd with ones. 3 instructions per 32 multiply-adds instead of 4
 *    (the speed of a saturating kernel, exactly).
 * 3. Batch 1 (quad layout): a block of x with no value >= 128 goes through
 *    path 2's exact vpmaddubsw; otherwise x = lo + 64*hi (lo = x & 63,
 *    hi = x >> 6 in 0..3), split once per call: lo pair sums (<= 16128) of
 *    two steps add in int16 before one vpmaddwd by ones; hi pair sums
 *    (<= 768) accumulate in int16 for at most 40 steps (<= 30720), then
 *    vpmaddwd by 64 into int32. See gemv_micro and gemv6_micro.
 * The int32 accumulators: for K <= QAT_MAX_DIM = 32768,
 *   |acc| <= 32768*255*128 = 1.07e9 < 2^31 - 1 at every partial sum, so
 *   each path's sum is the exact integer, identical to the reference's
 *   (integer addition is associative when no step overflows).
 *
 * Blocking: rows of x in blocks of up to 6; path 1 uses 6 rows x 2 panels =
 * 12 accumulators in registers, path 2 3 x 3 (its ones vector costs a
 * register), path 3 1 x 4 panels (1 x 3 with int32 + int16 accumulators). K is
 * blocked at KC so the x panels stay on the stack (18 KB); N is blocked so
 * a block of weights stays in L2 while every row block of x passes over it.
 * Measured choices and what limits each path: docs/kernels.md. */
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels.h"

#ifndef WB
/* Bytes per packed weight: 1 = int8, widened in-register by vpmovsxbw; 2 =
 * int16, fed straight to vpmaddwd. Measured here: int16 gains 4% at batch
 * 64 but loses 10% at batch 1 (256x784) and 30% at 1024x1024 batch 1, where
 * twice the bytes come from L2/L3; so int8. Tests cover WB == 1. */
#define WB 1
#endif
#if WB == 2
#define WTYPE int16_t
#else
#define WTYPE int8_t
#endif
#define PANEL 8          /* output rows per panel = int32 lanes of a ymm */
#define KC 1024          /* k per block (multiple of 4); x panels MR*KC*3 = 18 KB */
#define MR 6             /* x rows per micro-kernel at most */
#define NBLOCK_BYTES (192 * 1024) /* weight bytes per N block (L2-resident) */

static size_t kpairs(size_t K) { return (K + 1) / 2; }
static size_t npanels(size_t N) { return (N + PANEL - 1) / PANEL; }

/* Steps of 4 k, rounded up to even: batch 1 reads steps in pairs. */
static size_t kquads(size_t K) { return ((K + 3) / 4 + 1) & ~(size_t)1; }
/* The packed buffer holds two layouts of the same weights: the pair layout
 * for batches, then (64-byte aligned) the quad layout for batch 1. */
static size_t pair_bytes(size_t N, size_t K) {
  return (npanels(N) * kpairs(K) * PANEL * 2 * WB + 63) & ~(size_t)63;
}
static size_t quad_bytes(size_t N, size_t K) { return npanels(N) * kquads(K) * PANEL * 4; }

static size_t avx2_packed_size(size_t N, size_t K) {
  return pair_bytes(N, K) + quad_bytes(N, K);
}

static void avx2_pack(const int8_t *w, size_t N, size_t K, void *dst) {
  WTYPE *d = dst;
  size_t kp = kpairs(K), np = npanels(N);
  for (size_t p = 0; p < np; p++)
    for (size_t j = 0; j < kp; j++)
      for (size_t c = 0; c < PANEL; c++)
        for (size_t t = 0; t < 2; t++) {
          size_t n = p * PANEL + c, k = 2 * j + t;
          *d++ = (n < N && k < K) ? w[n * K + k] : 0;
        }
  /* Quad layout: panel p, step s: [row 0: k 4s..4s+3][row 1: ...]...[row 7]. */
  int8_t *q = (int8_t *)dst + pair_bytes(N, K);
  size_t kq = kquads(K);
  for (size_t p = 0; p < np; p++)
    for (size_t st = 0; st < kq; st++)
      for (size_t c = 0; c < PANEL; c++)
        for (size_t t = 0; t < 4; t++) {
          size_t n = p * PANEL + c, k = 4 * st + t;
          *q++ = (n < N && k < K) ? w[n * K + k] : 0;
        }
}

/* Zero-extends x[0..kc) into int16 xb[0..kc rounded up to even). */
static inline void widen_row(const uint8_t *x, size_t kc, int16_t *xb) {
  size_t k = 0;
  for (; k + 16 <= kc; k += 16)
    _mm256_storeu_si256((__m256i *)(xb + k),
                        _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x + k))));
  for (; k < kc; k++) xb[k] = x[k];
  if (kc & 1) xb[kc] = 0;
}

/* Stores (or adds into) up to 8 int32 outputs; `cols` < 8 only in the
 * last panel, where the padding lanes must not be written. */
static inline void store8(int32_t *c, __m256i v, size_t cols, bool add) {
  if (cols >= PANEL) {
    if (add) v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)c));
    _mm256_storeu_si256((__m256i *)c, v);
  } else {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), idx);
    if (add) v = _mm256_add_epi32(v, _mm256_maskload_epi32(c, mask));
    _mm256_maskstore_epi32(c, mask, v);
  }
}

static inline __m256i load_w(const int8_t *p) {
#if WB == 2
  return _mm256_load_si256((const __m256i *)p);
#else
  return _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p));
#endif
}

/* The micro-kernel: MRr rows of widened x (row stride xs int16) times NPp
 * panels starting at w (panel stride ps bytes), over npairs pairs of k.
 * Always inlined with constant MRr/NPp so the accumulators are registers. */
static inline __attribute__((always_inline)) void micro(
    const int16_t *xb, size_t xs, const int8_t *w, size_t ps, size_t npairs,
    int32_t *c, size_t ldc, size_t col0, size_t N, bool add, const int MRr,
    const int NPp) {
  __m256i acc[MR][6];
#pragma GCC unroll 8
  for (int r = 0; r < MRr; r++)
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) acc[r][q] = _mm256_setzero_si256();
  for (size_t j = 0; j < npairs; j++) {
    __m256i wv[6];
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) wv[q] = load_w(w + q * ps + j * 16 * WB);
#pragma GCC unroll 8
    for (int r = 0; r < MRr; r++) {
      int32_t pair;
      memcpy(&pair, xb + r * xs + 2 * j, 4);
      __m256i xv = _mm256_set1_epi32(pair);
#pragma GCC unroll 8
      for (int q = 0; q < NPp; q++)
        acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(xv, wv[q]));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MRr; r++)
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) {
      size_t col = col0 + (size_t)q * PANEL;
      store8(c + r * ldc + col, acc[r][q], N - col, add);
    }
}

typedef void (*micro_fn)(const int16_t *, size_t, const int8_t *, size_t, size_t,
                         int32_t *, size_t, size_t, size_t, bool);

#define MICRO(R, P)                                                              \
  static void micro_##R##_##P(const int16_t *xb, size_t xs, const int8_t *w,     \
                              size_t ps, size_t npairs, int32_t *c, size_t ldc,  \
                              size_t col0, size_t N, bool add) {                 \
    micro(xb, xs, w, ps, npairs, c, ldc, col0, N, add, R, P);                    \
  }
MICRO(1, 1) MICRO(1, 2) MICRO(1, 3) MICRO(1, 4) MICRO(1, 5) MICRO(1, 6)
MICRO(2, 1) MICRO(2, 2) MICRO(2, 3) MICRO(2, 4)
MICRO(3, 1) MICRO(3, 2) MICRO(3, 3)
MICRO(4, 1) MICRO(4, 2)
MICRO(5, 1) MICRO(5, 2)
MICRO(6, 1) MICRO(6, 2)

/* [rows][panels at once]; the widest entry of each row is the one used
 * for full blocks, narrower ones for the panel tail. */
static const micro_fn micros[MR + 1][7] = {
    {0},
    {0, micro_1_1, micro_1_2, micro_1_3, micro_1_4, micro_1_5, micro_1_6},
    {0, micro_2_1, micro_2_2, micro_2_3, micro_2_4},
    {0, micro_3_1, micro_3_2, micro_3_3, 0},
    {0, micro_4_1, micro_4_2, 0, 0},
    {0, micro_5_1, micro_5_2, 0, 0},
    {0, micro_6_1, micro_6_2, 0, 0},
};
/* Measured (256x784): batch 1 is bound by instruction count (vpmovsxbw +
 * vpmaddwd + vpaddd per 16 multiply-adds); 6 panels per x broadcast was the
 * fastest width without spills (2: 3.58 us, 4: 3.40, 6: 3.37; 8 spills).
 * 6x2 for batches: 12 accumulators + 2 weights + broadcast + temp = 16
 * ymm; 4x3 needed 17 and spilled an accumulator (105 -> 160 GOP/s). */
static const int widest[MR + 1] = {0, 6, 4, 3, 2, 2, 2};

/* Batch 1. Weights are used once per call, so path 1's vpmovsxbw per 16
 * multiply-adds would be pure overhead; here the int8 weights (quad layout)
 * go straight into vpmaddubsw, made exact by how x is prepared once per
 * call and block of k:
 *   no x >= 128 in the block (gemv_micro): vpmaddubsw(x, w) adds two
 *     products with x <= 127, -128 <= w <= 127: |sum| <= 2*127*128 = 32512
 *     <= 32767, no saturation; vpmaddwd with ones widens it to int32, then
 *     vpaddd. 3 vector instructions per 32 multiply-adds.
 *   otherwise x = lo + 64*hi (gemv6_micro below). 4.5 per 32.
 * Quad layout: 4 consecutive k of one row in each int32 lane, so the int16
 * pair sums of vpmaddubsw belong to one row and vpmaddwd finishes the row.
 * Measured at 256x784, full-range x: 2.59 us; an x = lo7 + 128*hi1 split
 * (5 per 32): 2.85 us; path 1's layout with panel widths 2/4/6: 3.58/3.40/
 * 3.37 us. */
#define KV 2048 /* k per block of the split x (multiple of 4) */
#define GP 4    /* panels per pass at most: 4 x (int32 + int16 accumulators) */

static inline __attribute__((always_inline)) void gemv_micro(
    const uint8_t *lo, const uint8_t *hi, const int8_t *w, size_t ps, size_t nq,
    int32_t *c, size_t col0, size_t N, bool add, const int P) {
  __m256i a32[GP];
  const __m256i ones = _mm256_set1_epi16(1);
  (void)hi;
#pragma GCC unroll 8
  for (int q = 0; q < P; q++) a32[q] = _mm256_setzero_si256();
  for (size_t st = 0; st < nq; st++) {
    int32_t l4;
    memcpy(&l4, lo + 4 * st, 4);
    __m256i bl = _mm256_set1_epi32(l4);
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) {
      __m256i wv = _mm256_load_si256((const __m256i *)(w + q * ps + 32 * st));
      a32[q] = _mm256_add_epi32(a32[q], _mm256_madd_epi16(_mm256_maddubs_epi16(bl, wv), ones));
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < P; q++) {
    size_t col = col0 + (size_t)q * PANEL;
    store8(c + col, a32[q], N - col, add);
  }
}

/* Batch 1 with a 6-bit split, x = lo + 64*hi (lo = x & 63, hi = x >> 6 in
 * 0..3), two steps of 4 k at a time:
 *   lo: each vpmaddubsw pair sum is within 2*63*128 = 16128 in magnitude,
 *     so the two steps' int16 results add without overflow (<= 32256)
 *     before one vpmaddwd by ones widens them to int32;
 *   hi: each pair sum is within 2*3*128 = 768; int16 accumulation over at
 *     most FLUSH6 = 40 steps stays within 40*768 = 30720, then vpmaddwd by
 *     64 (exact int32) adds it to the int32 accumulator.
 * 9 vector instructions per 64 multiply-adds (4.5 per 32, the 7-bit/1-bit
 * split needs 5). Needs an even number of steps: kquads() is padded, and the
 * padding step's x is zero. */
#define FLUSH6 40

static inline __attribute__((always_inline)) void gemv6_micro(
    const uint8_t *lo, const uint8_t *hi, const int8_t *w, size_t ps, size_t nq,
    int32_t *c, size_t col0, size_t N, bool add, const int P) {
  __m256i a32[GP], a16[GP];
  const __m256i ones = _mm256_set1_epi16(1), s64 = _mm256_set1_epi16(64);
#pragma GCC unroll 8
  for (int q = 0; q < P; q++) a32[q] = a16[q] = _mm256_setzero_si256();
  for (size_t s0 = 0; s0 < nq; s0 += FLUSH6) {
    size_t s1 = nq - s0 < FLUSH6 ? nq : s0 + FLUSH6;
    for (size_t st = s0; st < s1; st += 2) {
      int32_t l0, l1, h0, h1;
      memcpy(&l0, lo + 4 * st, 4);
      memcpy(&l1, lo + 4 * st + 4, 4);
      memcpy(&h0, hi + 4 * st, 4);
      memcpy(&h1, hi + 4 * st + 4, 4);
      __m256i bl0 = _mm256_set1_epi32(l0), bl1 = _mm256_set1_epi32(l1);
      __m256i bh0 = _mm256_set1_epi32(h0), bh1 = _mm256_set1_epi32(h1);
#pragma GCC unroll 8
      for (int q = 0; q < P; q++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)(w + q * ps + 32 * st));
        __m256i w1 = _mm256_load_si256((const __m256i *)(w + q * ps + 32 * st + 32));
        __m256i u = _mm256_add_epi16(_mm256_maddubs_epi16(bl0, w0), _mm256_maddubs_epi16(bl1, w1));
        a32[q] = _mm256_add_epi32(a32[q], _mm256_madd_epi16(u, ones));
        a16[q] = _mm256_add_epi16(a16[q], _mm256_add_epi16(_mm256_maddubs_epi16(bh0, w0),
                                                           _mm256_maddubs_epi16(bh1, w1)));
      }
    }
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) {
      a32[q] = _mm256_add_epi32(a32[q], _mm256_madd_epi16(a16[q], s64));
      a16[q] = _mm256_setzero_si256();
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < P; q++) {
    size_t col = col0 + (size_t)q * PANEL;
    store8(c + col, a32[q], N - col, add);
  }
}

typedef void (*gemv_fn)(const uint8_t *, const uint8_t *, const int8_t *, size_t, size_t,
                        int32_t *, size_t, size_t, bool);
#define GEMV(P)                                                                      \
  static void gemv6_##P(const uint8_t *lo, const uint8_t *hi, const int8_t *w,       \
                        size_t ps, size_t nq, int32_t *c, size_t col0, size_t N,     \
                        bool add) {                                                  \
    gemv6_micro(lo, hi, w, ps, nq, c, col0, N, add, P);                              \
  }                                                                                  \
  static void gemv_lo_##P(const uint8_t *lo, const uint8_t *hi, const int8_t *w,     \
                          size_t ps, size_t nq, int32_t *c, size_t col0, size_t N,   \
                          bool add) {                                                \
    gemv_micro(lo, hi, w, ps, nq, c, col0, N, add, P);                               \
  }
GEMV(1) GEMV(2) GEMV(3) GEMV(4)
/* [x has a value >= 128 in this block][panels]. */
static const gemv_fn gemvs[2][GP + 1] = {{0, gemv_lo_1, gemv_lo_2, gemv_lo_3, gemv_lo_4},
                                         {0, gemv6_1, gemv6_2, gemv6_3, gemv6_4}};
/* Panels per pass: the 6-bit split's 2 x 3 accumulators, 4 broadcasts and
 * 2 weight vectors fill the registers (4 panels spilled: 3.07 us against
 * 2.59 us at 256x784). */
static const int gemv_panels[2] = {4, 3};

static void gemv(const uint8_t *x, size_t K, const int8_t *wq, size_t N, int32_t *acc) {
  uint8_t lo[KV] __attribute__((aligned(32))), hi[KV] __attribute__((aligned(32)));
  size_t np = npanels(N), ps = kquads(K) * PANEL * 4;
  for (size_t k0 = 0; k0 < K; k0 += KV) {
    size_t kc = K - k0 < KV ? K - k0 : KV, nq = (kc + 3) / 4, k = 0;
    const uint8_t *xk = x + k0;
    /* Any x >= 128 in this block? Then split; else x is its own lo. */
    __m256i any = _mm256_setzero_si256();
    for (; k + 32 <= kc; k += 32)
      any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(xk + k)));
    int has_hi = _mm256_movemask_epi8(any) != 0;
    for (; k < kc; k++) has_hi |= xk[k] >> 7;
    int mode = has_hi, step = gemv_panels[mode];
    int bits = mode ? 6 : 7; /* lo = x mod 2^bits, hi = x >> bits (0 when !mode) */
    const __m256i mlo = _mm256_set1_epi8((char)((1 << bits) - 1));
    const __m256i mhi = _mm256_set1_epi8((char)((1 << (8 - bits)) - 1));
    const __m128i sh = _mm_cvtsi32_si128(bits);
    if (mode) nq = (nq + 1) & ~(size_t)1; /* steps in pairs */
    for (k = 0; k + 32 <= kc; k += 32) {
      __m256i v = _mm256_loadu_si256((const __m256i *)(xk + k));
      _mm256_store_si256((__m256i *)(lo + k), _mm256_and_si256(v, mlo));
      _mm256_store_si256((__m256i *)(hi + k), _mm256_and_si256(_mm256_srl_epi16(v, sh), mhi));
    }
    for (; k < kc; k++) {
      lo[k] = (uint8_t)(xk[k] & ((1 << bits) - 1));
      hi[k] = (uint8_t)(xk[k] >> bits);
    }
    for (; k < 4 * nq; k++) lo[k] = hi[k] = 0;
    for (size_t p = 0; p < np; p += (size_t)step) {
      int n = np - p < (size_t)step ? (int)(np - p) : step;
      gemvs[mode][n](lo, hi, wq + p * ps + (k0 / 4) * PANEL * 4, ps, nq, acc, p * PANEL, N, k0 > 0);
    }
  }
}

/* Batches whose block of x rows has no value >= 128 (7-bit activations):
 * vpmaddubsw on the quad layout is then exact (a pair sum is at most
 * 2*127*128 = 32512 <= 32767), widened by vpmaddwd with ones: 3
 * instructions per 32 multiply-adds instead of 4. The check is per block of
 * rows and k, made while the block is copied; a block with any x >= 128 takes
 * the widened path. */
static inline __attribute__((always_inline)) void microq(
    const uint8_t *xb, size_t xs, const int8_t *w, size_t ps, size_t nq, int32_t *c,
    size_t ldc, size_t col0, size_t N, bool add, const int MRr, const int NPp) {
  __m256i acc[MR][6];
  const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 8
  for (int r = 0; r < MRr; r++)
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) acc[r][q] = _mm256_setzero_si256();
  for (size_t st = 0; st < nq; st++) {
    __m256i wv[6];
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) wv[q] = _mm256_load_si256((const __m256i *)(w + q * ps + 32 * st));
#pragma GCC unroll 8
    for (int r = 0; r < MRr; r++) {
      int32_t x4;
      memcpy(&x4, xb + r * xs + 4 * st, 4);
      __m256i xv = _mm256_set1_epi32(x4);
#pragma GCC unroll 8
      for (int q = 0; q < NPp; q++)
        acc[r][q] = _mm256_add_epi32(
            acc[r][q], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv[q]), ones));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MRr; r++)
#pragma GCC unroll 8
    for (int q = 0; q < NPp; q++) {
      size_t col = col0 + (size_t)q * PANEL;
      store8(c + r * ldc + col, acc[r][q], N - col, add);
    }
}

typedef void (*microq_fn)(const uint8_t *, size_t, const int8_t *, size_t, size_t,
                          int32_t *, size_t, size_t, size_t, bool);
#define MICROQ(R, P)                                                             \
  static void microq_##R##_##P(const uint8_t *xb, size_t xs, const int8_t *w,    \
                               size_t ps, size_t nq, int32_t *c, size_t ldc,     \
                               size_t col0, size_t N, bool add) {                \
    microq(xb, xs, w, ps, nq, c, ldc, col0, N, add, R, P);                       \
  }
MICROQ(1, 1) MICROQ(1, 2) MICROQ(1, 3) MICROQ(1, 4)
MICROQ(2, 1) MICROQ(2, 2) MICROQ(2, 3) MICROQ(2, 4)
MICROQ(3, 1) MICROQ(3, 2) MICROQ(3, 3)
MICROQ(4, 1) MICROQ(4, 2)
MICROQ(5, 1) MICROQ(5, 2)
MICROQ(6, 1) MICROQ(6, 2)
static const microq_fn microqs[MR + 1][5] = {
    {0},
    {0, microq_1_1, microq_1_2, microq_1_3, microq_1_4},
    {0, microq_2_1, microq_2_2, microq_2_3, microq_2_4},
    {0, microq_3_1, microq_3_2, microq_3_3, 0},
    {0, microq_4_1, microq_4_2, 0, 0},
    {0, microq_5_1, microq_5_2, 0, 0},
    {0, microq_6_1, microq_6_2, 0, 0},
};
static const int widestq[MR + 1] = {0, 4, 4, 3, 2, 2, 2};
#ifndef QR
#define QR 3
#endif

/* Copies x[0..kc) into xq padded with zeros to a multiple of 4 and widens
 * it into xb; returns whether any value is >= 128. */
static inline bool copy_row(const uint8_t *x, size_t kc, uint8_t *xq, int16_t *xb) {
  size_t k = 0;
  __m256i any = _mm256_setzero_si256();
  for (; k + 32 <= kc; k += 32) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(x + k));
    any = _mm256_or_si256(any, v);
    _mm256_storeu_si256((__m256i *)(xq + k), v);
  }
  bool hi = _mm256_movemask_epi8(any) != 0;
  for (; k < kc; k++) {
    xq[k] = x[k];
    hi |= x[k] >> 7;
  }
  for (; k & 3; k++) xq[k] = 0;
  widen_row(x, kc, xb);
  return hi;
}

static void avx2_gemm_u8s8(const uint8_t *x, size_t M, size_t K, size_t ldx,
                           const void *wpacked, size_t N, int32_t *acc) {
  const int8_t *w = wpacked;
  if (M == 1 && N > 0 && K > 0) {
    gemv(x, K, w + pair_bytes(N, K), N, acc);
    return;
  }
  size_t kp = kpairs(K), np = npanels(N);
  size_t ps = kp * PANEL * 2 * WB; /* bytes per panel */
  int16_t xb[MR * KC] __attribute__((aligned(32)));
  uint8_t xq[MR * KC] __attribute__((aligned(32)));
  const int8_t *wq = w + pair_bytes(N, K);
  size_t psq = kquads(K) * PANEL * 4; /* bytes per quad-layout panel */
  if (M == 0 || N == 0) return;
  if (K == 0) {
    memset(acc, 0, M * N * sizeof *acc);
    return;
  }
  for (size_t k0 = 0; k0 < K; k0 += KC) {
    size_t kc = K - k0 < KC ? K - k0 : KC;
    size_t jp = (kc + 1) / 2, j0 = k0 / 2;
    bool add = k0 > 0;
    /* Panels per N block so the block's weights stay in L2. */
    size_t nb = NBLOCK_BYTES / (jp * PANEL * 2 * WB);
    if (nb < 4) nb = 4;
    for (size_t p0 = 0; p0 < np; p0 += nb) {
      size_t p1 = p0 + nb < np ? p0 + nb : np;
      for (size_t m0 = 0; m0 < M; m0 += MR) {
        int mr = M - m0 < MR ? (int)(M - m0) : MR;
        bool hi = false;
        for (int r = 0; r < mr; r++)
          hi |= copy_row(x + (m0 + r) * ldx + k0, kc, xq + r * KC, xb + r * KC);
        if (!hi) {
          /* At most QR rows per call: 6 x 2 would need 17 ymm with the
           * ones vector and spills an accumulator. */
          for (int r0 = 0; r0 < mr; r0 += QR) {
            int rows = mr - r0 < QR ? mr - r0 : QR, stepq = widestq[rows];
            for (size_t p = p0; p < p1;) {
              int n = p1 - p < (size_t)stepq ? (int)(p1 - p) : stepq;
              microqs[rows][n](xq + r0 * KC, KC, wq + p * psq + (k0 / 4) * PANEL * 4, psq,
                               (kc + 3) / 4, acc + (m0 + r0) * N, N, p * PANEL, N, add);
              p += (size_t)n;
            }
          }
          continue;
        }
        int step = widest[mr];
        for (size_t p = p0; p < p1;) {
          int n = p1 - p < (size_t)step ? (int)(p1 - p) : step;
          micros[mr][n](xb, KC, w + p * ps + j0 * PANEL * 2 * WB, ps, jp,
                        acc + m0 * N, N, p * PANEL, N, add);
          p += (size_t)n;
        }
      }
    }
  }
}

/* Requantization (kernels.h), 32 outputs at a time. Exactness: vpaddd
 * wraps as the reference's uint32 add; vcvtdq2ps and vmulps round to nearest
 * like the scalar (float) cast and multiply (MXCSR default; no FMA
 * contraction - there is no add to fuse); vroundps with an explicit
 * nearest-even mode is rintf; the clamp happens on integral floats, so the
 * truncating conversion is exact. */
static inline __m256i requant8(const int32_t *a, const int32_t *b, const float *m,
                               __m256 flo, __m256 fhi, __m256i zp) {
  __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)a),
                               _mm256_loadu_si256((const __m256i *)b));
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m));
  f = _mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  f = _mm256_min_ps(_mm256_max_ps(f, flo), fhi);
  return _mm256_add_epi32(_mm256_cvttps_epi32(f), zp);
}

void qat__avx2_requant_u8(const int32_t *acc, size_t M, size_t N,
                         const int32_t *bias, const float *mult, int32_t out_zp,
                         int32_t lo, int32_t hi, uint8_t *out, size_t ldo) {
  float slo = (float)(lo - out_zp), shi = (float)(hi - out_zp);
  __m256 flo = _mm256_set1_ps(slo), fhi = _mm256_set1_ps(shi);
  __m256i zp = _mm256_set1_epi32(out_zp);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t m = 0; m < M; m++) {
    const int32_t *a = acc + m * N;
    uint8_t *o = out + m * ldo;
    size_t c = 0;
    for (; c + 32 <= N; c += 32) {
      __m256i v0 = requant8(a + c, bias + c, mult + c, flo, fhi, zp);
      __m256i v1 = requant8(a + c + 8, bias + c + 8, mult + c + 8, flo, fhi, zp);
      __m256i v2 = requant8(a + c + 16, bias + c + 16, mult + c + 16, flo, fhi, zp);
      __m256i v3 = requant8(a + c + 24, bias + c + 24, mult + c + 24, flo, fhi, zp);
      /* Values are already in 0..255: the saturating packs only narrow. */
      __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(v0, v1),
                                      _mm256_packs_epi32(v2, v3));
      _mm256_storeu_si256((__m256i *)(o + c), _mm256_permutevar8x32_epi32(p, order));
    }
    for (; c + 8 <= N; c += 8) {
      __m256i v = requant8(a + c, bias + c, mult + c, flo, fhi, zp);
      __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      _mm_storel_epi64((__m128i *)(o + c), _mm_packus_epi16(h, h));
    }
    for (; c < N; c++) {
      int32_t s = (int32_t)((uint32_t)a[c] + (uint32_t)bias[c]);
      float r = rintf((float)s * mult[c]);
      r = r < slo ? slo : r > shi ? shi : r;
      o[c] = (uint8_t)((int32_t)r + out_zp);
    }
  }
}

/* Input quantization (kernels.h), the same float steps as qat_quantize_u8:
 * multiply by the reciprocal, round to nearest even (vroundps, explicit
 * mode), add the zero point in float, then max with qmin (vmaxps returns its
 * second operand for NaN, as fmaxf(NaN, lo) = lo) and min with qmax. */
static inline __m256i quant8(const float *x, __m256 inv, __m256 zp, __m256 lo, __m256 hi) {
  __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
  v = _mm256_add_ps(zp, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  return _mm256_cvttps_epi32(v);
}

void qat__avx2_quantize_u8(const float *x, size_t n, const qat_qparams *p, uint8_t *q) {
  const float inv = 1.0f / p->scale, zp = (float)p->zero_point;
  const float lo = (float)p->qmin, hi = (float)p->qmax;
  __m256 vinv = _mm256_set1_ps(inv), vzp = _mm256_set1_ps(zp);
  __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v0 = quant8(x + i, vinv, vzp, vlo, vhi), v1 = quant8(x + i + 8, vinv, vzp, vlo, vhi);
    __m256i v2 = quant8(x + i + 16, vinv, vzp, vlo, vhi), v3 = quant8(x + i + 24, vinv, vzp, vlo, vhi);
    __m256i pk = _mm256_packus_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
    _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(pk, order));
  }
  for (; i < n; i++) q[i] = (uint8_t)fminf(fmaxf(zp + rintf(x[i] * inv), lo), hi);
}

const qat_kernels qat__kernels_avx2 = {
    .name = "avx2",
    .packed_size = avx2_packed_size,
    .pack = avx2_pack,
    .gemm_u8s8 = avx2_gemm_u8s8,
    .requant_u8 = qat__avx2_requant_u8,
    .quantize_u8 = qat__avx2_quantize_u8,
    /* NULL: OpenBLAS sgemv (gemv_f32.h says why the AVX2 one is not used). */
    .gemv_f32 = NULL,
};
