/* quant.c - the quantization contract in one place: parameters from a range,
 * quantize/dequantize, fake quantization with the STE mask, observers.
 *
 * Everything here is float32 arithmetic in the default rounding mode and
 * mirrors PyTorch's own code (aten quantize_val, _calculate_qparams) so that
 * a PyTorch-trained model and ours produce the same integers. */
#include <math.h>

#include "qat_train.h"
#include "internal.h"

qat_err qat_qparams_from_range(float min, float max, int bits, bool symmetric,
                               qat_qparams *out) {
  if (bits < 2 || bits > 8)
    return qat__fail(QAT_EINVAL, "bit width %d outside 2..8", bits);
  if (!isfinite(min) || !isfinite(max))
    return qat__fail(QAT_ENOTFINITE, "range [%g, %g] is not finite", min, max);
  if (min > max)
    return qat__fail(QAT_EINVAL, "range min %g > max %g", min, max);
  /* Zero must be exactly representable (padding, ReLU), so the range
   * always contains it. */
  float lo = fminf(min, 0.0f), hi = fmaxf(max, 0.0f);
  qat_qparams p;
  if (symmetric) {
    p.qmax = (1 << (bits - 1)) - 1;
    p.qmin = -p.qmax;
    float amax = fmaxf(-lo, hi);
    p.scale = amax / (float)p.qmax;
    if (!(p.scale >= QAT_MIN_SCALE)) p.scale = QAT_MIN_SCALE;
    p.zero_point = 0;
  } else {
    p.qmin = 0;
    p.qmax = (1 << bits) - 1;
    p.scale = (hi - lo) / (float)(p.qmax - p.qmin);
    if (!(p.scale >= QAT_MIN_SCALE)) p.scale = QAT_MIN_SCALE;
    if (!isfinite(p.scale))
      return qat__fail(QAT_ERANGE, "range [%g, %g] too wide for float32", min, max);
    float z = (float)p.qmin - rintf(lo / p.scale);
    p.zero_point = (int32_t)fminf(fmaxf(z, (float)p.qmin), (float)p.qmax);
  }
  *out = p;
  return QAT_OK;
}

int32_t qat_quantize(float x, const qat_qparams *p) {
  float inv = 1.0f / p->scale;
  float v = (float)p->zero_point + rintf(x * inv);
  /* Clamp in float before converting: no UB for huge values, and fmaxf
   * turns NaN into qmin. */
  v = fminf(fmaxf(v, (float)p->qmin), (float)p->qmax);
  return (int32_t)v;
}

float qat_dequantize(int32_t q, const qat_qparams *p) {
  return (float)(q - p->zero_point) * p->scale;
}

/* Compares rather than fminf/fmaxf: those are library calls here, and the
 * compare form sends NaN to qmin just the same (every compare with NaN is
 * false). */
static inline float clampf(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  return v < hi ? v : hi;
}

void qat_quantize_u8(const float *x, size_t n, const qat_qparams *p, uint8_t *q) {
  const float inv = 1.0f / p->scale, zp = (float)p->zero_point;
  const float lo = (float)p->qmin, hi = (float)p->qmax;
  for (size_t i = 0; i < n; i++) q[i] = (uint8_t)clampf(zp + rintf(x[i] * inv), lo, hi);
}

void qat_quantize_s8(const float *x, size_t n, const qat_qparams *p, int8_t *q) {
  const float inv = 1.0f / p->scale, zp = (float)p->zero_point;
  const float lo = (float)p->qmin, hi = (float)p->qmax;
  for (size_t i = 0; i < n; i++) q[i] = (int8_t)clampf(zp + rintf(x[i] * inv), lo, hi);
}

void qat_fake_quant(const float *x, size_t n, const qat_qparams *p, float *y,
                    uint8_t *mask) {
  const float inv = 1.0f / p->scale, zp = (float)p->zero_point;
  const float lo = (float)p->qmin, hi = (float)p->qmax;
  for (size_t i = 0; i < n; i++) {
    float v = zp + rintf(x[i] * inv);
    /* The STE passes the gradient where rounding alone acted, i.e. where the
     * unclamped integer lay inside [qmin, qmax] (PyTorch's mask). */
    if (mask) mask[i] = (uint8_t)(v >= lo && v <= hi);
    v = clampf(v, lo, hi);
    y[i] = (v - zp) * p->scale;
  }
}

void qat_observer_init(qat_observer *o, float averaging_constant) {
  o->min = 0.0f;
  o->max = 0.0f;
  o->averaging_constant = averaging_constant;
  o->initialized = false;
}

void qat_observer_update(qat_observer *o, const float *x, size_t n) {
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i])) continue;
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  if (lo > hi) return; /* nothing finite seen */
  if (!o->initialized) {
    o->min = lo;
    o->max = hi;
    o->initialized = true;
  } else if (o->averaging_constant > 0.0f) {
    o->min += o->averaging_constant * (lo - o->min);
    o->max += o->averaging_constant * (hi - o->max);
  } else {
    o->min = fminf(o->min, lo);
    o->max = fmaxf(o->max, hi);
  }
}

qat_err qat_observer_qparams(const qat_observer *o, int bits, bool symmetric,
                             qat_qparams *out) {
  float lo = o->initialized ? o->min : 0.0f;
  float hi = o->initialized ? o->max : 0.0f;
  return qat_qparams_from_range(lo, hi, bits, symmetric, out);
}
