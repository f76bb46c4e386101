/* envelope.c - the KServe v2 infer request's JSON header, walked once
 * without building a tree (base/json_walk.c), into a qs_v2_env.
 *
 * Why no jansson: the envelope is small but nested ("inputs": [{"shape",
 * "datatype", "parameters", "data"}], "parameters", "outputs": [...]), and a
 * tree of it cost allocations and a copy of the body on every request, and a
 * member the server does not know (a million empty arrays) cost a tree of
 * that size. The walk validates every member as jansson did (duplicate keys
 * at every level, UTF-8, escapes, integer and real ranges) and only records
 * what it finds: the checks run afterwards, in a fixed order (v2_infer.c),
 * so a body with several faults gets the same error as before. Member names
 * are compared decoded: "d\u0061ta" is "data", as jansson reads it.
 *
 * inputs[0].data is parsed straight into the thread's float scratch as the
 * walk reaches it; if that fails (or meets the walk's caps, which do not
 * know the shape yet when "data" comes first), the array is only located,
 * and v2_infer.c parses it again once the shape is known. */
#include <string.h>

#include "api/v2.h"
#include "base/config.h"

typedef struct v2_walk {
  qs_jwalk w;
  qs_api_ctx *ctx;
  size_t width;
  qs_v2_env *env;
} v2_walk;

static bool is(const qs_jwalk *w, qs_span k, bool escaped, const char *name) {
  size_t n = strlen(name);
  if (!escaped) return k.len == n && memcmp(w->s + k.off, name, n) == 0;
  return qs_jw_key_equal(w->s + k.off, k.len, name, n);
}

/* A boolean member: *st QS_V2_OK with *v, or QS_V2_BAD (value skipped). */
static qs_jerr read_bool(qs_jwalk *w, int *st, bool *v) {
  qs_jerr e = qs_jw_bool(w, v);
  *st = e == QS_JOK ? QS_V2_OK : QS_V2_BAD;
  return e == QS_JTYPE ? qs_jw_skip(w) : e;
}

/* A string member that must equal one of names: *which its index, -1 for
 * another string, -2 for another type (skipped). */
static qs_jerr read_choice(qs_jwalk *w, const char *const *names, int n, int *which) {
  qs_span raw;
  bool esc;
  qs_jerr e = qs_jw_str(w, &raw, &esc);
  *which = -2;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  *which = -1;
  for (int i = 0; i < n; i++)
    if (qs_jw_key_equal(w->s + raw.off, raw.len, names[i], strlen(names[i]))) *which = i;
  return QS_JOK;
}

/* inputs[0].shape: exactly two integers. */
static qs_jerr read_shape(qs_jwalk *w, qs_v2_env *env) {
  qs_jw_arr a;
  qs_jerr e = qs_jw_arr_begin(w, &a);
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  bool ints = true;
  for (;;) {
    bool done;
    if ((e = qs_jw_arr_next(w, &a, &done))) return e;
    if (done) break;
    int64_t v = 0;
    e = a.count <= 2 ? qs_jw_int(w, &v) : QS_JTYPE;
    if (e == QS_JTYPE) {
      if (a.count <= 2) ints = false;
      e = qs_jw_skip(w);
    } else if (e == QS_JOK) {
      *(a.count == 1 ? &env->B : &env->K) = v;
    }
    if (e) return e;
  }
  env->shape_ok = ints && a.count == 2;
  return QS_JOK;
}

/* inputs[0].parameters: an object; its binary_data_size an integer >= 0. */
static qs_jerr read_tensor_params(qs_jwalk *w, qs_v2_env *env) {
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  env->tparams = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    qs_span k;
    bool esc, done;
    if ((e = qs_jw_obj_key(w, &o, &k, &esc, &done))) return e;
    if (done) return QS_JOK;
    if (!is(w, k, esc, "binary_data_size")) {
      e = qs_jw_skip(w);
    } else {
      e = qs_jw_int(w, &env->bds_val);
      env->bds = e == QS_JOK && env->bds_val >= 0 ? QS_V2_OK : QS_V2_BAD;
      if (e == QS_JTYPE) e = qs_jw_skip(w);
    }
    if (e) return e;
  }
}

/* inputs[0].data, parsed in place (see the top of the file). */
static qs_jerr read_data(v2_walk *vw) {
  qs_jwalk *w = &vw->w;
  qs_v2_env *env = vw->env;
  qs_jw_peek(w); /* past whitespace */
  size_t start = w->p, rest = w->n - start, rows = 0, cols = 0, errpos = 0, end = 0;
  /* Never more than --max-batch rows of this model's width, never more
   * than the text can hold. */
  size_t cap = qs_json_numbers_bound(rest), most = qs_g.cfg.max_batch * vw->width;
  if (cap > most) cap = most;
  float *x = qs_api_floats(vw->ctx, cap);
  if (!x) {
    w->oom = true;
    return QS_JSYNTAX;
  }
  if (qs_json_parse_matrix_prefix(w->s + start, rest, 0, qs_g.cfg.max_batch, x, cap, &rows, &cols, &errpos,
                                  &end) == QS_JOK) {
    env->data = QS_V2_DATA_PARSED;
    env->x = x;
    env->rows = rows;
    env->cols = cols;
    end += start;
  } else {
    /* Where it ends, checking only brackets and strings: the numbers are
     * the parser's to judge, once the shape is known. */
    end = start;
    if (qs_json_skip_value(w->s, w->n, &end) != QS_JOK) {
      w->errpos = start;
      w->msg = "unparsable \"data\"";
      return QS_JSYNTAX;
    }
    env->data = QS_V2_DATA_SPAN;
  }
  env->data_span = (qs_span){start, end - start};
  w->p = end;
  return QS_JOK;
}

/* inputs[0]: the tensor. */
static qs_jerr read_tensor(v2_walk *vw) {
  qs_jwalk *w = &vw->w;
  qs_v2_env *env = vw->env;
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  env->first_obj = e == QS_JOK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    qs_span k;
    bool esc, done;
    if ((e = qs_jw_obj_key(w, &o, &k, &esc, &done))) return e;
    if (done) return QS_JOK;
    if (is(w, k, esc, "datatype")) {
      static const char *const fp32[] = {"FP32"};
      int which;
      e = read_choice(w, fp32, 1, &which);
      env->dtype_ok = which == 0;
    } else if (is(w, k, esc, "shape")) {
      e = read_shape(w, env);
    } else if (is(w, k, esc, "parameters")) {
      e = read_tensor_params(w, env);
    } else if (is(w, k, esc, "data")) {
      e = read_data(vw);
    } else {
      e = qs_jw_skip(w);
    }
    if (e) return e;
  }
}

static qs_jerr read_inputs(v2_walk *vw) {
  qs_jwalk *w = &vw->w;
  qs_jw_arr a;
  qs_jerr e = qs_jw_arr_begin(w, &a);
  vw->env->inputs = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    bool done;
    if ((e = qs_jw_arr_next(w, &a, &done))) return e;
    if (done) break;
    if ((e = a.count == 1 ? read_tensor(vw) : qs_jw_skip(w))) return e;
  }
  vw->env->n_inputs = a.count;
  return QS_JOK;
}

/* "parameters": baseline, mode, binary_data_output. */
static qs_jerr read_params(qs_jwalk *w, qs_v2_env *env) {
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  env->params = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    qs_span k;
    bool esc, done;
    if ((e = qs_jw_obj_key(w, &o, &k, &esc, &done))) return e;
    if (done) return QS_JOK;
    if (is(w, k, esc, "baseline")) {
      e = read_bool(w, &env->baseline, &env->baseline_v);
    } else if (is(w, k, esc, "mode")) {
      static const char *const modes[] = {"static", "dynamic"};
      int which;
      e = read_choice(w, modes, 2, &which);
      env->mode = which >= 0 ? QS_V2_OK : QS_V2_BAD;
      env->dynamic_v = which == 1;
    } else if (is(w, k, esc, "binary_data_output")) {
      e = read_bool(w, &env->bdo, &env->bdo_v);
    } else {
      e = qs_jw_skip(w);
    }
    if (e) return e;
  }
}

/* One requested output. */
typedef struct v2_out {
  int name, params, bd;
  qs_span name_raw;
  bool bd_v;
} v2_out;

/* outputs[i].parameters: binary_data. */
static qs_jerr read_output_params(qs_jwalk *w, v2_out *out) {
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  out->params = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    qs_span k;
    bool esc, done;
    if ((e = qs_jw_obj_key(w, &o, &k, &esc, &done))) return e;
    if (done) return QS_JOK;
    e = is(w, k, esc, "binary_data") ? read_bool(w, &out->bd, &out->bd_v) : qs_jw_skip(w);
    if (e) return e;
  }
}

/* outputs[i]; notes the first element that is wrong, in the order the
 * checks were always made: object with a "name", the name, its parameters,
 * binary_data. */
static qs_jerr read_output(qs_jwalk *w, qs_v2_env *env, size_t i) {
  v2_out out = {0};
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  bool obj = e == QS_JOK;
  if (e == QS_JTYPE) e = qs_jw_skip(w);
  while (obj && !e) {
    qs_span k;
    bool esc, done;
    if ((e = qs_jw_obj_key(w, &o, &k, &esc, &done)) || done) break;
    if (is(w, k, esc, "name")) {
      bool sesc;
      e = qs_jw_str(w, &out.name_raw, &sesc);
      out.name = e == QS_JOK ? QS_V2_OK : QS_V2_BAD;
      if (e == QS_JTYPE) e = qs_jw_skip(w);
    } else {
      e = is(w, k, esc, "parameters") ? read_output_params(w, &out) : qs_jw_skip(w);
    }
  }
  if (e || env->out_err) return e;
  int err = QS_V2_OUT_FINE;
  if (!obj || out.name != QS_V2_OK)
    err = QS_V2_OUT_NONAME;
  else if (!qs_jw_key_equal(w->s + out.name_raw.off, out.name_raw.len, "output", 6))
    err = QS_V2_OUT_UNKNOWN;
  else if (out.params == QS_V2_BAD)
    err = QS_V2_OUT_PARAMS;
  else if (out.bd == QS_V2_BAD)
    err = QS_V2_OUT_BD;
  env->out_err = err;
  env->out_err_idx = i;
  env->out_err_name = out.name_raw;
  if (!err && out.bd == QS_V2_OK) {
    env->bd_set = true;
    env->bd_v = out.bd_v;
  }
  return QS_JOK;
}

static qs_jerr read_outputs(qs_jwalk *w, qs_v2_env *env) {
  qs_jw_arr a;
  qs_jerr e = qs_jw_arr_begin(w, &a);
  env->outputs = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  if (e) return e;
  for (;;) {
    bool done;
    if ((e = qs_jw_arr_next(w, &a, &done))) return e;
    if (done) return QS_JOK;
    if ((e = read_output(w, env, a.count - 1))) return e;
  }
}

/* One member of the root object. */
static qs_jerr read_member(v2_walk *vw, qs_span k, bool esc) {
  qs_jwalk *w = &vw->w;
  qs_v2_env *env = vw->env;
  if (is(w, k, esc, "inputs")) return read_inputs(vw);
  if (is(w, k, esc, "parameters")) return read_params(w, env);
  if (is(w, k, esc, "outputs")) return read_outputs(w, env);
  if (is(w, k, esc, "id")) {
    bool sesc;
    qs_jerr e = qs_jw_str(w, &env->id_raw, &sesc);
    env->id = e == QS_JOK ? QS_V2_OK : QS_V2_BAD;
    return e == QS_JTYPE ? qs_jw_skip(w) : e;
  }
  return qs_jw_skip(w);
}

bool qs_v2_walk(qs_req *r, qs_api_ctx *ctx, const char *text, size_t len, size_t width, qs_v2_env *env) {
  /* JSON text never holds a raw NUL byte (jansson 2.14 read one as the end
   * of input in some places and skipped it in others). */
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    qs_reply_error(r, 400, "malformed JSON: NUL byte at byte %zu", (size_t)(nul - text));
    return false;
  }
  v2_walk vw = {.ctx = ctx, .width = width, .env = env};
  qs_jerr e = qs_jw_begin(&vw.w, text, len, &ctx->keys);
  for (;;) {
    qs_span k;
    bool esc, done = false;
    if (e == QS_JOK) e = qs_jw_key(&vw.w, &k, &esc, &done);
    if (e == QS_JOK && !done) e = read_member(&vw, k, esc);
    if (e != QS_JOK) {
      qs_reply_walk_error(r, &vw.w, e);
      return false;
    }
    if (done) return true;
  }
}
