/* infer_seam.c - TEMPORARY (see infer_seam.h): the pipeline's infer
 * interface over today's qs_run_model. */
#include "infer_seam.h"

#include <stdio.h>
#include <string.h>

#include "infer.h"
#include "server.h"

bool qs_infer_model(const char *name, const char *how_to_name, qs_model **m, qs_err *err) {
  if (!name || !*name) {
    size_t count;
    *m = qs_registry_get_only(&count);
    if (*m) return true;
    err->status = count ? 400 : 503;
    if (count)
      snprintf(err->msg, sizeof err->msg, "name the model (%s) when %zu models are loaded", how_to_name, count);
    else
      snprintf(err->msg, sizeof err->msg, "no models loaded");
    return false;
  }
  if (!qs_name_valid(name)) {
    err->status = 400;
    snprintf(err->msg, sizeof err->msg, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
    return false;
  }
  *m = qs_registry_get(name);
  if (*m) return true;
  err->status = 404;
  snprintf(err->msg, sizeof err->msg, "model '%s' not found", name);
  return false;
}

bool qs_infer_run(qs_model *m, const qs_infer_req *req, qs_infer_res *res, qs_err *err) {
  qs_req r;
  memset(&r, 0, sizeof r);
  r.t0_ns = req->t0_ns;
  r.model_slot = m->metrics_slot;
  qs_buf_init(&r.out, 256, 4096);
  qs_run run = {.m = m, .x = req->x, .rows = req->rows, .baseline = req->baseline, .dynamic = req->dynamic};
  if (!qs_run_model(&r, &run)) {
    /* The error reply is {"error":"..."}: its message text, unquoted. */
    err->status = r.status ? r.status : 500;
    const char *p = r.out.data ? strstr(r.out.data, "\"error\":\"") : NULL;
    size_t k = 0;
    if (p)
      for (p += 9; *p && *p != '"' && k + 1 < sizeof err->msg; p++) err->msg[k++] = *p;
    err->msg[k] = '\0';
    if (!k) snprintf(err->msg, sizeof err->msg, "inference failed");
    qs_buf_free(&r.out);
    return false;
  }
  qs_buf_free(&r.out);
  *res = (qs_infer_res){.m = m, .rows = req->rows, .out = qat_model_out_dim(m->model),
                        .baseline = req->baseline, .dynamic = req->dynamic,
                        .y8 = run.y8, .y32 = run.y32, .ns_int8 = run.ns_int8, .ns_fp32 = run.ns_fp32,
                        .ns_queue = run.ns_queue, .batch_rows = run.batch_rows,
                        .max_abs_diff = run.max_abs_diff, .argmax_agree = run.argmax_agree,
                        .buf8 = run.y8, .buf32 = run.y32};
  return true;
}

void qs_infer_res_done(qs_infer_res *res) {
  qs_run run = {.y8 = res->buf8, .y32 = res->buf32};
  qs_run_free(&run);
  if (res->m) qs_model_release(res->m);
  res->m = NULL;
}
