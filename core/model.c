/* model.c - the model: validation and construction from a spec, accessors,
 * per-thread contexts and the three inference paths (int8 static, int8
 * dynamic, fp32 baseline).
 *
 * A model is immutable after qat_model_create and owns copies of everything
 * it was given. Inference writes only into the caller's qat_ctx, whose
 * scratch is sized once at qat_ctx_create, so any number of threads may run
 * one model at once (one context each) and inference never allocates. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "layer.h"
#include "model.h"

/* ---- validation helpers --------------------------------------------- */

static const char *const reserved_keys[] = {
    "format", "format_version", "architecture", "activations",
    "weight_bits", "output_mode", "labels", "rounding",
};

const char *qat_rounding_name(qat_rounding r) {
  switch (r) {
    case QAT_ROUND_PYTORCH: return "pytorch";
    case QAT_ROUND_ORT: return "onnxruntime";
    case QAT_ROUND_ORT_FLOAT: return "onnxruntime-float";
  }
  return "?";
}

bool qat__meta_key_reserved(const char *key) {
  /* "sha256.<tensor>": the per-tensor checksums of format 2. */
  if (strncmp(key, "sha256.", 7) == 0) return true;
  for (size_t i = 0; i < sizeof reserved_keys / sizeof *reserved_keys; i++)
    if (strcmp(key, reserved_keys[i]) == 0) return true;
  return false;
}

bool qat__utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) { p++; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return false;
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80) return false; /* also stops at NUL */
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

/* An activation's qparams: uint8 affine, qmin 0, qmax 1..255, zp inside. */
qat_err qat__check_act_qparams(const qat_qparams *q, const char *what,
                              uint32_t idx) {
  if (!isfinite(q->scale) || !(q->scale > 0.0f))
    return qat__fail(QAT_ESCALE, "%s[%u]: scale %g is not finite and positive",
                    what, idx, (double)q->scale);
  if (q->qmin != 0 || q->qmax < 1 || q->qmax > 255)
    return qat__fail(QAT_EZEROPOINT,
                    "%s[%u]: activation range [%d, %d] is not uint8 with qmin 0",
                    what, idx, q->qmin, q->qmax);
  if (q->zero_point < q->qmin || q->zero_point > q->qmax)
    return qat__fail(QAT_EZEROPOINT, "%s[%u]: zero point %d outside [%d, %d]",
                    what, idx, q->zero_point, q->qmin, q->qmax);
  return QAT_OK;
}

static bool all_finite(const float *x, size_t n, size_t *bad) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) {
      *bad = i;
      return false;
    }
  return true;
}

/* The last layer's out qparams matter only for QAT_OUT_REQUANT; a spec for
 * dequant_acc may leave them zeroed, and then gets this neutral stand-in so
 * the file still holds valid numbers. */
static const qat_qparams unset_out = {1.0f, 0, 0, 255};

static bool qparams_zeroed(const qat_qparams *q) {
  return q->scale == 0.0f && q->zero_point == 0 && q->qmin == 0 && q->qmax == 0;
}

static qat_qparams layer_out_qparams(const qat_model_spec *s, uint32_t i) {
  const qat_qparams *q = &s->layers[i].out;
  if (i + 1 == s->n_layers && s->out_mode == QAT_OUT_DEQUANT_ACC && qparams_zeroed(q))
    return unset_out;
  return *q;
}

/* Everything qat_model_create refuses, checked before anything is
 * allocated. */
static int cmp_index_by_key(const void *a, const void *b, void *keys);

/* Duplicate keys, found by sorting: n log n, so a file or spec with many
 * keys costs milliseconds (a pairwise check took minutes at 200,000). */
static qat_err check_meta_unique(const qat_model_spec *s) {
  if (s->n_meta < 2) return QAT_OK;
  uint32_t *idx = qat__calloc(s->n_meta, sizeof *idx);
  if (!idx) return qat__fail(QAT_ENOMEM, "out of memory checking metadata keys");
  for (uint32_t i = 0; i < s->n_meta; i++) idx[i] = i;
  qsort_r(idx, s->n_meta, sizeof *idx, cmp_index_by_key, (void *)s->meta_keys);
  qat_err e = QAT_OK;
  for (uint32_t i = 1; i < s->n_meta && !e; i++)
    if (strcmp(s->meta_keys[idx[i - 1]], s->meta_keys[idx[i]]) == 0)
      e = qat__fail(QAT_EMETA, "metadata key '%.200s' given twice", s->meta_keys[idx[i]]);
  qat__free(idx);
  return e;
}

/* The spec's scalars: layers present, counts, modes, input qparams. */
static qat_err check_spec_scalars(const qat_model_spec *s) {
  if (!s->layers) return qat__fail(QAT_EINVAL, "spec has no layers array");
  if (s->n_layers < 1 || s->n_layers > QAT_MAX_LAYERS)
    return qat__fail(QAT_EINVAL, "n_layers %u outside 1..%d", s->n_layers,
                    QAT_MAX_LAYERS);
  if (s->out_mode != QAT_OUT_DEQUANT_ACC && s->out_mode != QAT_OUT_REQUANT)
    return qat__fail(QAT_EINVAL, "unknown output mode %d", (int)s->out_mode);
  if (s->rounding != QAT_ROUND_PYTORCH && s->rounding != QAT_ROUND_ORT &&
      s->rounding != QAT_ROUND_ORT_FLOAT)
    return qat__fail(QAT_EINVAL, "unknown rounding %d", (int)s->rounding);
  return qat__check_act_qparams(&s->input, "input", 0);
}

/* Layer i's shape and kind: dims, chain to layer i - 1, activation, bits,
 * required arrays, output qparams (into *out). */
static qat_err check_layer_kind(const qat_model_spec *s, uint32_t i, qat_qparams *out) {
  const qat_layer_spec *L = &s->layers[i];
  if (L->in_dim < 1 || L->in_dim > QAT_MAX_DIM || L->out_dim < 1 ||
      L->out_dim > QAT_MAX_DIM)
    return qat__fail(QAT_EDIM, "layer %u: dims %ux%u outside 1..%d", i,
                    L->out_dim, L->in_dim, QAT_MAX_DIM);
  if (i > 0 && L->in_dim != s->layers[i - 1].out_dim)
    return qat__fail(QAT_ECHAIN, "layer %u: in_dim %u != layer %u out_dim %u", i,
                    L->in_dim, i - 1, s->layers[i - 1].out_dim);
  if (L->act != QAT_ACT_NONE && L->act != QAT_ACT_RELU)
    return qat__fail(QAT_EINVAL, "layer %u: unknown activation %d", i, (int)L->act);
  if (L->w_bits < 2 || L->w_bits > 8)
    return qat__fail(QAT_EINVAL, "layer %u: w_bits %d outside 2..8", i, L->w_bits);
  if (!L->wq || !L->w_scale)
    return qat__fail(QAT_EINVAL, "layer %u: wq and w_scale are required", i);
  *out = layer_out_qparams(s, i);
  return qat__check_act_qparams(out, "layer output", i);
}

/* Layer i's channel c: scale, weights in range for the bit width, bias
 * representable, requantization multiplier finite. */
static qat_err check_channel(const qat_model_spec *s, uint32_t i, size_t c, qat_qparams in,
                             qat_qparams out) {
  const qat_layer_spec *L = &s->layers[i];
  const size_t K = L->in_dim;
  const int wmax = (1 << (L->w_bits - 1)) - 1;
  const int wmin = L->w_bits == 8 ? -128 : -wmax; /* imported qnnpack */
  float ws = L->w_scale[c];
  if (!isfinite(ws) || !(ws > 0.0f))
    return qat__fail(QAT_ESCALE, "layer %u: weight_scale[%zu] = %g is not "
                    "finite and positive", i, c, (double)ws);
  for (size_t k = 0; k < K; k++) {
    int w = L->wq[c * K + k];
    if (w < wmin || w > wmax)
      return qat__fail(QAT_ERANGE, "layer %u: weight_q[%zu][%zu] = %d outside "
                      "[%d, %d] for %d bits", i, c, k, w, wmin, wmax, L->w_bits);
  }
  float b = L->bias ? L->bias[c] : 0.0f;
  if (!isfinite(b))
    return qat__fail(QAT_ENOTFINITE, "layer %u: bias[%zu] is not finite", i, c);
  int32_t bq;
  if (!qat__layer_bias_q(b, ws, in.scale, &bq))
    return qat__fail(QAT_ERANGE, "layer %u: bias[%zu] = %g needs an int32 bias "
                    "beyond 2^30 (or weight_scale * input scale underflows)",
                    i, c, (double)b);
  float M = s->rounding == QAT_ROUND_PYTORCH
                ? qat__layer_multiplier(ws, in.scale, out.scale)
                : qat__layer_multiplier_ort(ws, in.scale, out.scale);
  float d = in.scale * ws;
  if (!isfinite(M) || !(d > 0.0f) || !isfinite(d))
    return qat__fail(QAT_ESCALE, "layer %u: channel %zu: requantization "
                    "multiplier not finite (scales too extreme)", i, c);
  return QAT_OK;
}

/* Every layer in order; `in` carries each layer's output qparams into the
 * next one's channel checks. */
static qat_err check_layers(const qat_model_spec *s) {
  qat_qparams in = s->input, out;
  qat_err e;
  for (uint32_t i = 0; i < s->n_layers; i++) {
    const qat_layer_spec *L = &s->layers[i];
    if ((e = check_layer_kind(s, i, &out))) return e;
    const size_t N = L->out_dim, K = L->in_dim;
    for (size_t c = 0; c < N; c++)
      if ((e = check_channel(s, i, c, in, out))) return e;
    size_t bad;
    if (L->w_fp32 && !all_finite(L->w_fp32, N * K, &bad))
      return qat__fail(QAT_ENOTFINITE, "layer %u: weight_fp32[%zu] is not finite", i, bad);
    if (L->b_fp32 && !all_finite(L->b_fp32, N, &bad))
      return qat__fail(QAT_ENOTFINITE, "layer %u: bias_fp32[%zu] is not finite", i, bad);
    in = out;
  }
  return QAT_OK;
}

static qat_err check_labels(const qat_model_spec *s) {
  uint32_t out_dim = s->layers[s->n_layers - 1].out_dim;
  if (s->n_labels != 0 && s->n_labels != out_dim)
    return qat__fail(QAT_ELABELS, "labels: %u given for %u outputs", s->n_labels, out_dim);
  if (s->n_labels && !s->labels) return qat__fail(QAT_EINVAL, "labels array is NULL");
  for (uint32_t i = 0; i < s->n_labels; i++) {
    if (!s->labels[i]) return qat__fail(QAT_EINVAL, "label %u is NULL", i);
    if (!qat__utf8_valid(s->labels[i]))
      return qat__fail(QAT_EMETA, "label %u is not valid UTF-8", i);
  }
  return QAT_OK;
}

static qat_err check_meta(const qat_model_spec *s) {
  if (s->n_meta && (!s->meta_keys || !s->meta_values))
    return qat__fail(QAT_EINVAL, "metadata arrays are NULL");
  for (uint32_t i = 0; i < s->n_meta; i++) {
    const char *k = s->meta_keys[i], *v = s->meta_values[i];
    if (!k || !v) return qat__fail(QAT_EINVAL, "metadata entry %u is NULL", i);
    if (!*k) return qat__fail(QAT_EMETA, "metadata entry %u has an empty key", i);
    if (qat__meta_key_reserved(k))
      return qat__fail(QAT_EMETA, "metadata key '%s' is reserved by the format", k);
    if (strcmp(k, "__metadata__") == 0)
      return qat__fail(QAT_EMETA, "metadata key '%s' is reserved", k);
    if (!qat__utf8_valid(k) || !qat__utf8_valid(v))
      return qat__fail(QAT_EMETA, "metadata key or value '%s' is not valid UTF-8", k);
  }
  return check_meta_unique(s);
}

/* Phases in the order a caller sees the first error: scalars, layers (kind,
 * channels, fp32 baseline), labels, metadata. */
static qat_err validate_spec(const qat_model_spec *s) {
  qat_err e;
  if ((e = check_spec_scalars(s))) return e;
  if ((e = check_layers(s))) return e;
  if ((e = check_labels(s))) return e;
  return check_meta(s);
}

/* ---- create / destroy ------------------------------------------------ */

static void layer_free(qat_mlayer *L) {
  qat__free(L->wq);
  qat__free(L->w_scale);
  qat__free(L->bias);
  qat__free(L->bias_q);
  qat__free_aligned(L->w_fp32);
  qat__free_aligned(L->wt_fp32);
  qat__free(L->b_fp32);
  qat__free_aligned(L->wpacked);
  qat__free(L->rowsum);
  qat__free(L->bias_adj);
  qat__free(L->mult);
  qat__free(L->deq);
}

void qat_model_destroy(qat_model *m) {
  if (!m) return;
  if (m->layers)
    for (uint32_t i = 0; i < m->n_layers; i++) layer_free(&m->layers[i]);
  qat__free(m->layers);
  for (uint32_t i = 0; m->labels && i < m->n_labels; i++) qat__free(m->labels[i]);
  qat__free(m->labels);
  for (uint32_t i = 0; m->meta_keys && i < m->n_meta; i++) qat__free(m->meta_keys[i]);
  for (uint32_t i = 0; m->meta_values && i < m->n_meta; i++) qat__free(m->meta_values[i]);
  qat__free(m->meta_keys);
  qat__free(m->meta_values);
  qat__free(m);
}

static qat_err layer_build(const qat_kernels *k, const qat_layer_spec *S,
                           qat_qparams in, qat_qparams out, qat_rounding rnd,
                           qat_mlayer *L) {
  const size_t N = S->out_dim, K = S->in_dim;
  L->in_dim = S->in_dim;
  L->out_dim = S->out_dim;
  L->act = S->act;
  L->w_bits = S->w_bits;
  L->in = in;
  L->out = out;
  L->wq = qat__malloc(N * K);
  L->w_scale = qat__calloc(N, sizeof(float));
  L->bias = qat__calloc(N, sizeof(float));
  L->bias_q = qat__calloc(N, sizeof(int32_t));
  L->w_fp32 = qat__malloc_aligned(N * K * sizeof(float));
  L->b_fp32 = qat__calloc(N, sizeof(float));
  L->wpacked = qat__malloc_aligned(k->packed_size(N, K));
  /* Only where the tier has its own single-row product (else NULL). */
  if (k->gemv_f32) L->wt_fp32 = qat__malloc_aligned(K * qat__gemv_f32_ld(N) * sizeof(float));
  L->rowsum = qat__calloc(N, sizeof(int32_t));
  L->bias_adj = qat__calloc(N, sizeof(int32_t));
  L->mult = qat__calloc(N, sizeof(float));
  L->deq = qat__calloc(N, sizeof(float));
  if (!L->wq || !L->w_scale || !L->bias || !L->bias_q || !L->w_fp32 || !L->b_fp32 ||
      !L->wpacked || (k->gemv_f32 && !L->wt_fp32) || !L->rowsum || !L->bias_adj || !L->mult || !L->deq)
    return qat__fail(QAT_ENOMEM, "out of memory building a %zux%zu layer", N, K);

  memcpy(L->wq, S->wq, N * K);
  memcpy(L->w_scale, S->w_scale, N * sizeof(float));
  if (S->bias) memcpy(L->bias, S->bias, N * sizeof(float));
  for (size_t c = 0; c < N; c++) {
    const int8_t *w = L->wq + c * K;
    int32_t rs = 0;
    for (size_t j = 0; j < K; j++) rs += w[j];
    L->rowsum[c] = rs;
    /* validate_spec checked that this succeeds. */
    (void)qat__layer_bias_q(L->bias[c], L->w_scale[c], in.scale, &L->bias_q[c]);
    L->bias_adj[c] = L->bias_q[c] - in.zero_point * rs;
    L->mult[c] = rnd == QAT_ROUND_PYTORCH
                     ? qat__layer_multiplier(L->w_scale[c], in.scale, out.scale)
                     : qat__layer_multiplier_ort(L->w_scale[c], in.scale, out.scale);
    L->deq[c] = in.scale * L->w_scale[c];
    for (size_t j = 0; j < K; j++)
      L->w_fp32[c * K + j] =
          S->w_fp32 ? S->w_fp32[c * K + j] : (float)w[j] * L->w_scale[c];
    L->b_fp32[c] = S->b_fp32 ? S->b_fp32[c] : L->bias[c];
  }
  k->pack(L->wq, N, K, L->wpacked);
  if (L->wt_fp32) qat__gemv_f32_transpose(L->w_fp32, N, K, L->wt_fp32);
  return QAT_OK;
}

static int cmp_index_by_key(const void *a, const void *b, void *keys) {
  const char *const *k = keys;
  return strcmp(k[*(const uint32_t *)a], k[*(const uint32_t *)b]);
}

/* Sorted copies of the free-form metadata, so meta_at and the file are
 * deterministic whatever order the spec (or the JSON parser) gave. */
static qat_err copy_meta(const qat_model_spec *s, qat_model *m) {
  if (!s->n_meta) return QAT_OK;
  uint32_t *idx = qat__calloc(s->n_meta, sizeof *idx);
  m->meta_keys = qat__calloc(s->n_meta, sizeof(char *));
  m->meta_values = qat__calloc(s->n_meta, sizeof(char *));
  if (!idx || !m->meta_keys || !m->meta_values) {
    qat__free(idx);
    return qat__fail(QAT_ENOMEM, "out of memory copying metadata");
  }
  m->n_meta = s->n_meta;
  for (uint32_t i = 0; i < s->n_meta; i++) idx[i] = i;
  qsort_r(idx, s->n_meta, sizeof *idx, cmp_index_by_key, (void *)s->meta_keys);
  for (uint32_t i = 0; i < s->n_meta; i++) {
    m->meta_keys[i] = qat__strdup(s->meta_keys[idx[i]]);
    m->meta_values[i] = qat__strdup(s->meta_values[idx[i]]);
    if (!m->meta_keys[i] || !m->meta_values[i]) {
      qat__free(idx);
      return qat__fail(QAT_ENOMEM, "out of memory copying metadata");
    }
  }
  qat__free(idx);
  return QAT_OK;
}

qat_err qat_model_create(const qat_model_spec *spec, qat_model **out) {
  if (!spec || !out) return qat__fail(QAT_EINVAL, "qat_model_create: NULL argument");
  qat_err e = validate_spec(spec);
  if (e) return e;
  /* Once per process: later models must not touch OpenBLAS's settings
   * while other threads are inside it. */
  static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
  pthread_once(&blas_once, qat_blas_single_thread);

  /* An unusable QAT_KERNEL is refused here too, not only at start-up. */
  if ((e = qat_kernel_check())) return e;
  qat_model *m = qat__calloc(1, sizeof *m);
  if (!m) return qat__fail(QAT_ENOMEM, "out of memory creating a model");
  m->k = qat__kernels_get();
  m->input = spec->input;
  m->out_mode = spec->out_mode;
  m->rounding = spec->rounding;
  m->layers = qat__calloc(spec->n_layers, sizeof *m->layers);
  if (!m->layers) {
    e = qat__fail(QAT_ENOMEM, "out of memory creating a model");
    goto fail;
  }
  m->n_layers = spec->n_layers;
  qat_qparams in = spec->input;
  for (uint32_t i = 0; i < spec->n_layers; i++) {
    qat_qparams o = layer_out_qparams(spec, i);
    if ((e = layer_build(m->k, &spec->layers[i], in, o, spec->rounding,
                         &m->layers[i]))) goto fail;
    in = o;
    if (spec->layers[i].in_dim > m->max_dim) m->max_dim = spec->layers[i].in_dim;
    if (spec->layers[i].out_dim > m->max_dim) m->max_dim = spec->layers[i].out_dim;
  }
  if (spec->n_labels) {
    m->labels = qat__calloc(spec->n_labels, sizeof(char *));
    if (!m->labels) {
      e = qat__fail(QAT_ENOMEM, "out of memory copying labels");
      goto fail;
    }
    m->n_labels = spec->n_labels;
    for (uint32_t i = 0; i < spec->n_labels; i++)
      if (!(m->labels[i] = qat__strdup(spec->labels[i]))) {
        e = qat__fail(QAT_ENOMEM, "out of memory copying labels");
        goto fail;
      }
  }
  if ((e = copy_meta(spec, m))) goto fail;
  *out = m;
  return QAT_OK;
fail:
  qat_model_destroy(m);
  return e;
}

/* ---- accessors ------------------------------------------------------- */

/* NULL-tolerant like the other accessors: 0 / defaults for no model. */
uint32_t qat_model_in_dim(const qat_model *m) { return m ? m->layers[0].in_dim : 0; }
uint32_t qat_model_out_dim(const qat_model *m) {
  return m ? m->layers[m->n_layers - 1].out_dim : 0;
}
uint32_t qat_model_n_layers(const qat_model *m) { return m ? m->n_layers : 0; }
qat_out_mode qat_model_out_mode(const qat_model *m) {
  return m ? m->out_mode : QAT_OUT_DEQUANT_ACC;
}
qat_rounding qat_model_rounding(const qat_model *m) {
  return m ? m->rounding : QAT_ROUND_PYTORCH;
}
qat_qparams qat_model_input_qparams(const qat_model *m) {
  return m ? m->input : (qat_qparams){0};
}

qat_err qat_model_layer(const qat_model *m, uint32_t i, qat_layer_info *out) {
  if (!m || !out) return qat__fail(QAT_EINVAL, "qat_model_layer: NULL argument");
  if (i >= m->n_layers)
    return qat__fail(QAT_EINVAL, "layer %u of a %u-layer model", i, m->n_layers);
  const qat_mlayer *L = &m->layers[i];
  *out = (qat_layer_info){
      .in_dim = L->in_dim, .out_dim = L->out_dim, .act = L->act,
      .w_bits = L->w_bits, .in = L->in, .out = L->out, .wq = L->wq,
      .w_scale = L->w_scale, .bias = L->bias, .bias_q = L->bias_q,
      .w_fp32 = L->w_fp32, .b_fp32 = L->b_fp32,
  };
  return QAT_OK;
}

const char *qat_model_label(const qat_model *m, uint32_t i) {
  return m && i < m->n_labels ? m->labels[i] : NULL;
}
uint32_t qat_model_n_labels(const qat_model *m) { return m ? m->n_labels : 0; }

const char *qat_model_meta(const qat_model *m, const char *key) {
  if (!m || !key) return NULL;
  for (uint32_t i = 0; i < m->n_meta; i++)
    if (strcmp(m->meta_keys[i], key) == 0) return m->meta_values[i];
  return NULL;
}
bool qat_model_checksummed(const qat_model *m) { return m && m->checksummed; }
uint32_t qat_model_n_meta(const qat_model *m) { return m ? m->n_meta : 0; }
void qat_model_meta_at(const qat_model *m, uint32_t i, const char **key,
                       const char **value) {
  bool ok = m && i < m->n_meta;
  if (key) *key = ok ? m->meta_keys[i] : NULL;
  if (value) *value = ok ? m->meta_values[i] : NULL;
}

/* ---- contexts -------------------------------------------------------- */

/* Slack after each uint8 buffer: a SIMD kernel may read a little past a
 * row's end; the bytes are zeroed and never used. */
#define U8_SLACK 64

struct qat_ctx {
  const qat_model *m;
  size_t max_rows;
  uint8_t *qa, *qb;  /* uint8 activations, ping-pong, [max_rows][max_dim] */
  int32_t *acc;      /* raw int32 products, [max_rows][max_dim] */
  float *fa, *fb;    /* float activations, ping-pong (dynamic, fp32) */
  float *scale;      /* [max_dim] per-call dequant scales (dynamic) */
};

void qat_ctx_destroy(qat_ctx *c) {
  if (!c) return;
  qat__free_aligned(c->qa);
  qat__free_aligned(c->qb);
  qat__free_aligned(c->acc);
  qat__free_aligned(c->fa);
  qat__free_aligned(c->fb);
  qat__free(c->scale);
  qat__free(c);
}

qat_err qat_ctx_create(const qat_model *m, size_t max_rows, qat_ctx **out) {
  if (!m || !out) return qat__fail(QAT_EINVAL, "qat_ctx_create: NULL argument");
  if (max_rows < 1) return qat__fail(QAT_EINVAL, "qat_ctx_create: max_rows is 0");
  const size_t D = m->max_dim;
  if (max_rows > (SIZE_MAX - U8_SLACK) / (D * sizeof(float)))
    return qat__fail(QAT_ERANGE, "qat_ctx_create: %zu rows of %zu is too large",
                    max_rows, D);
  qat_ctx *c = qat__calloc(1, sizeof *c);
  if (!c) return qat__fail(QAT_ENOMEM, "out of memory creating a context");
  c->m = m;
  c->max_rows = max_rows;
  const size_t n = max_rows * D;
  c->qa = qat__malloc_aligned(n + U8_SLACK);
  c->qb = qat__malloc_aligned(n + U8_SLACK);
  c->acc = qat__malloc_aligned(n * sizeof(int32_t));
  c->fa = qat__malloc_aligned(n * sizeof(float));
  c->fb = qat__malloc_aligned(n * sizeof(float));
  c->scale = qat__calloc(D, sizeof(float));
  if (!c->qa || !c->qb || !c->acc || !c->fa || !c->fb || !c->scale) {
    qat_ctx_destroy(c);
    return qat__fail(QAT_ENOMEM, "out of memory creating a context for %zu rows",
                    max_rows);
  }
  memset(c->qa, 0, n + U8_SLACK);
  memset(c->qb, 0, n + U8_SLACK);
  *out = c;
  return QAT_OK;
}

/* ---- inference ------------------------------------------------------- */

static qat_err check_call(const qat_model *m, const qat_ctx *c, const float *x,
                          size_t rows, const float *y, const char *fn) {
  if (!m || !c) return qat__fail(QAT_EINVAL, "%s: NULL model or context", fn);
  if (c->m != m)
    return qat__fail(QAT_EINVAL, "%s: the context was made for another model", fn);
  if (rows && (!x || !y)) return qat__fail(QAT_EINVAL, "%s: NULL x or y", fn);
  return QAT_OK;
}

/* Runs a chunk function over the batch in blocks of the context's rows: the
 * context's scratch was sized for max_rows, so nothing is allocated here. */
typedef qat_err (*chunk_fn)(const qat_model *m, qat_ctx *c, const float *x,
                            size_t rows, float *y);
static qat_err run_chunked(const qat_model *m, qat_ctx *c, const float *x,
                           size_t rows, float *y, const char *what, chunk_fn f) {
  qat_err e = check_call(m, c, x, rows, y, what);
  if (e) return e;
  const size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m);
  for (size_t r = 0; r < rows; r += c->max_rows) {
    size_t n = rows - r < c->max_rows ? rows - r : c->max_rows;
    if ((e = f(m, c, x + r * in, n, y + r * out))) return e;
  }
  return QAT_OK;
}

static qat_err int8_chunk(const qat_model *m, qat_ctx *c, const float *x,
                          size_t rows, float *y) {
  const qat_kernels *k = m->k;
  uint8_t *cur = c->qa, *nxt = c->qb;
  if (m->rounding == QAT_ROUND_PYTORCH)
    k->quantize_u8(x, rows * m->layers[0].in_dim, &m->input, cur);
  else
    qat__layer_quantize_div(x, rows * m->layers[0].in_dim, &m->input, cur);
  for (uint32_t i = 0; i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    const bool relu = L->act == QAT_ACT_RELU;
    k->gemm_u8s8(cur, rows, L->in_dim, L->in_dim, L->wpacked, L->out_dim, c->acc);
    const bool last = i + 1 == m->n_layers;
    if (last && m->out_mode == QAT_OUT_DEQUANT_ACC) {
      qat__layer_dequant_acc(c->acc, rows, L->out_dim, L->bias_adj, L->deq, relu, y);
      return QAT_OK;
    }
    if (m->rounding == QAT_ROUND_ORT_FLOAT)
      qat__layer_requant_div(c->acc, rows, L->out_dim, L->bias_adj, L->deq, L->out.scale,
                            L->out.zero_point, relu ? L->out.zero_point : 0,
                            L->out.qmax, nxt, L->out_dim);
    else
      k->requant_u8(c->acc, rows, L->out_dim, L->bias_adj, L->mult, L->out.zero_point,
                    relu ? L->out.zero_point : 0, L->out.qmax, nxt, L->out_dim);
    if (last) {
      qat__layer_dequant_u8(nxt, rows * L->out_dim, L->out.zero_point, L->out.scale, y);
      return QAT_OK;
    }
    uint8_t *t = cur;
    cur = nxt;
    nxt = t;
  }
  return QAT_OK;
}

qat_err qat_infer_int8(const qat_model *m, qat_ctx *c, const float *x,
                       size_t rows, float *y) {
  return run_chunked(m, c, x, rows, y, "qat_infer_int8", int8_chunk);
}

static qat_err dynamic_chunk(const qat_model *m, qat_ctx *c, const float *x,
                             size_t rows, float *y) {
  const qat_kernels *k = m->k;
  const float *in = x;
  float *bufs[2] = {c->fa, c->fb};
  for (uint32_t i = 0; i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    const size_t n_in = rows * L->in_dim;
    float lo, hi;
    if (!qat__layer_minmax(in, n_in, &lo, &hi))
      return qat__fail(QAT_ENOTFINITE, "qat_infer_dynamic: layer %u input is not "
                      "finite", i);
    qat_qparams p;
    qat_err e = qat_qparams_from_range(lo, hi, 8, false, &p);
    if (e) return e;
    k->quantize_u8(in, n_in, &p, c->qa);
    k->gemm_u8s8(c->qa, rows, L->in_dim, L->in_dim, L->wpacked, L->out_dim, c->acc);
    for (size_t j = 0; j < L->out_dim; j++) c->scale[j] = p.scale * L->w_scale[j];
    float *o = i + 1 == m->n_layers ? y : bufs[i & 1];
    qat__layer_dynamic_out(c->acc, rows, L->out_dim, L->rowsum, p.zero_point,
                          c->scale, L->bias, L->act == QAT_ACT_RELU, o);
    in = o;
  }
  /* Each layer's input is checked above; the last layer's output is not an
   * input: an input range near FLT_MAX can overflow it to infinity. */
  float lo, hi;
  const uint32_t out_dim = m->layers[m->n_layers - 1].out_dim;
  if (!qat__layer_minmax(y, rows * out_dim, &lo, &hi))
    return qat__fail(QAT_ENOTFINITE, "qat_infer_dynamic: the output overflows float "
                    "(input range too wide)");
  return QAT_OK;
}

qat_err qat_infer_dynamic(const qat_model *m, qat_ctx *c, const float *x,
                          size_t rows, float *y) {
  return run_chunked(m, c, x, rows, y, "qat_infer_dynamic", dynamic_chunk);
}

static qat_err fp32_chunk(const qat_model *m, qat_ctx *c, const float *x,
                          size_t rows, float *y) {
  const float *in = x;
  float *bufs[2] = {c->fa, c->fb};
  for (uint32_t i = 0; i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    float *o = i + 1 == m->n_layers ? y : bufs[i & 1];
    qat__layer_fp32(m->k, in, rows, L->in_dim, L->w_fp32, L->wt_fp32, L->b_fp32,
                   L->out_dim, L->act == QAT_ACT_RELU, o);
    in = o;
  }
  return QAT_OK;
}

qat_err qat_infer_fp32(const qat_model *m, qat_ctx *c, const float *x,
                       size_t rows, float *y) {
  return run_chunked(m, c, x, rows, y, "qat_infer_fp32", fp32_chunk);
}
