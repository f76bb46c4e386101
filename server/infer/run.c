/* run.c - the infer step: model lookup, int8 + fp32 baseline, drift. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/scratch.h"
#include "infer/infer.h"

void qs_err_set(qs_err *e, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->status = status;
}

size_t qs_argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

bool qs_infer_model(const char *name, const char *how_to_name, qs_model **out, qs_err *err) {
  const char *dflt = qs_g.cfg.default_model;
  if ((!name || !*name) && dflt && *dflt) {
    qs_model *m = qs_registry_get(dflt);
    if (!m) {
      qs_err_set(err, 503, "the default model '%s' (--default-model) is not loaded: add %s.safetensors to the models directory, or name a model (%s)",
                 dflt, dflt, how_to_name);
      return false;
    }
    *out = m;
    return true;
  }
  if (!name || !*name) {
    size_t count;
    qs_model *m = qs_registry_get_only(&count);
    if (!m) {
      if (count == 0)
        qs_err_set(err, 503, "no models loaded");
      else
        qs_err_set(err, 400, "name the model (%s): %zu models are loaded (GET /models lists them; --default-model NAME sets one for requests that name none)",
                   how_to_name, count);
      return false;
    }
    *out = m;
    return true;
  }
  if (!qs_name_valid(name)) {
    qs_err_set(err, 400, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
    return false;
  }
  qs_model *m = qs_registry_get(name);
  if (!m) {
    qs_err_set(err, 404, "model '%s' not found", name);
    return false;
  }
  *out = m;
  return true;
}

qat_err qs_compute(qs_model *m, const float *x, size_t rows, bool baseline, bool dynamic,
                   float *y8, float *y32, uint64_t *ns8, uint64_t *ns32) {
  const qat_model *qm = m->model;
  qat_ctx *ctx = qs_model_ctx_get(m);
  if (!ctx) return QAT_ENOMEM;
  uint64_t t0 = qs_now_ns();
  qat_err e = dynamic ? qat_infer_dynamic(qm, ctx, x, rows, y8) : qat_infer_int8(qm, ctx, x, rows, y8);
  uint64_t t1 = qs_now_ns();
  if (e == QAT_OK && baseline) e = qat_infer_fp32(qm, ctx, x, rows, y32);
  uint64_t t2 = qs_now_ns();
  qs_model_ctx_put(m, ctx);
  *ns8 = t1 - t0;
  *ns32 = baseline ? t2 - t1 : 0;
  return e;
}

void qs_infer_error(qs_err *err, qat_err e, const char *msg) {
  if (e == QAT_ENOMEM)
    qs_err_set(err, 503, "out of memory");
  else if (e == QAT_ENOTFINITE || e == QAT_ERANGE)
    qs_err_set(err, 422, "inference refused the input: %s", msg);
  else
    qs_err_set(err, 500, "inference failed: %s", msg);
}

/* Each thread's output buffers, reused request after request: sized by the
 * largest answer so far (at most --max-batch rows of the widest model). */
typedef struct out_ctx {
  qs_scratch y8, y32;
} out_ctx;

static void out_ctx_free(void *p) {
  out_ctx *c = p;
  qs_scratch_free(&c->y8);
  qs_scratch_free(&c->y32);
  free(c);
}

static qs_tls out_tls = {.free_fn = out_ctx_free};

void qs_infer_thread_drop(void) { qs_tls_drop(&out_tls); }

void qs_infer_res_done(qs_infer_res *res) {
  res->buf8 = res->buf32 = NULL;
  res->y8 = res->y32 = NULL;
  qs_model_release(res->m);
  res->m = NULL;
}

/* Largest |int8 - fp32| and argmax agreement over the rows. */
static void drift(qs_infer_res *res) {
  size_t out = res->out;
  float md = 0;
  size_t agree = 0;
  for (size_t i = 0; i < res->rows; i++) {
    const float *a = res->y8 + i * out, *b = res->y32 + i * out;
    for (size_t j = 0; j < out; j++) {
      float d = fabsf(a[j] - b[j]);
      if (d > md) md = d;
    }
    agree += qs_argmax(a, out) == qs_argmax(b, out);
  }
  res->max_abs_diff = md;
  res->argmax_agree = agree;
}

bool qs_infer_run(qs_model *m, const qs_infer_req *req, qs_infer_res *res, qs_err *err) {
  const qat_model *qm = m->model;
  size_t out = qat_model_out_dim(qm);
  *res = (qs_infer_res){.m = NULL, .rows = req->rows, .out = out, .baseline = req->baseline,
                        .dynamic = req->dynamic};
  if (req->cols != qat_model_in_dim(qm)) {
    qs_err_set(err, 422, "wrong input width: every row needs %u numbers, got %zu", qat_model_in_dim(qm),
               req->cols);
    return false;
  }
  out_ctx *oc = qs_tls_get(&out_tls, sizeof *oc);
  size_t bytes = req->rows * out * sizeof(float);
  res->buf8 = oc ? qs_scratch_get(&oc->y8, bytes) : NULL;
  res->buf32 = oc && req->baseline ? qs_scratch_get(&oc->y32, bytes) : NULL;
  if (!res->buf8 || (req->baseline && !res->buf32)) {
    qs_infer_res_done(res);
    qs_err_set(err, 503, "out of memory");
    return false;
  }
  res->y8 = res->buf8;
  res->y32 = res->buf32;
  qat_err e = qs_compute(m, req->x, req->rows, req->baseline, req->dynamic, res->buf8, res->buf32,
                         &res->ns_int8, &res->ns_fp32);
  if (e != QAT_OK) {
    qs_infer_error(err, e, qat_errmsg());
    qs_infer_res_done(res);
    return false;
  }
  qs_metrics_observe(m->metrics_slot, QS_LAT_INT8, res->ns_int8);
  if (req->baseline) {
    qs_metrics_observe(m->metrics_slot, QS_LAT_FP32, res->ns_fp32);
    drift(res);
    qs_metrics_drift(m->metrics_slot, res->rows, res->rows - res->argmax_agree, res->max_abs_diff);
  }
  res->m = m;
  return true;
}

void qs_infer_summary(const qs_infer_res *res, uint64_t t0_ns, qs_summary *s) {
  double us8 = (double)res->ns_int8 * 1e-3, us32 = (double)res->ns_fp32 * 1e-3;
  *s = (qs_summary){.baseline = res->baseline, .int8_us = us8};
  if (res->baseline) {
    s->fp32_us = us32;
    s->speedup = us8 > 0 ? us32 / us8 : 0.0;
    s->max_abs_diff = res->max_abs_diff;
    s->argmax_agreement = (double)res->argmax_agree / (double)res->rows;
  }
  s->total_us = (double)(qs_now_ns() - t0_ns) * 1e-3;
}
