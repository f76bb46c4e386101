/* layer.c - the integer and fp32 layer math (see layer.h for the formulas).
 *
 * Scalar on purpose: this is the specification of requantization. A kernel
 * tier may fuse it into its GEMM later, and must then match this exactly. */
#include <cblas.h>
#include <math.h>

#include "internal.h"
#include "layer.h"

bool qat_layer_bias_q(float bias, float w_scale, float in_scale, int32_t *bq) {
  /* The product in double, rounded once to float, then the float
   * reciprocal: what PyTorch's quantized Linear does with its bias. */
  float inv = 1.0f / (float)((double)w_scale * (double)in_scale);
  float v = rintf(bias * inv);
  if (!(fabsf(v) <= (float)QAT_MAX_BIAS_Q)) return false; /* also NaN/inf */
  *bq = (int32_t)v;
  return true;
}

float qat_layer_multiplier(float w_scale, float in_scale, float out_scale) {
  return (w_scale * in_scale) * (1.0f / out_scale);
}

void qat_layer_requant_u8(const int32_t *raw, size_t rows, size_t n,
                          const int32_t *bias_adj, const float *mult,
                          int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
  const float fzp = (float)zp, flo = (float)lo, fhi = (float)hi;
  for (size_t r = 0; r < rows; r++) {
    const int32_t *a = raw + r * n;
    uint8_t *o = out + r * n;
    for (size_t c = 0; c < n; c++) {
      float v = rintf((float)(a[c] + bias_adj[c]) * mult[c]) + fzp;
      /* Clamp in float, then convert: no UB for values beyond int range. */
      v = fminf(fmaxf(v, flo), fhi);
      o[c] = (uint8_t)v;
    }
  }
}

void qat_layer_dequant_acc(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *bias_adj, const float *scale,
                           bool relu, float *y) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *a = raw + r * n;
    float *o = y + r * n;
    for (size_t c = 0; c < n; c++) {
      float v = (float)(a[c] + bias_adj[c]) * scale[c];
      o[c] = relu && !(v > 0.0f) ? 0.0f : v;
    }
  }
}

void qat_layer_dequant_u8(const uint8_t *q, size_t n, int32_t zp, float scale,
                          float *y) {
  for (size_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - zp) * scale;
}

void qat_layer_dynamic_out(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *rowsum, int32_t in_zp,
                           const float *scale, const float *bias, bool relu,
                           float *y) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *a = raw + r * n;
    float *o = y + r * n;
    for (size_t c = 0; c < n; c++) {
      float v = (float)(a[c] - in_zp * rowsum[c]) * scale[c] + bias[c];
      o[c] = relu && !(v > 0.0f) ? 0.0f : v;
    }
  }
}

bool qat_layer_minmax(const float *x, size_t n, float *min, float *max) {
  float lo = INFINITY, hi = -INFINITY;
  bool finite = true;
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    finite &= isfinite(v) != 0;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  *min = lo;
  *max = hi;
  return finite && n > 0;
}

void qat_layer_fp32(const float *x, size_t rows, size_t K, const float *W,
                    const float *b, size_t N, bool relu, float *y) {
  /* Start from the bias and let BLAS accumulate onto it (beta = 1). */
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < N; c++) y[r * N + c] = b[c];
  if (rows == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)N, (blasint)K, 1.0f, W,
                (blasint)K, x, 1, 1.0f, y, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows,
                (blasint)N, (blasint)K, 1.0f, x, (blasint)K, W, (blasint)K,
                1.0f, y, (blasint)N);
  if (relu)
    for (size_t i = 0; i < rows * N; i++)
      if (!(y[i] > 0.0f)) y[i] = 0.0f;
}
