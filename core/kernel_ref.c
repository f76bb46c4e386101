/* kernel_ref.c - the scalar reference kernels: the specification every
 * faster tier is tested against, and the tier QAT_KERNEL=ref forces. */
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

const qat_kernels qat_kernels_ref = {
    .name = "ref",
    .packed_size = ref_packed_size,
    .pack = ref_pack,
    .gemm_u8s8 = ref_gemm_u8s8,
};
