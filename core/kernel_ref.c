/* kernel_ref.c - the scalar reference kernels: the specification every
 * faster tier is tested against, and the tier QAT_KERNEL=ref forces. */
#include <math.h>
#include <string.h>

#include "kernels.h"

static size_t ref_packed_size(size_t N, size_t K) { return N * K; }

static void ref_pack(const int8_t *w, size_t N, size_t K, void *dst) {
  memcpy(dst, w, N * K);
}

static void ref_gemm_u8s8(const uint8_t *x, size_t M, size_t K, size_t ldx,
                          const void *wpacked, size_t N, int32_t *acc) {
  const int8_t *w = wpacked;
  for (size_t m = 0; m < M; m++) {
    const uint8_t *xr = x + m * ldx;
    for (size_t n = 0; n < N; n++) {
      const int8_t *wr = w + n * K;
      int32_t s = 0;
      for (size_t k = 0; k < K; k++) s += (int32_t)xr[k] * (int32_t)wr[k];
      acc[m * N + n] = s;
    }
  }
}

/* The specification of the requantization step (kernels.h). The int32 add
 * is done in uint32 so it wraps like vpaddd instead of being undefined. */
static void ref_requant_u8(const int32_t *acc, size_t M, size_t N,
                           const int32_t *bias, const float *mult, int32_t out_zp,
                           int32_t lo, int32_t hi, uint8_t *out, size_t ldo) {
  float flo = (float)(lo - out_zp), fhi = (float)(hi - out_zp);
  for (size_t m = 0; m < M; m++)
    for (size_t c = 0; c < N; c++) {
      int32_t a = (int32_t)((uint32_t)acc[m * N + c] + (uint32_t)bias[c]);
      float r = rintf((float)a * mult[c]);
      r = r < flo ? flo : r > fhi ? fhi : r;
      out[m * ldo + c] = (uint8_t)((int32_t)r + out_zp);
    }
}

const qat_kernels qat__kernels_ref = {
    .name = "ref",
    .packed_size = ref_packed_size,
    .pack = ref_pack,
    .gemm_u8s8 = ref_gemm_u8s8,
    .requant_u8 = ref_requant_u8,
    .quantize_u8 = qat_quantize_u8, /* the contract itself (quant.c) */
    .gemv_f32 = qat__gemv_f32_ref,
};
