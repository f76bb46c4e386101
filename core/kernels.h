/* kernels.h - the int8 kernel table: one signature per operation, a scalar
 * reference tier (kernel_ref.c, the specification) and faster tiers
 * (kernel_avx2.c, kernel_avxvnni.c, kernel_avx512vnni.c, each compiled alone
 * with its own -m flags) that must return the same int32 for every input.
 *
 * The product computed is the raw one, acc[m][n] = sum_k x[m][k] * w[n][k]
 * with x uint8 (0..255) and w int8 (-128..127); the caller subtracts
 * in_zp * rowsum(w[n]) and adds the bias. For K <= QAT_MAX_DIM the result
 * fits int32 with room to spare.
 *
 * Operations (every tier fills every entry; tests/unit/test_kernels.c checks
 * each tier against the reference, exactly):
 *
 *   size_t packed_size(size_t N, size_t K);
 *   void   pack(const int8_t *w, size_t N, size_t K, void *dst);
 *   void   gemm_u8s8(const uint8_t *x, size_t M, size_t K, size_t ldx,
 *                    const void *wpacked, size_t N, int32_t *acc);
 *          acc[m*N + n] = sum_k x[m*ldx + k] * w[n*K + k]. M == 1 takes a
 *          gemv path inside the same entry; blocks of x with no value >= 128
 *          take a faster (still exact) path. Thread-safe, allocates nothing
 *          (the AVX2 tier's x panels, at most 18 KB, are on the stack; the
 *          VNNI tiers read x in place). The AVX2 packed buffer holds two
 *          layouts, about 2*N*K bytes; the VNNI tiers' one, N*K rounded up.
 *   void   requant_u8(const int32_t *acc, size_t M, size_t N,
 *                     const int32_t *bias, const float *mult, int32_t out_zp,
 *                     int32_t lo, int32_t hi, uint8_t *out, size_t ldo);
 *          The integer layer's output step (DESIGN.md), for m < M, c < N:
 *            out[m*ldo + c] = clamp(rint((float)(acc[m*N + c] + bias[c])
 *                                        * mult[c]) + out_zp, lo, hi)
 *          with bias[c] = bq[c] - in_zp * sum_k w[c][k] folded once at load
 *          (so acc is gemm_u8s8's raw product), mult[c] = M[c], lo = relu ?
 *          out_zp : 0, hi = qmax (0 <= lo <= hi <= 255). The int32 sum wraps
 *          like the hardware add: exact whenever the true acc + bq fits
 *          int32, which QAT_MAX_DIM and QAT_MAX_BIAS_Q guarantee. (float) of
 *          the int32 and the product round to nearest; rint ties to even.
 *          The clamp is applied to the rounded float before the conversion,
 *          so out-of-int32-range products saturate instead of overflowing;
 *          for in-range values this equals the integer clamp above.
 *   void   quantize_u8(const float *x, size_t n, const qat_qparams *p,
 *                      uint8_t *q);
 *          Exactly qat_quantize_u8 (quant.c; the reference tier points at
 *          it): q[i] = fmin(fmax(zp + rint(x[i] * (1.0f / scale)), qmin),
 *          qmax) in float32, NaN -> qmin; for 0 <= qmin <= qmax <= 255.
 *   void   gemv_f32(const float *x, size_t K, const float *wt, size_t ldw,
 *                   const float *b, size_t N, float *y);
 *          The fp32 baseline's single-row product, weights transposed, a
 *          zero input skipping its row of weights (gemv_f32.h, the
 *          specification; gemv_f32.c its reference). Not int8, but a tier's
 *          SIMD level chooses it too, and it too must return the reference's
 *          bits exactly. NULL in a tier that has none faster than OpenBLAS
 *          sgemv (avx2, avxvnni): one row then goes through sgemv on w. */
#ifndef QAT_KERNELS_H
#define QAT_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemv_f32.h"
#include "qat.h"

typedef struct qat_kernels {
  const char *name;
  /* Bytes needed to hold w [N][K] in this tier's packed layout. */
  size_t (*packed_size)(size_t N, size_t K);
  /* Packs w [N][K] (row-major int8) into dst (64-byte aligned,
   * packed_size bytes). Done once, when a model is made. */
  void (*pack)(const int8_t *w, size_t N, size_t K, void *dst);
  /* acc [M][N] = x [M][K] (row stride ldx bytes) times packed w, transposed.
   * Allocates nothing; x rows need no alignment. */
  void (*gemm_u8s8)(const uint8_t *x, size_t M, size_t K, size_t ldx,
                    const void *wpacked, size_t N, int32_t *acc);
  /* The requantization to uint8 described above. */
  void (*requant_u8)(const int32_t *acc, size_t M, size_t N, const int32_t *bias,
                     const float *mult, int32_t out_zp, int32_t lo, int32_t hi,
                     uint8_t *out, size_t ldo);
  /* The input quantization, bit-identical to qat_quantize_u8. */
  void (*quantize_u8)(const float *x, size_t n, const qat_qparams *p, uint8_t *q);
  /* y [N] = b + x [K] times wt [K][ldw], fused multiply-adds in k order,
   * zero inputs skipped (gemv_f32.h); NULL = OpenBLAS sgemv instead. */
  void (*gemv_f32)(const float *x, size_t K, const float *wt, size_t ldw, const float *b,
                   size_t N, float *y);
} qat_kernels;

extern const qat_kernels qat__kernels_ref;
#if defined(__x86_64__)
extern const qat_kernels qat__kernels_avx2;
extern const qat_kernels qat__kernels_avxvnni;
extern const qat_kernels qat__kernels_avx512vnni;
/* Test-only twin of the avxvnni tier: the same source (kernel_avxvnni.c)
 * compiled with the EVEX encoding of vpdpbusd ymm (AVX512-VNNI + VL), so a
 * machine with AVX-512 VNNI but no AVX-VNNI still runs that tier's code.
 * Never chosen by qat__kernels_get. */
extern const qat_kernels qat__kernels_avxvnni_evex;
/* The AVX2 tier's requant_u8 and quantize_u8, which the avxvnni tier reuses
 * (every AVX-VNNI CPU has AVX2; there is no 8-bit dot product in either). */
void qat__avx2_requant_u8(const int32_t *acc, size_t M, size_t N, const int32_t *bias,
                         const float *mult, int32_t out_zp, int32_t lo, int32_t hi,
                         uint8_t *out, size_t ldo);
void qat__avx2_quantize_u8(const float *x, size_t n, const qat_qparams *p, uint8_t *q);
#endif

/* The table chosen once for this process: the fastest tier the CPU and OS
 * allow (avx512vnni, avxvnni, avx2, ref), or the one QAT_KERNEL names.
 * NULL when QAT_KERNEL names an unknown tier or one this CPU cannot run
 * (qat_kernel_check says why); nothing is ever run that would SIGILL. */
const qat_kernels *qat__kernels_get(void);
/* What a given QAT_KERNEL value would choose on this machine (NULL = unset),
 * without caching: what qat__kernels_get uses, exposed for tests. Fails with
 * QAT_EINVAL for an unknown name, QAT_EUNSUPPORTED (naming the missing CPU
 * feature) for a tier this machine lacks. */
qat_err qat__kernels_select(const char *qat_kernel_env, const qat_kernels **out);
/* Every tier this machine can run, fastest first, the reference last, plus
 * the test-only twins when with_twins; returns how many (at most 8). */
size_t qat__kernels_available(const qat_kernels **out, size_t cap, bool with_twins);
/* Whether the CPU and OS allow tier t (false for tiers unknown here). */
bool qat__kernels_runnable(const qat_kernels *t);
/* True when the CPU and the OS allow the AVX2 tier. */
bool qat__cpu_has_avx2(void);

#endif
