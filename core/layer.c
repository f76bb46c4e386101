/* layer.c - the integer and fp32 layer math (see layer.h for the formulas).
 *
 * Scalar on purpose: this is the specification of requantization. A kernel
 * tier may fuse it into its GEMM later, and must then match this exactly. */
#include <cblas.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "internal.h"
#include "layer.h"

/* rint by the 1.5 * 2^23 trick (round to nearest even in the default
 * mode), which vectorizes where rintf does not without SSE4.1. Exact for
 * |t| < 2^22; beyond that both roundings are far outside [0, 255] with the
 * same sign, so after the clamp they agree. inf stays inf, NaN stays NaN. */
#define QAT_RINT_MAGIC 12582912.0f

/* Clamp with compares, not fminf/fmaxf (libm calls): "v > lo ? v : lo" is
 * exactly maxss/maxps, and a NaN fails the compare and becomes lo, which is
 * also what fmaxf(NaN, lo) gives. */
static inline uint8_t clamp_u8(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return (uint8_t)v;
}

#if defined(__SSE2__)
/* Four float vectors (each already clamped to 0..255 integers) to 16 bytes. */
static inline __m128i pack16(__m128 a, __m128 b, __m128 c, __m128 d) {
  __m128i ab = _mm_packs_epi32(_mm_cvttps_epi32(a), _mm_cvttps_epi32(b));
  __m128i cd = _mm_packs_epi32(_mm_cvttps_epi32(c), _mm_cvttps_epi32(d));
  return _mm_packus_epi16(ab, cd);
}
#endif

void qat_layer_quantize_u8(const float *x, size_t n, const qat_qparams *p,
                           uint8_t *q) {
  const float inv = 1.0f / p->scale, zp = (float)p->zero_point;
  const float lo = (float)p->qmin, hi = (float)p->qmax;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 vinv = _mm_set1_ps(inv), vzp = _mm_set1_ps(zp), vm = _mm_set1_ps(QAT_RINT_MAGIC);
  const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  for (; i + 16 <= n; i += 16) {
    __m128 v[4];
    for (int j = 0; j < 4; j++) {
      __m128 t = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * j), vinv);
      t = _mm_add_ps(vzp, _mm_sub_ps(_mm_add_ps(t, vm), vm));
      v[j] = _mm_min_ps(_mm_max_ps(t, vlo), vhi);
    }
    _mm_storeu_si128((__m128i *)(q + i), pack16(v[0], v[1], v[2], v[3]));
  }
#endif
  for (; i < n; i++) {
    float t = x[i] * inv;
    q[i] = clamp_u8(zp + ((t + QAT_RINT_MAGIC) - QAT_RINT_MAGIC), lo, hi);
  }
}

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
    size_t c = 0;
#if defined(__SSE2__)
    const __m128 vzp = _mm_set1_ps(fzp), vm = _mm_set1_ps(QAT_RINT_MAGIC);
    const __m128 vlo = _mm_set1_ps(flo), vhi = _mm_set1_ps(fhi);
    for (; c + 16 <= n; c += 16) {
      __m128 v[4];
      for (int j = 0; j < 4; j++) {
        __m128i s = _mm_add_epi32(_mm_loadu_si128((const __m128i *)(a + c + 4 * j)),
                                  _mm_loadu_si128((const __m128i *)(bias_adj + c + 4 * j)));
        __m128 t = _mm_mul_ps(_mm_cvtepi32_ps(s), _mm_loadu_ps(mult + c + 4 * j));
        t = _mm_add_ps(_mm_sub_ps(_mm_add_ps(t, vm), vm), vzp);
        v[j] = _mm_min_ps(_mm_max_ps(t, vlo), vhi);
      }
      _mm_storeu_si128((__m128i *)(o + c), pack16(v[0], v[1], v[2], v[3]));
    }
#endif
    /* v is never NaN here (finite M times a finite integer), and the clamp
     * happens in float before converting: no UB for huge values. */
    for (; c < n; c++) {
      float t = (float)(a[c] + bias_adj[c]) * mult[c];
      o[c] = clamp_u8(((t + QAT_RINT_MAGIC) - QAT_RINT_MAGIC) + fzp, flo, fhi);
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
