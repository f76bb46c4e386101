/* binary.c - binary payloads: /predict with raw little-endian float32 rows
 * (Content-Type: application/octet-stream), answered in kind when the client
 * sends Accept: application/octet-stream, and the pieces of the KServe v2
 * binary tensor extension (Inference-Header-Content-Length) that kserve.c
 * uses.
 *
 * Why: parsing 784 decimal numbers costs more than the int8 model itself;
 * raw floats are copied, checked for finiteness, and run. The same caps
 * (--max-body before a byte is buffered, --max-batch) and the same errors
 * (422 for a non-finite float or a size that is not whole rows) apply, and
 * the outputs are the very floats the JSON path would print.
 *
 * /predict binary request:
 *   POST /predict?model=NAME[&baseline=false][&mode=dynamic]   (or X-Model: NAME)
 *   Content-Type: application/octet-stream
 *   body: B rows of in_dim float32, little-endian, row-major (B = bytes / (4 in_dim))
 * Binary answer (Accept: application/octet-stream): B rows of out_dim float32,
 * with the model, shape, predictions, latency and drift in five X-* headers:
 *   X-Model: NAME; version=V; mode=static       X-Shape: B,N
 *   X-Predictions: 3,1,...                      X-Drift: max_abs_diff=..., argmax_agreement=...
 *   X-Latency-Us: int8=..., fp32=..., speedup=...[, queue=..., batch_rows=...], total=... */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/config.h"
#include "base/log.h"

/* This file assumes the host is little-endian, as the wire format is. */
_Static_assert(sizeof(float) == 4, "float32");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binary payloads assume a little-endian host"
#endif

bool qs_binary_floats(qs_req *r, qs_api_ctx *ctx, const char *p, size_t nfloats, size_t width,
                      const float **x) {
  float *buf = qs_api_floats(ctx, nfloats);
  if (!buf) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  memcpy(buf, p, nfloats * sizeof *buf);
  for (size_t i = 0; i < nfloats; i++) {
    if (!isfinite(buf[i])) {
      qs_reply_error(r, 422, "non-finite number at row %zu, column %zu", i / width, i % width);
      return false;
    }
  }
  *x = buf;
  return true;
}

void qs_predict_reply_binary(qs_req *r, const qs_infer_res *run) {
  qs_model *m = run->m;
  size_t out = qat_model_out_dim(m->model);
  r->status = 200;
  r->ctype = "application/octet-stream";
  qs_buf_put(&r->out, (const char *)run->y8, run->rows * out * sizeof(float));
  /* Few headers, each a short list: every header costs libmicrohttpd three
   * allocations, which showed in the profile of this path. */
  qs_req_header(r, "X-Model", "%s; version=%llu; mode=%s", m->name, (unsigned long long)m->version,
                run->dynamic ? "dynamic" : "static");
  qs_req_header(r, "X-Shape", "%zu,%zu", run->rows, out);
  /* Predictions travel in a header while they fit (they always do for a
   * modest batch); the outputs are there to take the argmax of otherwise. */
  char pred[1024];
  size_t pl = 0;
  for (size_t i = 0; i < run->rows && pl < sizeof pred; i++) {
    int k = snprintf(pred + pl, sizeof pred - pl, i ? ",%zu" : "%zu", qs_argmax(run->y8 + i * out, out));
    if (k < 0 || (size_t)k >= sizeof pred - pl) {
      pl = sizeof pred;
      break;
    }
    pl += (size_t)k;
  }
  if (pl < sizeof pred) qs_req_header(r, "X-Predictions", "%s", pred);
  qs_summary t;
  qs_infer_summary(run, r->t0_ns, &t);
  char lat[256];
  size_t ll = (size_t)snprintf(lat, sizeof lat, "int8=%.3f", t.int8_us);
  if (t.baseline) ll += (size_t)snprintf(lat + ll, sizeof lat - ll, ", fp32=%.3f, speedup=%.3f", t.fp32_us, t.speedup);
  qs_req_header(r, "X-Latency-Us", "%s, total=%.3f", lat, t.total_us);
  if (t.baseline)
    qs_req_header(r, "X-Drift", "max_abs_diff=%.9g, argmax_agreement=%.6g", (double)t.max_abs_diff,
                  t.argmax_agreement);
}

/* ?baseline= and ?mode= into *baseline, *dynamic; false with the reply set. */
static bool decode_options(qs_req *r, bool *baseline, bool *dynamic) {
  if (r->qbaseline[0]) {
    if (strcmp(r->qbaseline, "true") == 0 || strcmp(r->qbaseline, "1") == 0)
      *baseline = true;
    else if (strcmp(r->qbaseline, "false") == 0 || strcmp(r->qbaseline, "0") == 0)
      *baseline = false;
    else {
      qs_reply_error(r, 400, "baseline must be true or false");
      return false;
    }
  }
  if (r->qmode[0]) {
    if (strcmp(r->qmode, "static") == 0)
      *dynamic = false;
    else if (strcmp(r->qmode, "dynamic") == 0)
      *dynamic = true;
    else {
      qs_reply_error(r, 400, "mode must be static or dynamic");
      return false;
    }
  }
  return true;
}

/* The body as whole rows of m's input width, copied (aligned) into the
 * thread's scratch and checked finite. */
static bool decode_rows(qs_req *r, qs_api_ctx *ctx, const qs_model *m, const float **x, size_t *rows) {
  size_t in = qat_model_in_dim(m->model);
  size_t row_bytes = in * sizeof(float);
  if (r->body_len % row_bytes != 0) {
    qs_reply_error(r, 422, "wrong input size: %zu bytes is not a whole number of rows of %zu float32 (%zu bytes)",
                   r->body_len, in, row_bytes);
    return false;
  }
  *rows = r->body_len / row_bytes;
  if (*rows > qs_g.cfg.max_batch) {
    qs_reply_error(r, 413, "batch larger than %zu rows", qs_g.cfg.max_batch);
    return false;
  }
  return qs_binary_floats(r, ctx, r->body, *rows * in, in, x);
}

void qs_handle_predict_binary(qs_req *r) {
  qs_test_delay();
  if (!r->body || r->body_len == 0) {
    qs_reply_error(r, 400, "empty body: send rows of little-endian float32");
    return;
  }
  bool baseline = true, dynamic = false;
  if (!decode_options(r, &baseline, &dynamic)) return;
  qs_api_ctx *ctx = qs_api_ctx_get();
  if (!ctx) {
    qs_reply_error(r, 503, "out of memory");
    return;
  }
  qs_model *m = NULL;
  qs_err err;
  if (!qs_infer_model(r->qmodel, "?model=NAME or X-Model", &m, &err)) {
    qs_reply_err(r, &err);
    return;
  }
  r->model_slot = m->metrics_slot;
  const float *x = NULL;
  size_t rows = 0;
  if (!decode_rows(r, ctx, m, &x, &rows)) {
    qs_model_release(m);
    goto done;
  }
  qs_infer_req req = {.x = x, .rows = rows, .cols = qat_model_in_dim(m->model), .baseline = baseline,
                      .dynamic = dynamic, .t0_ns = r->t0_ns};
  qs_infer_res run;
  if (!qs_infer_run(m, &req, &run, &err)) {
    qs_model_release(m);
    qs_reply_err(r, &err);
    goto done;
  }
  qs_predict_reply(r, &run, false);
  qs_infer_res_done(&run);
done:
  qs_api_ctx_done(ctx);
}
