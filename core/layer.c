/* layer.c - the layer math around the kernels (see layer.h): the integer
 * bias and multiplier derived at create, the float outputs of the last
 * layer and of dynamic mode, the fp32 baseline through OpenBLAS. Input
 * quantization and requantization to uint8 are kernel-table operations
 * (kernels.h), tested against the formulas in tests/unit/test_layer.c. */
#include <cblas.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "internal.h"
#include "layer.h"

bool qat__layer_bias_q(float bias, float w_scale, float in_scale, int32_t *bq) {
  /* The product in double, rounded once to float, then the float
   * reciprocal: what PyTorch's quantized Linear does with its bias. */
  float inv = 1.0f / (float)((double)w_scale * (double)in_scale);
  float v = rintf(bias * inv);
  if (!(fabsf(v) <= (float)QAT_MAX_BIAS_Q)) return false; /* also NaN/inf */
  *bq = (int32_t)v;
  return true;
}

float qat__layer_multiplier(float w_scale, float in_scale, float out_scale) {
  return (w_scale * in_scale) * (1.0f / out_scale);
}

float qat__layer_multiplier_ort(float w_scale, float in_scale, float out_scale) {
  return (in_scale * w_scale) / out_scale;
}

/* Scalar loops: these run only for models imported from ONNX with ONNX
 * Runtime's rounding, where a division must be a division; n per row is a
 * layer width, small next to the n * K multiply-adds of the layer itself. */
void qat__layer_quantize_div(const float *x, size_t n, const qat_qparams *p,
                            uint8_t *q) {
  const float lo = (float)(p->qmin - p->zero_point);
  const float hi = (float)(p->qmax - p->zero_point);
  for (size_t i = 0; i < n; i++) {
    float v = rintf(x[i] / p->scale);
    v = v < lo ? lo : v > hi ? hi : v;
    q[i] = v == v ? (uint8_t)((int32_t)v + p->zero_point) : (uint8_t)p->qmin;
  }
}

void qat__layer_requant_div(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *bias_adj, const float *scale,
                           float out_s, int32_t zp, int32_t lo, int32_t hi,
                           uint8_t *out, size_t ldo) {
  const float flo = (float)(lo - zp), fhi = (float)(hi - zp);
  for (size_t r = 0; r < rows; r++)
    for (size_t c = 0; c < n; c++) {
      /* acc + bq < 2^31 in magnitude (layer.h); added as the kernels do. */
      int32_t a = (int32_t)((uint32_t)raw[r * n + c] + (uint32_t)bias_adj[c]);
      float v = (float)a * scale[c];
      v = rintf(v / out_s);
      v = v < flo ? flo : v > fhi ? fhi : v;
      out[r * ldo + c] = (uint8_t)((int32_t)v + zp);
    }
}

void qat__layer_dequant_acc(const int32_t *raw, size_t rows, size_t n,
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

void qat__layer_dequant_u8(const uint8_t *q, size_t n, int32_t zp, float scale,
                          float *y) {
  for (size_t i = 0; i < n; i++) y[i] = (float)((int32_t)q[i] - zp) * scale;
}

void qat__layer_dynamic_out(const int32_t *raw, size_t rows, size_t n,
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

bool qat__layer_minmax(const float *x, size_t n, float *min, float *max) {
  /* Compares instead of fminf/fmaxf (libm calls), and four lanes at once:
   * this runs over every layer input of every dynamic-mode request. A NaN
   * never wins a compare, so it is tracked separately. */
  float lo = INFINITY, hi = -INFINITY;
  bool nan = false;
  size_t i = 0;
#if defined(__SSE2__)
  __m128 vlo = _mm_set1_ps(INFINITY), vhi = _mm_set1_ps(-INFINITY);
  __m128 vnan = _mm_setzero_ps();
  for (; i + 4 <= n; i += 4) {
    __m128 v = _mm_loadu_ps(x + i);
    vnan = _mm_or_ps(vnan, _mm_cmpunord_ps(v, v));
    vlo = _mm_min_ps(v, vlo); /* minps returns its second operand for NaN */
    vhi = _mm_max_ps(v, vhi);
  }
  float l4[4], h4[4];
  _mm_storeu_ps(l4, vlo);
  _mm_storeu_ps(h4, vhi);
  for (int j = 0; j < 4; j++) {
    lo = l4[j] < lo ? l4[j] : lo;
    hi = h4[j] > hi ? h4[j] : hi;
  }
  nan = _mm_movemask_ps(vnan) != 0;
#endif
  for (; i < n; i++) {
    float v = x[i];
    nan |= v != v;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  *min = lo;
  *max = hi;
  return n > 0 && !nan && isfinite(lo) && isfinite(hi);
}

void qat__layer_fp32(const qat_kernels *k, const float *x, size_t rows, size_t K,
                    const float *W, const float *Wt, const float *b, size_t N, bool relu,
                    float *y) {
  if (rows == 1 && k->gemv_f32) {
    k->gemv_f32(x, K, Wt, qat__gemv_f32_ld(N), b, N, y);
  } else {
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
  }
  if (relu)
    for (size_t i = 0; i < rows * N; i++)
      if (!(y[i] > 0.0f)) y[i] = 0.0f;
}
