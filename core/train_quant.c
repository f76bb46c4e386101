/* train_quant.c - the quantization side of training: fake-quantized
 * weights (per output row, symmetric, scale from the row's current max |w|,
 * through core's qat_fake_quant) and post-training static calibration. */
#include <math.h>
#include <string.h>

#include "qat_train.h"
#include "train_internal.h"

qat_err qat__net_row_qparams(const float *row, uint32_t in, int bits, qat_qparams *p) {
  /* (A plain comparison: fmaxf is a libm call at -O2, and weights are
   * finite in training; a NaN would be skipped, an infinity refused.) */
  float amax = 0.0f;
  for (uint32_t k = 0; k < in; k++) {
    float a = fabsf(row[k]);
    amax = a > amax ? a : amax;
  }
  if (!isfinite(amax))
    return qat__fail(QAT_ENOTFINITE, "weight row has a non-finite value");
  /* Symmetric per output channel: scale = max |w| / (2^(b-1) - 1). */
  return qat_qparams_from_range(-amax, amax, bits, true, p);
}

qat_err qat__net_quant_weights(qat_net *n) {
  for (uint32_t l = 0; l < n->n_layers; l++) {
    qat_tlayer *t = &n->L[l];
    for (uint32_t c = 0; c < t->out; c++) {
      const float *row = t->w + (size_t)c * t->in;
      qat_qparams p;
      qat_err e = qat__net_row_qparams(row, t->in, n->w_bits, &p);
      if (e) return qat__fail(e, "layer %u row %u: %s", l, c, qat_errmsg());
      qat_fake_quant(row, t->in, &p, t->wq + (size_t)c * t->in, t->wmask + (size_t)c * t->in);
      t->w_scale[c] = p.scale;
    }
  }
  return QAT_OK;
}

bool qat_net_quantized(const qat_net *n) { return n && n->quantized; }

qat_err qat_net_calibrate(qat_net *n, const qat_dataset *d, size_t n_samples, int w_bits,
                          int a_bits) {
  if (!n || !d || !d->x) return qat__fail(QAT_EINVAL, "qat_net_calibrate: NULL argument");
  if (w_bits < 2 || w_bits > 8 || a_bits < 2 || a_bits > 8)
    return qat__fail(QAT_EINVAL, "bit widths w%d a%d outside 2..8", w_bits, a_bits);
  if (d->dim != n->dims[0])
    return qat__fail(QAT_EDIM, "calibration data has %u features, the net takes %u", d->dim,
                    n->dims[0]);
  size_t total = n_samples < d->n ? n_samples : d->n;
  if (total == 0) return qat__fail(QAT_EINVAL, "calibration on 0 samples");
  /* Plain min/max over the calibration rows, as PyTorch's default static
   * qconfig does; the float net's activations are observed. */
  for (uint32_t l = 0; l < n->n_layers; l++) qat_observer_init(&n->L[l].obs, 0.0f);
  qat_observer_init(&n->out_obs, 0.0f);
  const size_t chunk = 256;
  qat_err e = qat__net_reserve(n, chunk);
  if (e) return e;
  for (size_t lo = 0; lo < total; lo += chunk) {
    size_t m = total - lo < chunk ? total - lo : chunk;
    memcpy(n->act[0], d->x + lo * d->dim, m * d->dim * sizeof(float));
    if ((e = qat__net_fwd(n, m, false, true))) return e;
  }
  n->w_bits = w_bits;
  n->a_bits = a_bits;
  n->quantized = true;
  return QAT_OK;
}

