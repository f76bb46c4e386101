/* kernel_avxvnni.c - the AVX-VNNI int8 tier: ymm, the VEX-encoded vpdpbusd,
 * for CPUs with AVX-VNNI but not AVX-512 (Intel Alder Lake and later, AMD
 * Zen 5). Compiled alone with -mavx2 -mfma -mavxvnni (Makefile,
 * *_avxvnni.c) and chosen at run time by cpu.c only when CPUID reports
 * AVX-VNNI and XCR0 the YMM state. Must return exactly the reference's int32
 * for every x in 0..255 and w in -128..127.
 *
 * Why it cannot overflow: the same instruction as the avx512vnni tier on 8
 * lanes. vpdpbusd (not the saturating vpdpbusds) forms each u8 x s8 product
 * exactly in 16 bits (|255 * -128| = 32640 <= 32767) and adds the four of
 * a lane to the int32 accumulator without saturation; for K <= QAT_MAX_DIM
 * = 32768 every partial sum is within K * 255 * 128 = 1,069,547,520 < 2^31
 * - 1, so the int32 never wraps and the sum is the reference's integer.
 * Zero padding (N to 8 rows, K to 4) adds exact zeros.
 *
 * The same source is compiled a second time, with QAT_AVXVNNI_EVEX, by
 * kernel_avxvnni_twin_avx512vnni.c: vpdpbusd ymm in its EVEX encoding
 * (AVX512-VNNI + VL), so the tests run this tier's code on a machine that
 * has AVX-512 VNNI but not AVX-VNNI (the encoding is the only difference). */
#include <immintrin.h>
#include <limits.h>

#include "kernels.h"

_Static_assert(255 * 128 <= SHRT_MAX, "a u8 x s8 product fits the 16-bit intermediate");
_Static_assert((long long)QAT_MAX_DIM * 255 * 128 <= INT_MAX,
               "K * 255 * 128 fits the int32 accumulator: no partial sum wraps");

#if defined(QAT_AVXVNNI_EVEX)
#if defined(__AVXVNNI__)
#error "the twin must not be built with -mavxvnni (it would emit the VEX form)"
#endif
#define VDPBUSD(a, x, w) _mm256_dpbusd_epi32((a), (x), (w))
#define TIER_NAME "avxvnni-evex"
#define TIER_TABLE qat__kernels_avxvnni_evex
#else
#define VDPBUSD(a, x, w) _mm256_dpbusd_avx_epi32((a), (x), (w))
#define TIER_NAME "avxvnni"
#define TIER_TABLE qat__kernels_avxvnni
#endif

#define VEC __m256i
#define LANES 8
#define VZERO() _mm256_setzero_si256()
#define VLOADW(p) _mm256_load_si256((const __m256i *)(p))
#define VBCAST(i) _mm256_set1_epi32(i)
/* 16 ymm registers: 4 rows x 3 panels = 12 accumulators + 3 weights + a
 * broadcast. Batch 1: 4 panels per pass (the weights come from memory
 * operands). */
#define MR 4
#define NP 3
#define GNP 4
#define PMAX 4

/* Stores lanes 0..cols-1 (all when cols >= 8); the padding lanes of the
 * last panel must not be written. */
static inline void store8(int32_t *p, __m256i v, size_t cols) {
  if (cols >= 8) {
    _mm256_storeu_si256((__m256i *)p, v);
  } else {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_epi32(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), idx), v);
  }
}
#define VSTORE(p, v, cols) store8((p), (v), (cols))

#include "kernel_vnni.h"

const qat_kernels TIER_TABLE = {
    .name = TIER_NAME,
    .packed_size = vnni_packed_size,
    .pack = vnni_pack,
    .gemm_u8s8 = vnni_gemm_u8s8,
    /* No dot product in these: the AVX2 tier's, exact vs the reference. */
    .requant_u8 = qat__avx2_requant_u8,
    .quantize_u8 = qat__avx2_quantize_u8,
    .gemv_f32 = NULL, /* OpenBLAS sgemv, as the avx2 tier */
};
