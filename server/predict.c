/* predict.c - POST /predict, and the batch parsing and model run that the
 * v2 infer endpoint shares.
 *
 * The body is in memory when the handler runs. json.c finds where the
 * top-level "inputs" value starts and parses its numbers straight into
 * floats in one pass, learning where the array ends; the rest of the body
 * (with the array cut out) goes through jansson, strict and with duplicate
 * keys refused. The model named in that envelope then fixes the width the
 * rows must have. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infer.h"
#include "metrics.h"

void qs_test_delay(void) {
  unsigned ms = qs_g.cfg.test_delay_ms;
  if (!ms) return;
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void reply_parse_error(qs_req *r, qs_jerr e, size_t width, size_t max_rows, size_t errpos);

bool qs_parse_batch(qs_req *r, const char *s, size_t n, size_t width, size_t max_rows,
                    size_t max_numbers, float **x, size_t *rows, size_t *cols) {
  size_t cap = qs_json_numbers_bound(n);
  if (cap > max_numbers) cap = max_numbers;
  float *buf = malloc((cap ? cap : 1) * sizeof *buf);
  if (!buf) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  size_t errpos = 0;
  qs_jerr e = qs_json_parse_matrix(s, n, width, max_rows, buf, cap, rows, cols, &errpos);
  if (e != QS_JOK) {
    free(buf);
    reply_parse_error(r, e, width, max_rows, errpos);
    return false;
  }
  *x = buf;
  return true;
}

static void reply_parse_error(qs_req *r, qs_jerr e, size_t width, size_t max_rows, size_t errpos) {
  {
    switch (e) {
      case QS_JWIDTH:
        if (width)
          qs_reply_error(r, 422, "wrong input width: every row needs %zu numbers (at byte %zu of the array)",
                         width, errpos);
        else
          qs_reply_error(r, 422, "rows of different widths (at byte %zu of the array)", errpos);
        break;
      case QS_JROWS:
        qs_reply_error(r, 413, "batch larger than %zu rows", max_rows);
        break;
      case QS_JEMPTY: qs_reply_error(r, 422, "no input rows"); break;
      case QS_JNONFINITE:
        qs_reply_error(r, 422, "non-finite or out-of-range number at byte %zu of the array", errpos);
        break;
      case QS_JTYPE:
        qs_reply_error(r, 400, "inputs must be numbers in an array of rows (wrong type at byte %zu of the array)",
                       errpos);
        break;
      default:
        qs_reply_error(r, 400, "malformed JSON in the input array at byte %zu", errpos);
        break;
    }
  }
}

size_t qs_argmax(const float *v, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

void qs_run_free(qs_run *run) {
  free(run->y8);
  free(run->y32);
  run->y8 = run->y32 = NULL;
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

void qs_reply_infer_error(qs_req *r, qat_err e, const char *msg) {
  if (e == QAT_ENOMEM)
    qs_reply_error(r, 503, "out of memory");
  else if (e == QAT_ENOTFINITE || e == QAT_ERANGE)
    qs_reply_error(r, 422, "inference refused the input: %s", msg);
  else
    qs_reply_error(r, 500, "inference failed: %s", msg);
}

bool qs_run_model(qs_req *r, qs_run *run) {
  const qat_model *qm = run->m->model;
  size_t out = qat_model_out_dim(qm);
  run->y8 = malloc(run->rows * out * sizeof(float));
  run->y32 = run->baseline ? malloc(run->rows * out * sizeof(float)) : NULL;
  if (!run->y8 || (run->baseline && !run->y32)) {
    qs_run_free(run);
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  /* Dynamic batching joins concurrent static-mode requests into one product
   * (batch.c); dynamic mode measures ranges per block of rows, so a row's
   * answer would depend on its neighbours: it always runs alone. */
  bool ok;
  if (qs_g.cfg.batch_window_us && !run->dynamic && run->rows < qs_g.cfg.max_batch) {
    ok = qs_batch_compute(r, run);
  } else {
    qat_err e = qs_compute(run->m, run->x, run->rows, run->baseline, run->dynamic, run->y8, run->y32,
                           &run->ns_int8, &run->ns_fp32);
    if (e != QAT_OK) qs_reply_infer_error(r, e, qat_errmsg());
    ok = e == QAT_OK;
  }
  if (!ok) {
    qs_run_free(run);
    return false;
  }
  qs_metrics_observe(run->m->metrics_slot, QS_LAT_INT8, run->ns_int8);
  if (run->baseline) {
    qs_metrics_observe(run->m->metrics_slot, QS_LAT_FP32, run->ns_fp32);
    float md = 0;
    size_t agree = 0;
    for (size_t i = 0; i < run->rows; i++) {
      const float *a = run->y8 + i * out, *b = run->y32 + i * out;
      for (size_t j = 0; j < out; j++) {
        float d = fabsf(a[j] - b[j]);
        if (d > md) md = d;
      }
      agree += qs_argmax(a, out) == qs_argmax(b, out);
    }
    run->max_abs_diff = md;
    run->argmax_agree = agree;
  }
  return true;
}

bool qs_read_options(qs_req *r, json_t *obj, bool *baseline, bool *dynamic) {
  json_t *b = obj ? json_object_get(obj, "baseline") : NULL;
  if (b) {
    if (!json_is_boolean(b)) {
      qs_reply_error(r, 400, "\"baseline\" must be true or false");
      return false;
    }
    *baseline = json_is_true(b);
  }
  json_t *mode = obj ? json_object_get(obj, "mode") : NULL;
  if (mode) {
    const char *v = json_string_value(mode);
    if (v && strcmp(v, "static") == 0)
      *dynamic = false;
    else if (v && strcmp(v, "dynamic") == 0)
      *dynamic = true;
    else {
      qs_reply_error(r, 400, "\"mode\" must be \"static\" or \"dynamic\"");
      return false;
    }
  }
  return true;
}

/* jansson reports its own allocation failures as whatever parse error it
 * was in the middle of ("string expected", or no message at all), so its
 * allocator records them per thread and callers ask. */
static _Thread_local bool json_alloc_fail;

static void *json_alloc(size_t n) {
  void *p = malloc(n);
  if (!p) json_alloc_fail = true;
  return p;
}

void qs_json_alloc_init(void) { json_set_alloc_funcs(json_alloc, free); }

bool qs_json_alloc_failed(void) {
  bool f = json_alloc_fail;
  json_alloc_fail = false;
  return f;
}

json_t *qs_parse_envelope(qs_req *r, qs_span sp, bool found) {
  char *env = r->body;
  size_t envlen = r->body_len;
  /* JSON text never holds a raw NUL byte, but jansson 2.14 reads one as the
   * end of input in some places and skips it in others (so a body with a
   * NUL after the spliced-out array was accepted). Refuse it outright. */
  const char *nul = memchr(r->body, '\0', r->body_len);
  if (nul) {
    qs_reply_error(r, 400, "malformed JSON: NUL byte at byte %zu", (size_t)(nul - r->body));
    return NULL;
  }
  /* "[]", not "0": bytes after the array must stay a separate token, or
   * "inputs":[[1]]e38 became "inputs":0e38, valid JSON (fuzz_predict). */
  if (found && !qs_json_splice(r->body, r->body_len, sp, "[]", &env, &envlen)) {
    qs_reply_error(r, 503, "out of memory");
    return NULL;
  }
  json_error_t jerr;
  qs_json_alloc_failed();
  json_t *root = json_loadb(env, envlen, JSON_REJECT_DUPLICATES, &jerr);
  if (env != r->body) free(env);
  if (!root) {
    if (qs_json_alloc_failed())
      qs_reply_error(r, 503, "out of memory");
    else
      qs_reply_error(r, 400, "malformed JSON: %s", jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    qs_reply_error(r, 400, "the body must be a JSON object");
    return NULL;
  }
  return root;
}

/* Resolves the model named by the "model" member (or the only one). */
static qs_model *resolve_model(qs_req *r, json_t *root) {
  json_t *jm = json_object_get(root, "model");
  if (!jm) {
    size_t count;
    qs_model *m = qs_registry_get_only(&count);
    if (!m) {
      if (count == 0)
        qs_reply_error(r, 503, "no models loaded");
      else
        qs_reply_error(r, 400, "\"model\" is required when %zu models are loaded", count);
    }
    return m;
  }
  const char *name = json_string_value(jm);
  if (!name) {
    qs_reply_error(r, 400, "\"model\" must be a string");
    return NULL;
  }
  if (!qs_name_valid(name) || strlen(name) != json_string_length(jm)) {
    qs_reply_error(r, 400, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
    return NULL;
  }
  qs_model *m = qs_registry_get(name);
  if (!m) qs_reply_error(r, 404, "model '%s' not found", name);
  return m;
}

void qs_predict_reply(qs_req *r, qs_model *m, const qs_run *run, bool want32) {
  if (r->bin_out) {
    qs_predict_reply_binary(r, m, run);
    return;
  }
  const qat_model *qm = m->model;
  size_t out = qat_model_out_dim(qm);
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"model\":");
  qs_buf_json_str(b, m->name);
  qs_buf_printf(b, ",\"version\":%llu,\"mode\":\"%s\",\"outputs\":[", (unsigned long long)m->version,
                run->dynamic ? "dynamic" : "static");
  for (size_t i = 0; i < run->rows; i++) {
    if (i) qs_buf_put(b, ",", 1);
    qs_buf_float_array(b, run->y8 + i * out, out);
  }
  if (want32) {
    qs_buf_puts(b, "],\"fp32_outputs\":[");
    for (size_t i = 0; i < run->rows; i++) {
      if (i) qs_buf_put(b, ",", 1);
      qs_buf_float_array(b, run->y32 + i * out, out);
    }
  }
  qs_buf_puts(b, "],\"predictions\":[");
  for (size_t i = 0; i < run->rows; i++) qs_buf_printf(b, i ? ",%zu" : "%zu", qs_argmax(run->y8 + i * out, out));
  qs_buf_puts(b, "]");
  if (qat_model_n_labels(qm)) {
    qs_buf_puts(b, ",\"labels\":[");
    for (size_t i = 0; i < run->rows; i++) {
      if (i) qs_buf_put(b, ",", 1);
      const char *l = qat_model_label(qm, (uint32_t)qs_argmax(run->y8 + i * out, out));
      qs_buf_json_str(b, l ? l : "");
    }
    qs_buf_puts(b, "]");
  }
  double us8 = (double)run->ns_int8 * 1e-3, us32 = (double)run->ns_fp32 * 1e-3;
  qs_buf_printf(b, ",\"latency_us\":{\"int8\":%.3f", us8);
  if (run->baseline)
    qs_buf_printf(b, ",\"fp32\":%.3f,\"speedup\":%.3f", us32, us8 > 0 ? us32 / us8 : 0.0);
  else
    qs_buf_puts(b, ",\"fp32\":null,\"speedup\":null");
  if (run->batch_rows)
    qs_buf_printf(b, ",\"queue\":%.3f,\"batch_rows\":%zu", (double)run->ns_queue * 1e-3, run->batch_rows);
  qs_buf_printf(b, ",\"total\":%.3f}", (double)(qs_now_ns() - r->t0_ns) * 1e-3);
  if (run->baseline) {
    qs_buf_puts(b, ",\"drift\":{\"max_abs_diff\":");
    qs_buf_float(b, run->max_abs_diff);
    qs_buf_printf(b, ",\"argmax_agreement\":%.6g}", (double)run->argmax_agree / (double)run->rows);
  } else {
    qs_buf_puts(b, ",\"drift\":null");
  }
  qs_buf_puts(b, "}\n");
}

void qs_handle_predict(qs_req *r) {
  qs_test_delay();
  if (!r->body || r->body_len == 0) {
    qs_reply_error(r, 400, "empty body: send {\"inputs\": [[...]]}");
    return;
  }
  /* One pass over the numbers: find where "inputs" starts, parse the array
   * there (its shape from the text, checked against the model below) and
   * learn where it ends; then jansson reads the rest. The float buffer is
   * sized by what the remaining bytes can hold, never by the client. */
  qs_span sp = {0, 0};
  bool found = false;
  size_t vstart = 0, rows = 0, cols = 0;
  float *x = NULL;
  qs_jerr je = qs_json_find_key_start(r->body, r->body_len, "inputs", &vstart, &found);
  if (je != QS_JOK) {
    qs_reply_error(r, 400, "%s", je == QS_JDEPTH ? "JSON nested too deeply" : "malformed JSON");
    return;
  }
  if (found) {
    size_t rest = r->body_len - vstart, cap = qs_json_numbers_bound(rest), end = 0, errpos = 0;
    x = malloc(cap * sizeof *x);
    if (!x) {
      qs_reply_error(r, 503, "out of memory");
      return;
    }
    je = qs_json_parse_matrix_prefix(r->body + vstart, rest, 0, qs_g.cfg.max_batch, x, cap, &rows,
                                     &cols, &errpos, &end);
    if (je != QS_JOK) {
      free(x);
      reply_parse_error(r, je, 0, qs_g.cfg.max_batch, errpos);
      return;
    }
    sp.off = vstart;
    sp.len = end;
  }
  json_t *root = qs_parse_envelope(r, sp, found);
  if (!root) {
    free(x);
    return;
  }
  if (!found) {
    qs_reply_error(r, 400, "missing \"inputs\" (an array of rows of numbers)");
    json_decref(root);
    return;
  }
  bool baseline = true, dynamic = false;
  if (!qs_read_options(r, root, &baseline, &dynamic)) {
    json_decref(root);
    free(x);
    return;
  }
  /* "fp32_outputs": true also returns the fp32 baseline's outputs (the
   * browser page draws both). */
  json_t *jf = json_object_get(root, "fp32_outputs");
  if (jf && !json_is_boolean(jf)) {
    qs_reply_error(r, 400, "\"fp32_outputs\" must be true or false");
    json_decref(root);
    free(x);
    return;
  }
  bool want32 = baseline && json_is_true(jf);
  qs_model *m = resolve_model(r, root);
  json_decref(root);
  if (!m) {
    free(x);
    return;
  }
  r->model_slot = m->metrics_slot;
  const qat_model *qm = m->model;
  size_t in = qat_model_in_dim(qm);
  if (cols != in) {
    free(x);
    qs_model_release(m);
    qs_reply_error(r, 422, "wrong input width: every row needs %zu numbers, got %zu", in, cols);
    return;
  }
  qs_run run = {.m = m, .x = x, .rows = rows, .baseline = baseline, .dynamic = dynamic};
  bool ok = qs_run_model(r, &run);
  free(x);
  if (!ok) {
    qs_model_release(m);
    return;
  }
  qs_predict_reply(r, m, &run, want32);
  qs_run_free(&run);
  qs_model_release(m);
}
