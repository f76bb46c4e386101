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

#include "api/api.h"
#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"

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

void qs_reply_err(qs_req *r, const qs_err *e) { qs_reply_error(r, e->status, "%s", e->msg); }

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

/* Resolves the model named by the "model" member (or the default one). */
static qs_model *resolve_model(qs_req *r, json_t *root) {
  json_t *jm = json_object_get(root, "model");
  const char *name = NULL;
  if (jm) {
    name = json_string_value(jm);
    if (!name) {
      qs_reply_error(r, 400, "\"model\" must be a string");
      return NULL;
    }
    if (!*name || strlen(name) != json_string_length(jm)) {
      qs_reply_error(r, 400, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
      return NULL;
    }
  }
  qs_model *m = NULL;
  qs_err err;
  if (!qs_infer_model(name, "\"model\"", &m, &err)) qs_reply_err(r, &err);
  return m;
}

void qs_predict_reply(qs_req *r, const qs_infer_res *run, bool want32) {
  qs_model *m = run->m;
  if (r->bin_out) {
    qs_predict_reply_binary(r, run);
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
  qs_infer_req req = {.x = x, .rows = rows, .cols = cols, .baseline = baseline, .dynamic = dynamic,
                      .t0_ns = r->t0_ns};
  qs_infer_res run;
  qs_err err;
  bool ok = qs_infer_run(m, &req, &run, &err);
  free(x);
  if (!ok) {
    qs_model_release(m);
    qs_reply_err(r, &err);
    return;
  }
  qs_predict_reply(r, &run, want32);
  qs_infer_res_done(&run);
}
