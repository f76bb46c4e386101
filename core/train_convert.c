/* train_convert.c - between a training net and a qat_model: conversion of
 * a trained (or calibrated) net into the int8 model, and a net initialised
 * from a model's fp32 baseline for fine-tuning.
 *
 * Conversion reuses exactly the parameters of the fake-quant forward: the
 * same per-row qparams (from the same max |w|, through the same
 * qat_qparams_from_range and qat_quantize), the same observers for the
 * activations, and the float bias from which core derives bq with the very
 * expression qat__net_fwd uses for its fake-quantized bias. */
#include <math.h>
#include <string.h>

#include "qat_train.h"
#include "train_internal.h"

qat_err qat_net_from_model(const qat_model *m, qat_net **out) {
  if (!m || !out) return qat__fail(QAT_EINVAL, "qat_net_from_model: NULL argument");
  uint32_t nl = qat_model_n_layers(m);
  if (nl < 1 || nl > QAT_MAX_LAYERS) return qat__fail(QAT_EINVAL, "model of %u layers", nl);
  uint32_t dims[QAT_MAX_LAYERS + 1];
  for (uint32_t l = 0; l < nl; l++) {
    qat_layer_info li;
    qat_err e = qat_model_layer(m, l, &li);
    if (e) return e;
    if (li.act != (l + 1 < nl ? QAT_ACT_RELU : QAT_ACT_NONE))
      return qat__fail(QAT_EUNSUPPORTED, "layer %u: only ReLU between layers is trainable", l);
    dims[l] = li.in_dim;
    dims[l + 1] = li.out_dim;
  }
  qat_net *n;
  qat_err e = qat__net_alloc(dims, nl, &n);
  if (e) return e;
  for (uint32_t l = 0; l < nl; l++) {
    qat_layer_info li;
    e = qat_model_layer(m, l, &li);
    if (e) {
      qat_net_destroy(n);
      return e;
    }
    memcpy(n->L[l].w, li.w_fp32, (size_t)li.in_dim * li.out_dim * sizeof(float));
    memcpy(n->L[l].b, li.b_fp32, li.out_dim * sizeof(float));
  }
  *out = n;
  return QAT_OK;
}


qat_err qat_net_to_model(const qat_net *n, uint32_t n_labels, const char *const *labels,
                         uint32_t n_meta, const char *const *meta_keys,
                         const char *const *meta_values, qat_model **out) {
  if (!n || !out) return qat__fail(QAT_EINVAL, "qat_net_to_model: NULL argument");
  if (!n->quantized)
    return qat__fail(QAT_EINVAL, "net has no activation ranges: train with QAT or calibrate");
  const uint32_t L = n->n_layers;
  qat_layer_spec ls[QAT_MAX_LAYERS];
  int8_t *wq[QAT_MAX_LAYERS] = {0};
  float *ws[QAT_MAX_LAYERS] = {0};
  qat_qparams inq[QAT_MAX_LAYERS + 1];
  qat_err e = QAT_OK;
  for (uint32_t l = 0; l <= L && !e; l++) {
    const qat_observer *o = l < L ? &n->L[l].obs : &n->out_obs;
    e = qat_observer_qparams(o, n->a_bits, false, &inq[l]);
  }
  for (uint32_t l = 0; l < L && !e; l++) {
    const qat_tlayer *t = &n->L[l];
    wq[l] = qat__malloc((size_t)t->in * t->out);
    ws[l] = qat__malloc(t->out * sizeof(float));
    if (!wq[l] || !ws[l]) {
      e = qat__fail(QAT_ENOMEM, "converted layer %u", l);
      break;
    }
    for (uint32_t c = 0; c < t->out && !e; c++) {
      const float *row = t->w + (size_t)c * t->in;
      qat_qparams p;
      if ((e = qat__net_row_qparams(row, t->in, n->w_bits, &p))) break;
      ws[l][c] = p.scale;
      for (uint32_t k = 0; k < t->in; k++)
        wq[l][(size_t)c * t->in + k] = (int8_t)qat_quantize(row[k], &p);
    }
    ls[l] = (qat_layer_spec){
        .in_dim = t->in, .out_dim = t->out,
        .act = l + 1 < L ? QAT_ACT_RELU : QAT_ACT_NONE,
        .wq = wq[l], .w_scale = ws[l], .bias = t->b,
        .out = inq[l + 1], /* the next layer's input observer (logits' for the last) */
        .w_fp32 = t->w, .b_fp32 = t->b, .w_bits = n->w_bits};
  }
  if (!e) {
    qat_model_spec spec = {.n_layers = L, .layers = ls, .input = inq[0],
                           .out_mode = QAT_OUT_DEQUANT_ACC, .n_labels = n_labels,
                           .labels = labels, .n_meta = n_meta, .meta_keys = meta_keys,
                           .meta_values = meta_values};
    e = qat_model_create(&spec, out);
  }
  for (uint32_t l = 0; l < L; l++) {
    qat__free(wq[l]);
    qat__free(ws[l]);
  }
  return e;
}
