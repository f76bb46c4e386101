/* gemv_f32.c - the reference tier of the fp32 single-row product (the
 * specification, gemv_f32.h) and the transposition that lays the weights
 * out for it. Compiled with the plain flags: fmaf is glibc's correctly
 * rounded fused multiply-add (a call here, an instruction in the SIMD
 * tiers; the same bits). */
#include <math.h>
#include <string.h>

#include "gemv_f32.h"

void qat__gemv_f32_transpose(const float *w, size_t N, size_t K, float *wt) {
  size_t ldw = qat__gemv_f32_ld(N);
  for (size_t k = 0; k < K; k++) {
    float *row = wt + k * ldw;
    for (size_t n = 0; n < N; n++) row[n] = w[n * K + k];
    memset(row + N, 0, (ldw - N) * sizeof(float));
  }
}

void qat__gemv_f32_ref(const float *x, size_t K, const float *wt, size_t ldw,
                       const float *b, size_t N, float *y) {
  for (size_t n = 0; n < N; n++) {
    float acc = b[n];
    for (size_t k = 0; k < K; k++)
      if (x[k] != 0.0f) acc = fmaf(x[k], wt[k * ldw + n], acc);
    y[n] = acc;
  }
}
