/* predict_json.c - POST /predict with a JSON body: the decoder and the
 * encoder of the native format.
 *
 * Decoding walks the body's members once, building nothing: "inputs" is
 * parsed straight into the thread's float scratch (its shape taken from the
 * text, checked against the model by the infer step), "model", "baseline",
 * "mode" and "fp32_outputs" are read in place, and every other member is
 * validated and skipped (json_walk.c: jansson's rules, duplicate keys
 * refused, no tree). A warm thread allocates nothing for a request.
 *
 * Errors keep the order the previous decoder had: a malformed body or a bad
 * "inputs" array first, then wrong option types, then the model. */
#include <string.h>

#include "api/api.h"
#include "base/config.h"
#include "base/log.h"

typedef struct predict_in {
  bool have_inputs;
  const float *x;
  size_t rows, cols;
  bool have_model;
  char model[130];
  size_t model_len;
  bool baseline, dynamic, want32;
  const char *opt_err; /* the first wrong option type */
} predict_in;

static bool key_is(const char *s, qs_span k, const char *name) {
  size_t n = strlen(name);
  return k.len == n && memcmp(s + k.off, name, n) == 0;
}

static const char *const known[] = {"inputs", "model", "baseline", "mode", "fp32_outputs"};

/* A member name spelled with escapes that decodes to one the decoder reads:
 * refused, as the scanner matches names byte for byte. */
static const char *escaped_known(const char *s, qs_span k) {
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (qs_jw_key_equal(s + k.off, k.len, known[i], strlen(known[i]))) return known[i];
  return NULL;
}

/* Reads "inputs" at w->p into the scratch; advances past the array. */
static bool read_inputs(qs_req *r, qs_api_ctx *ctx, qs_jwalk *w, predict_in *in) {
  size_t rest = w->n - w->p, cap = qs_json_numbers_bound(rest), end = 0, errpos = 0;
  /* Never more than --max-batch rows of the widest input a model may have,
   * never more than the text can hold. */
  float *x = qs_api_floats(ctx, cap);
  if (!x) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  qs_jerr je = qs_json_parse_matrix_prefix(w->s + w->p, rest, 0, qs_g.cfg.max_batch, x, cap, &in->rows,
                                           &in->cols, &errpos, &end);
  if (je != QS_JOK) {
    qs_reply_matrix_error(r, je, 0, qs_g.cfg.max_batch, errpos);
    return false;
  }
  w->p += end;
  in->x = x;
  in->have_inputs = true;
  return true;
}

/* One member's value, by name. False with the reply set on a hard error. */
static bool read_member(qs_req *r, qs_api_ctx *ctx, qs_jwalk *w, qs_span k, bool escaped, predict_in *in) {
  const char *s = w->s;
  qs_jerr e = QS_JOK;
  if (escaped && escaped_known(s, k)) {
    qs_reply_error(r, 400, "write the member name \"%s\" without escapes", escaped_known(s, k));
    return false;
  }
  if (key_is(s, k, "inputs")) return read_inputs(r, ctx, w, in);
  if (key_is(s, k, "model")) {
    e = qs_jw_string(w, in->model, sizeof in->model, &in->model_len);
    if (e == QS_JTYPE) {
      if (!in->opt_err) in->opt_err = "\"model\" must be a string";
      e = qs_jw_skip(w);
    } else if (e == QS_JOK) {
      in->have_model = true;
    }
  } else if (key_is(s, k, "baseline") || key_is(s, k, "fp32_outputs")) {
    bool base = key_is(s, k, "baseline"), v = false;
    e = qs_jw_bool(w, &v);
    if (e == QS_JTYPE) {
      if (!in->opt_err)
        in->opt_err = base ? "\"baseline\" must be true or false" : "\"fp32_outputs\" must be true or false";
      e = qs_jw_skip(w);
    } else if (base) {
      in->baseline = v;
    } else {
      in->want32 = v;
    }
  } else if (key_is(s, k, "mode")) {
    char mode[8];
    size_t len = 0;
    e = qs_jw_string(w, mode, sizeof mode, &len);
    bool ok = e == QS_JOK && (strcmp(mode, "static") == 0 || strcmp(mode, "dynamic") == 0) &&
              len == strlen(mode);
    if (ok) in->dynamic = mode[0] == 'd';
    if (e == QS_JTYPE) e = qs_jw_skip(w);
    if (e == QS_JOK && !ok && !in->opt_err) in->opt_err = "\"mode\" must be \"static\" or \"dynamic\"";
  } else {
    e = qs_jw_skip(w);
  }
  if (e != QS_JOK) {
    qs_reply_walk_error(r, w, e);
    return false;
  }
  return true;
}

/* The body into *in; false with the error reply set. */
static bool decode(qs_req *r, qs_api_ctx *ctx, predict_in *in) {
  if (!r->body || r->body_len == 0) {
    qs_reply_error(r, 400, "empty body: send {\"inputs\": [[...]]}");
    return false;
  }
  /* JSON text never holds a raw NUL byte. */
  const char *nul = memchr(r->body, '\0', r->body_len);
  if (nul) {
    qs_reply_error(r, 400, "malformed JSON: NUL byte at byte %zu", (size_t)(nul - r->body));
    return false;
  }
  qs_jwalk w;
  qs_jerr e = qs_jw_begin(&w, r->body, r->body_len, &ctx->keys);
  if (e != QS_JOK) {
    qs_reply_walk_error(r, &w, e);
    return false;
  }
  for (;;) {
    qs_span k;
    bool escaped, done;
    if ((e = qs_jw_key(&w, &k, &escaped, &done)) != QS_JOK) {
      qs_reply_walk_error(r, &w, e);
      return false;
    }
    if (done) break;
    if (!read_member(r, ctx, &w, k, escaped, in)) return false;
  }
  if (!in->have_inputs) {
    qs_reply_error(r, 400, "missing \"inputs\" (an array of rows of numbers)");
    return false;
  }
  if (in->opt_err) {
    qs_reply_error(r, 400, "%s", in->opt_err);
    return false;
  }
  if (in->have_model && (in->model_len == 0 || in->model_len >= sizeof in->model)) {
    qs_reply_error(r, 400, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
    return false;
  }
  in->want32 = in->want32 && in->baseline;
  return true;
}

/* rows x out floats as a JSON array of arrays (without its brackets). */
static void put_rows(qs_buf *b, const float *y, size_t rows, size_t out) {
  for (size_t i = 0; i < rows; i++) {
    if (i) qs_buf_put(b, ",", 1);
    qs_buf_float_array(b, y + i * out, out);
  }
}

/* "predictions" (argmax per row) and, when the model has labels, "labels". */
static void put_predictions(qs_buf *b, const qs_infer_res *run) {
  const qat_model *qm = run->m->model;
  size_t out = run->out;
  qs_buf_puts(b, ",\"predictions\":[");
  for (size_t i = 0; i < run->rows; i++) {
    if (i) qs_buf_put(b, ",", 1);
    qs_buf_uint(b, qs_argmax(run->y8 + i * out, out));
  }
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
}

/* "latency_us" and "drift" (null members without the baseline). */
static void put_summary(qs_buf *b, const qs_infer_res *run, uint64_t t0_ns) {
  qs_summary s;
  qs_infer_summary(run, t0_ns, &s);
  qs_buf_puts(b, ",\"latency_us\":{\"int8\":");
  qs_buf_fixed3(b, s.int8_us);
  if (s.baseline) {
    qs_buf_puts(b, ",\"fp32\":");
    qs_buf_fixed3(b, s.fp32_us);
    qs_buf_puts(b, ",\"speedup\":");
    qs_buf_fixed3(b, s.speedup);
  } else {
    qs_buf_puts(b, ",\"fp32\":null,\"speedup\":null");
  }
  qs_buf_puts(b, ",\"total\":");
  qs_buf_fixed3(b, s.total_us);
  qs_buf_puts(b, "}");
  if (s.baseline) {
    qs_buf_puts(b, ",\"drift\":{\"max_abs_diff\":");
    qs_buf_float(b, s.max_abs_diff);
    qs_buf_printf(b, ",\"argmax_agreement\":%.6g}", s.argmax_agreement);
  } else {
    qs_buf_puts(b, ",\"drift\":null");
  }
}

/* The reply, member by member: model, version, mode, outputs (and
 * fp32_outputs), predictions and labels, latency and drift. */
void qs_predict_reply(qs_req *r, const qs_infer_res *run, bool want32) {
  if (r->bin_out) {
    qs_predict_reply_binary(r, run);
    return;
  }
  const qs_model *m = run->m;
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"model\":");
  qs_buf_json_str(b, m->name);
  qs_buf_puts(b, ",\"version\":");
  qs_buf_uint(b, m->version);
  qs_buf_puts(b, run->dynamic ? ",\"mode\":\"dynamic\",\"outputs\":[" : ",\"mode\":\"static\",\"outputs\":[");
  put_rows(b, run->y8, run->rows, run->out);
  if (want32) {
    qs_buf_puts(b, "],\"fp32_outputs\":[");
    put_rows(b, run->y32, run->rows, run->out);
  }
  qs_buf_puts(b, "]");
  put_predictions(b, run);
  put_summary(b, run, r->t0_ns);
  qs_buf_puts(b, "}\n");
}

void qs_handle_predict(qs_req *r) {
  qs_test_delay();
  qs_api_ctx *ctx = qs_api_ctx_get();
  if (!ctx) {
    qs_reply_error(r, 503, "out of memory");
    return;
  }
  predict_in in = {.baseline = true};
  if (!decode(r, ctx, &in)) goto done;
  qs_model *m = NULL;
  qs_err err;
  if (!qs_infer_model(in.have_model ? in.model : NULL, "\"model\"", &m, &err)) {
    qs_reply_err(r, &err);
    goto done;
  }
  r->model_slot = m->metrics_slot;
  qs_infer_req req = {.x = in.x, .rows = in.rows, .cols = in.cols, .baseline = in.baseline,
                      .dynamic = in.dynamic, .t0_ns = r->t0_ns};
  qs_infer_res res;
  if (!qs_infer_run(m, &req, &res, &err)) {
    qs_model_release(m);
    qs_reply_err(r, &err);
    goto done;
  }
  qs_predict_reply(r, &res, in.want32);
  qs_infer_res_done(&res);
done:
  qs_api_ctx_done(ctx);
}
