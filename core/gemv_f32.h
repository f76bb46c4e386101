/* gemv_f32.h - the fp32 baseline's single-row product, one function per
 * kernel tier (qat_kernels.gemv_f32 points at one of them).
 *
 *   y[n] = the fold over k = 0..K-1, skipping every k with x[k] == 0, of
 *          acc = fmaf(x[k], wt[k * ldw + n], acc), starting from acc = b[n]
 *
 * for n < N. wt is the layer's fp32 weights transposed, [K][ldw] row-major,
 * ldw = qat__gemv_f32_ld(N) (N rounded up to 16 floats, the padding zero),
 * 64-byte aligned: every row of wt starts a cache line.
 *
 * Why this shape. A batch of one is a matrix-vector product whose cost is
 * reading the weights (the shipped model's 940 KB of fp32 do not fit a
 * Zen 4 core's 1 MB L2 beside the rest, so they stream from L3). Reading
 * them by input (wt's rows) lets a zero input skip its whole row of
 * weights: half of a Fashion-MNIST image is exact zeros, and so are about
 * half of every ReLU layer's outputs. Skipping is exact: a skipped term is
 * 0 * w with w finite (the loader refuses non-finite weights), which adds
 * +0 or -0 to acc, and acc + (+-0) == acc unless acc is a zero of the
 * other sign - a difference the definition above fixes (all tiers skip).
 *
 * Every tier computes, per output n, the same sequence of correctly rounded
 * fused multiply-adds in the same order, so every tier returns the same
 * bits as the reference (tests/unit/test_kernels.c checks that, exactly).
 * Nothing can overflow but IEEE arithmetic itself: a product or sum beyond
 * FLT_MAX is +-inf in every tier alike. The result differs from OpenBLAS's
 * sgemv (another summation order) by rounding only; batches of more than
 * one row still go through OpenBLAS sgemm (layer.c).
 *
 * Tiers: the reference (gemv_f32.c) and AVX-512F (gemv_f32_avx512vnni.c:
 * 16 zmm accumulators hold 256 outputs, so each row of wt is read once, in
 * order). No AVX2 one: with 16 ymm registers a pass covers 64 outputs,
 * reads wt in 256-byte pieces 1 KB apart, and measured 0.69x OpenBLAS's
 * sgemv on dense rows (1.08x on images; `make bench-fp32`), so the avx2 and
 * avxvnni tiers keep sgemv. Internal to libqat. */
#ifndef QAT_GEMV_F32_H
#define QAT_GEMV_F32_H

#include <stddef.h>

/* The row stride of wt for N outputs: N rounded up to 16 floats. */
static inline size_t qat__gemv_f32_ld(size_t N) { return (N + 15) & ~(size_t)15; }

/* wt [K][ldw] = w [N][K] transposed, the padding columns zero. */
void qat__gemv_f32_transpose(const float *w, size_t N, size_t K, float *wt);

void qat__gemv_f32_ref(const float *x, size_t K, const float *wt, size_t ldw,
                       const float *b, size_t N, float *y);
#if defined(__x86_64__)
void qat__gemv_f32_avx512(const float *x, size_t K, const float *wt, size_t ldw,
                          const float *b, size_t N, float *y);
#endif

#endif
