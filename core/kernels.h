/* kernels.h - the int8 kernel table: one signature per operation, a scalar
 * reference tier (kernel_ref.c, the specification) and faster tiers
 * (kernel_avx2.c) that must return the same int32 for every input.
 *
 * The product computed is the raw one, acc[m][n] = sum_k x[m][k] * w[n][k]
 * with x uint8 (0..255) and w int8 (-128..127); the caller subtracts
 * in_zp * rowsum(w[n]) and adds the bias. For K <= QAT_MAX_DIM the result
 * fits int32 with room to spare. */
#ifndef QAT_KERNELS_H
#define QAT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

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
} qat_kernels;

extern const qat_kernels qat_kernels_ref;
#if defined(__x86_64__)
extern const qat_kernels qat_kernels_avx2;
#endif

/* The table chosen once for this process: AVX2 when CPUID and the OS allow
 * it, the reference when not or when QAT_KERNEL=ref. */
const qat_kernels *qat_kernels_get(void);

#endif
