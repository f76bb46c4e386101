/* kernel_vnni.h - the vpdpbusd gemm, written once for both vector widths.
 * Included only by kernel_avx512vnni.c (zmm, 16 int32 lanes) and
 * kernel_avxvnni.c (ymm, 8 lanes; also its test twin), each compiled alone
 * with its own -m flags; it defines static functions, so it is a template,
 * not an interface. Why the arithmetic is exact is at the top of each
 * includer (the bound is the same: vpdpbusd never saturates).
 *
 * The includer defines, before including:
 *   VEC                 the vector type
 *   LANES               int32 lanes per vector = output rows per panel
 *   VZERO()             the zero vector
 *   VLOADW(p)           aligned load of LANES * 4 packed weight bytes
 *   VBCAST(i)           the int32 i in every lane
 *   VDPBUSD(a, x, w)    a + sum of the 4 products x.u8 * w.s8 in each lane
 *   VSTORE(p, v, cols)  stores lanes 0 .. min(cols, LANES) - 1 of v at p
 *   MR, NP              register block for batches: MR rows x NP panels
 *   GNP                 panels per pass at batch 1 (one accumulator each)
 *   PMAX                max(NP, GNP)
 *
 * One packed layout serves every batch size: panel p holds output rows
 * LANES*p .. LANES*p + LANES - 1; within it, step s holds k = 4s .. 4s + 3
 * of each of those rows, LANES * 4 bytes:
 *   [w[LANES p][4s..4s+3] w[LANES p + 1][4s..4s+3] ... ]
 * so one 32-bit broadcast of x[m][4s..4s+3] against one weight vector gives
 * LANES dot products of 4. N and K are padded with zero weights; the x bytes
 * of a K tail are read one by one (never past the row) and padded with
 * zeros, so padding adds exact zeros.
 *
 * x is read in place: no copy, no scratch, nothing allocated, and no stack
 * buffer either. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define STEP_BYTES (LANES * 4)

static size_t vnni_npanels(size_t N) { return (N + LANES - 1) / LANES; }
static size_t vnni_panel_bytes(size_t K) { return (K + 3) / 4 * STEP_BYTES; }

static size_t vnni_packed_size(size_t N, size_t K) {
  return vnni_npanels(N) * vnni_panel_bytes(K);
}

static void vnni_pack(const int8_t *w, size_t N, size_t K, void *dst) {
  int8_t *d = dst;
  size_t np = vnni_npanels(N), ns = (K + 3) / 4;
  for (size_t p = 0; p < np; p++)
    for (size_t s = 0; s < ns; s++)
      for (size_t c = 0; c < LANES; c++)
        for (size_t t = 0; t < 4; t++) {
          size_t n = p * LANES + c, k = 4 * s + t;
          *d++ = (n < N && k < K) ? w[n * K + k] : 0;
        }
}

/* R rows of x (stride ldx) times P panels of w (stride ps bytes) over all
 * of K, into c (row stride ldc; ncols valid columns from panel 0 on).
 * Always inlined with constant R and P, so the R x P accumulators live in
 * registers (checked in the disassembly: no spills at the sizes used). */
static inline __attribute__((always_inline)) void vnni_micro(
    const uint8_t *x, size_t ldx, size_t K, const int8_t *w, size_t ps, int32_t *c,
    size_t ldc, size_t ncols, const int R, const int P) {
  VEC acc[MR > 1 ? MR : 1][PMAX];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) acc[r][q] = VZERO();
  const size_t full = K / 4;
  for (size_t s = 0; s < full; s++) {
    VEC wv[PMAX];
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) wv[q] = VLOADW(w + (size_t)q * ps + s * STEP_BYTES);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      int32_t x4;
      memcpy(&x4, x + (size_t)r * ldx + 4 * s, 4);
      const VEC xv = VBCAST(x4);
#pragma GCC unroll 8
      for (int q = 0; q < P; q++) acc[r][q] = VDPBUSD(acc[r][q], xv, wv[q]);
    }
  }
  if (K & 3) { /* the last 1-3 k: x read byte by byte, zero-padded */
    VEC wv[PMAX];
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) wv[q] = VLOADW(w + (size_t)q * ps + full * STEP_BYTES);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      uint8_t b[4] = {0, 0, 0, 0};
      for (size_t t = 0; t < (K & 3); t++) b[t] = x[(size_t)r * ldx + 4 * full + t];
      int32_t x4;
      memcpy(&x4, b, 4);
      const VEC xv = VBCAST(x4);
#pragma GCC unroll 8
      for (int q = 0; q < P; q++) acc[r][q] = VDPBUSD(acc[r][q], xv, wv[q]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int q = 0; q < P; q++)
      VSTORE(c + (size_t)r * ldc + (size_t)q * LANES, acc[r][q], ncols - (size_t)q * LANES);
}

typedef void (*vnni_micro_fn)(const uint8_t *, size_t, size_t, const int8_t *, size_t,
                              int32_t *, size_t, size_t);
#define VNNI_MICRO(R, P)                                                            \
  static void vnni_micro_##R##_##P(const uint8_t *x, size_t ldx, size_t K,          \
                                   const int8_t *w, size_t ps, int32_t *c,          \
                                   size_t ldc, size_t ncols) {                      \
    vnni_micro(x, ldx, K, w, ps, c, ldc, ncols, R, P);                              \
  }

/* Every (rows, panels) block the driver can ask for: rows 1..MR with
 * panels 1..NP, and at batch 1 panels 1..GNP. */
VNNI_MICRO(1, 1) VNNI_MICRO(1, 2) VNNI_MICRO(1, 3) VNNI_MICRO(1, 4)
VNNI_MICRO(2, 1) VNNI_MICRO(2, 2) VNNI_MICRO(2, 3)
VNNI_MICRO(3, 1) VNNI_MICRO(3, 2) VNNI_MICRO(3, 3)
VNNI_MICRO(4, 1) VNNI_MICRO(4, 2) VNNI_MICRO(4, 3)
#if GNP > 4
VNNI_MICRO(1, 5) VNNI_MICRO(1, 6) VNNI_MICRO(1, 7) VNNI_MICRO(1, 8)
#endif
#if NP > 3
VNNI_MICRO(2, 4) VNNI_MICRO(3, 4) VNNI_MICRO(4, 4)
#endif
#if MR > 4
VNNI_MICRO(5, 1) VNNI_MICRO(5, 2) VNNI_MICRO(5, 3)
VNNI_MICRO(6, 1) VNNI_MICRO(6, 2) VNNI_MICRO(6, 3)
#if NP > 3
VNNI_MICRO(5, 4) VNNI_MICRO(6, 4)
#endif
#endif
#if MR > 6
VNNI_MICRO(7, 1) VNNI_MICRO(7, 2) VNNI_MICRO(7, 3)
VNNI_MICRO(8, 1) VNNI_MICRO(8, 2) VNNI_MICRO(8, 3)
#endif
#if GNP > 8 || MR > 8 || NP > 4 || (MR > 6 && NP > 3) || NP < 3 || MR < 4
#error "kernel_vnni.h: add the micro-kernels for this MR / NP / GNP"
#endif

static const vnni_micro_fn vnni_micros[MR + 1][PMAX + 1] = {
    [1] = {0, vnni_micro_1_1, vnni_micro_1_2, vnni_micro_1_3, vnni_micro_1_4,
#if GNP > 4
           vnni_micro_1_5, vnni_micro_1_6, vnni_micro_1_7, vnni_micro_1_8
#endif
    },
#if NP > 3
    [2] = {0, vnni_micro_2_1, vnni_micro_2_2, vnni_micro_2_3, vnni_micro_2_4},
    [3] = {0, vnni_micro_3_1, vnni_micro_3_2, vnni_micro_3_3, vnni_micro_3_4},
    [4] = {0, vnni_micro_4_1, vnni_micro_4_2, vnni_micro_4_3, vnni_micro_4_4},
#else
    [2] = {0, vnni_micro_2_1, vnni_micro_2_2, vnni_micro_2_3},
    [3] = {0, vnni_micro_3_1, vnni_micro_3_2, vnni_micro_3_3},
    [4] = {0, vnni_micro_4_1, vnni_micro_4_2, vnni_micro_4_3},
#endif
#if MR > 4
#if NP > 3
    [5] = {0, vnni_micro_5_1, vnni_micro_5_2, vnni_micro_5_3, vnni_micro_5_4},
    [6] = {0, vnni_micro_6_1, vnni_micro_6_2, vnni_micro_6_3, vnni_micro_6_4},
#else
    [5] = {0, vnni_micro_5_1, vnni_micro_5_2, vnni_micro_5_3},
    [6] = {0, vnni_micro_6_1, vnni_micro_6_2, vnni_micro_6_3},
#endif
#endif
#if MR > 6
    [7] = {0, vnni_micro_7_1, vnni_micro_7_2, vnni_micro_7_3},
    [8] = {0, vnni_micro_8_1, vnni_micro_8_2, vnni_micro_8_3},
#endif
};

/* Batches: panel groups of NP outer, blocks of MR rows inner, so a group's
 * weights (NP * K * LANES bytes) stay in L1/L2 while every row block passes
 * over them. Batch 1: GNP panels per pass, each weight byte read once. */
static void vnni_gemm_u8s8(const uint8_t *x, size_t M, size_t K, size_t ldx,
                           const void *wpacked, size_t N, int32_t *acc) {
  const int8_t *w = wpacked;
  const size_t np = vnni_npanels(N), ps = vnni_panel_bytes(K);
  if (M == 0 || N == 0) return;
  if (M == 1) {
    for (size_t p0 = 0; p0 < np; p0 += GNP) {
      int n = np - p0 < (size_t)GNP ? (int)(np - p0) : GNP;
      vnni_micros[1][n](x, ldx, K, w + p0 * ps, ps, acc + p0 * LANES, N, N - p0 * LANES);
    }
    return;
  }
  for (size_t p0 = 0; p0 < np; p0 += NP) {
    int n = np - p0 < (size_t)NP ? (int)(np - p0) : NP;
    for (size_t m0 = 0; m0 < M; m0 += MR) {
      int r = M - m0 < (size_t)MR ? (int)(M - m0) : MR;
      vnni_micros[r][n](x + m0 * ldx, ldx, K, w + p0 * ps, ps, acc + m0 * N + p0 * LANES, N,
                        N - p0 * LANES);
    }
  }
}
