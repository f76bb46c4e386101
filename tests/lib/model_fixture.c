/* model_fixture.c - see model_fixture.h. */
#include "model_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t fixture_next(uint32_t *s) {
  uint32_t x = *s ? *s : 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

float fixture_uniform(uint32_t *s) { return (float)(fixture_next(s) >> 8) / 16777216.0f; }

void fixture_fill(uint32_t *s, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fixture_uniform(s);
}

void fixture_destroy(qat_fixture *f) {
  if (!f) return;
  for (uint32_t i = 0; i < QAT_MAX_LAYERS; i++) {
    free(f->wq[i]);
    free(f->w_scale[i]);
    free(f->bias[i]);
    free(f->w_fp32[i]);
    free(f->b_fp32[i]);
  }
  if (f->labels)
    for (uint32_t i = 0; i < f->spec.n_labels; i++) free(f->labels[i]);
  free(f->labels);
  free(f);
}

qat_fixture *fixture_create(const uint32_t *dims, uint32_t n_layers, uint32_t seed) {
  return fixture_create_opts(dims, n_layers, seed, NULL);
}

qat_err fixture_save(const qat_fixture *f, const char *path) {
  qat_model *m;
  qat_err e = qat_model_create(&f->spec, &m);
  if (e) return e;
  e = qat_model_save(m, path);
  qat_model_destroy(m);
  return e;
}

qat_fixture *fixture_create_opts(const uint32_t *dims, uint32_t n_layers, uint32_t seed,
                                 const fixture_opts *o) {
  static const fixture_opts defaults = {"c", 0, NULL, NULL};
  if (!o) o = &defaults;
  if (o->n_meta > 4) return NULL;
  if (n_layers < 1 || n_layers > QAT_MAX_LAYERS) return NULL;
  qat_fixture *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  uint32_t st = seed * 2654435761u + 1;
  for (uint32_t i = 0; i < n_layers; i++) {
    size_t N = dims[i + 1], K = dims[i];
    f->wq[i] = malloc(N * K);
    f->w_scale[i] = malloc(N * sizeof(float));
    f->bias[i] = malloc(N * sizeof(float));
    f->w_fp32[i] = malloc(N * K * sizeof(float));
    f->b_fp32[i] = malloc(N * sizeof(float));
    if (!f->wq[i] || !f->w_scale[i] || !f->bias[i] || !f->w_fp32[i] || !f->b_fp32[i])
      goto fail;
    float a = 1.0f / sqrtf((float)K);
    fixture_fill(&st, f->w_fp32[i], N * K, -2.0f * a, 2.0f * a);
    fixture_fill(&st, f->b_fp32[i], N, -0.2f, 0.2f);
    for (size_t c = 0; c < N; c++) {
      float lo = 0, hi = 0;
      for (size_t k = 0; k < K; k++) {
        lo = fminf(lo, f->w_fp32[i][c * K + k]);
        hi = fmaxf(hi, f->w_fp32[i][c * K + k]);
      }
      qat_qparams wp;
      if (qat_qparams_from_range(lo, hi, 8, true, &wp) != QAT_OK) goto fail;
      f->w_scale[i][c] = wp.scale;
      qat_quantize_s8(f->w_fp32[i] + c * K, K, &wp, f->wq[i] + c * K);
      f->bias[i][c] = f->b_fp32[i][c];
    }
    qat_layer_spec *L = &f->layers[i];
    L->in_dim = (uint32_t)K;
    L->out_dim = (uint32_t)N;
    L->act = i + 1 < n_layers ? QAT_ACT_RELU : QAT_ACT_NONE;
    L->wq = f->wq[i];
    L->w_scale = f->w_scale[i];
    L->bias = f->bias[i];
    L->w_fp32 = f->w_fp32[i];
    L->b_fp32 = f->b_fp32[i];
    L->w_bits = 8;
  }
  /* Calibrate activation ranges with fp32 math on 64 random inputs. */
  if (qat_qparams_from_range(0.0f, 1.0f, 8, false, &f->spec.input) != QAT_OK) goto fail;
  enum { CAL = 64 };
  for (uint32_t i = 0; i < n_layers; i++) {
    float lo = 0, hi = 0;
    uint32_t cs = seed + 7;
    float *x = malloc(dims[0] * sizeof(float));
    float *a = NULL, *b = NULL;
    size_t wmax = 0;
    for (uint32_t j = 0; j <= n_layers; j++) wmax = dims[j] > wmax ? dims[j] : wmax;
    a = malloc(wmax * sizeof(float));
    b = malloc(wmax * sizeof(float));
    if (!x || !a || !b) {
      free(x), free(a), free(b);
      goto fail;
    }
    for (int r = 0; r < CAL; r++) {
      fixture_fill(&cs, x, dims[0], 0.0f, 1.0f);
      memcpy(a, x, dims[0] * sizeof(float));
      for (uint32_t l = 0; l <= i; l++) {
        size_t N = dims[l + 1], K = dims[l];
        for (size_t c = 0; c < N; c++) {
          float s = f->b_fp32[l][c];
          for (size_t k = 0; k < K; k++) s += f->w_fp32[l][c * K + k] * a[k];
          b[c] = f->layers[l].act == QAT_ACT_RELU && s < 0 ? 0 : s;
        }
        memcpy(a, b, N * sizeof(float));
      }
      for (size_t c = 0; c < dims[i + 1]; c++) {
        lo = fminf(lo, a[c]);
        hi = fmaxf(hi, a[c]);
      }
    }
    free(x), free(a), free(b);
    if (qat_qparams_from_range(lo, hi, 8, false, &f->layers[i].out) != QAT_OK) goto fail;
  }
  uint32_t nl = dims[n_layers];
  if (o->label_prefix) {
    size_t room = strlen(o->label_prefix) + 12;
    f->labels = calloc(nl, sizeof(char *));
    if (!f->labels) goto fail;
    for (uint32_t i = 0; i < nl; i++) {
      f->labels[i] = malloc(room);
      if (!f->labels[i]) goto fail;
      snprintf(f->labels[i], room, "%s%u", o->label_prefix, i);
      f->spec.n_labels = i + 1;
    }
  }
  snprintf(f->seed_str, sizeof f->seed_str, "%u", seed);
  f->meta_keys[0] = "trained_with";
  f->meta_values[0] = "fixture";
  f->meta_keys[1] = "seed";
  f->meta_values[1] = f->seed_str;
  f->spec.n_meta = 2;
  for (uint32_t i = 0; i < o->n_meta; i++) {
    f->meta_keys[i] = o->meta_keys[i];
    f->meta_values[i] = o->meta_values[i];
  }
  if (o->n_meta) f->spec.n_meta = o->n_meta;
  f->spec.n_layers = n_layers;
  f->spec.layers = f->layers;
  f->spec.out_mode = QAT_OUT_DEQUANT_ACC;
  f->spec.labels = (const char *const *)f->labels;
  f->spec.meta_keys = f->meta_keys;
  f->spec.meta_values = f->meta_values;
  return f;
fail:
  fixture_destroy(f);
  return NULL;
}
