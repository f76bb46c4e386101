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

/* Reads one member of an object (the key k, escaped or not) into into. */
typedef qs_jerr (*member_fn)(v2_walk *vw, void *into, qs_span k, bool esc);
/* Reads element i of an array into into. */
typedef qs_jerr (*element_fn)(v2_walk *vw, void *into, size_t i);

/* A member that should be an object: *st QS_V2_OK and each of its members
 * handed to fn, or QS_V2_BAD and the value skipped. */
static qs_jerr read_object(v2_walk *vw, int *st, member_fn fn, void *into) {
  qs_jwalk *w = &vw->w;
  qs_jw_obj o;
  qs_jerr e = qs_jw_obj_begin(w, &o);
  *st = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  for (;;) {
    qs_span k;
    bool esc, done = false;
    if (e == QS_JOK) e = qs_jw_obj_key(w, &o, &k, &esc, &done);
    if (e != QS_JOK || done) return e;
    e = fn(vw, into, k, esc);
  }
}

/* A member that should be an array: as read_object, element by element;
 * *count the elements. */
static qs_jerr read_array(v2_walk *vw, int *st, element_fn fn, void *into, size_t *count) {
  qs_jwalk *w = &vw->w;
  qs_jw_arr a = {0};
  qs_jerr e = qs_jw_arr_begin(w, &a);
  *st = e == QS_JTYPE ? QS_V2_BAD : QS_V2_OK;
  if (e == QS_JTYPE) return qs_jw_skip(w);
  for (;;) {
    bool done = false;
    if (e == QS_JOK) e = qs_jw_arr_next(w, &a, &done);
    *count = a.count;
    if (e != QS_JOK || done) return e;
    e = fn(vw, into, a.count - 1);
  }
}

/* A boolean member: *st QS_V2_OK with *v, or QS_V2_BAD (value skipped). */
static qs_jerr read_bool(qs_jwalk *w, int *st, bool *v) {
  qs_jerr e = qs_jw_bool(w, v);
  *st = e == QS_JOK ? QS_V2_OK : QS_V2_BAD;
  return e == QS_JTYPE ? qs_jw_skip(w) : e;
}

/* A string member: *st QS_V2_OK with its raw bytes, or QS_V2_BAD. */
static qs_jerr read_string(qs_jwalk *w, int *st, qs_span *raw) {
  bool esc;
  qs_jerr e = qs_jw_str(w, raw, &esc);
  *st = e == QS_JOK ? QS_V2_OK : QS_V2_BAD;
  return e == QS_JTYPE ? qs_jw_skip(w) : e;
}

/* A string member that must equal one of names: *which its index, -1 for
 * another string, -2 for another type (skipped). */
static qs_jerr read_choice(qs_jwalk *w, const char *const *names, int n, int *which) {
  qs_span raw;
  int st;
  qs_jerr e = read_string(w, &st, &raw);
  *which = st == QS_V2_OK ? -1 : -2;
  for (int i = 0; i < n && !e && st == QS_V2_OK; i++)
    if (qs_jw_key_equal(w->s + raw.off, raw.len, names[i], strlen(names[i]))) *which = i;
  return e;
}

/* inputs[0].shape[i]: the first two must be integers. */
typedef struct shape_in {
  qs_v2_env *env;
  bool ints;
} shape_in;

static qs_jerr shape_element(v2_walk *vw, void *into, size_t i) {
  shape_in *sh = into;
  int64_t v = 0;
  qs_jerr e = i < 2 ? qs_jw_int(&vw->w, &v) : QS_JTYPE;
  if (e == QS_JOK) *(i == 0 ? &sh->env->B : &sh->env->K) = v;
  if (e != QS_JTYPE) return e;
  if (i < 2) sh->ints = false;
  return qs_jw_skip(&vw->w);
}

/* inputs[0].parameters: binary_data_size, an integer >= 0. */
static qs_jerr tensor_param(v2_walk *vw, void *into, qs_span k, bool esc) {
  qs_v2_env *env = into;
  qs_jwalk *w = &vw->w;
  if (!is(w, k, esc, "binary_data_size")) return qs_jw_skip(w);
  qs_jerr e = qs_jw_int(w, &env->bds_val);
  env->bds = e == QS_JOK && env->bds_val >= 0 ? QS_V2_OK : QS_V2_BAD;
  return e == QS_JTYPE ? qs_jw_skip(w) : e;
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
static qs_jerr tensor_member(v2_walk *vw, void *into, qs_span k, bool esc) {
  qs_v2_env *env = into;
  qs_jwalk *w = &vw->w;
  if (is(w, k, esc, "datatype")) {
    static const char *const fp32[] = {"FP32"};
    int which;
    qs_jerr e = read_choice(w, fp32, 1, &which);
    env->dtype_ok = which == 0;
    return e;
  }
  if (is(w, k, esc, "shape")) {
    shape_in sh = {env, true};
    int st;
    size_t n = 0;
    qs_jerr e = read_array(vw, &st, shape_element, &sh, &n);
    env->shape_ok = st == QS_V2_OK && sh.ints && n == 2;
    return e;
  }
  if (is(w, k, esc, "parameters")) return read_object(vw, &env->tparams, tensor_param, env);
  if (is(w, k, esc, "data")) return read_data(vw);
  return qs_jw_skip(w);
}

static qs_jerr input_element(v2_walk *vw, void *into, size_t i) {
  qs_v2_env *env = into;
  if (i) return qs_jw_skip(&vw->w);
  int st;
  qs_jerr e = read_object(vw, &st, tensor_member, env);
  env->first_obj = st == QS_V2_OK;
  return e;
}

/* "parameters": baseline, mode, binary_data_output. */
static qs_jerr param_member(v2_walk *vw, void *into, qs_span k, bool esc) {
  qs_v2_env *env = into;
  qs_jwalk *w = &vw->w;
  if (is(w, k, esc, "baseline")) return read_bool(w, &env->baseline, &env->baseline_v);
  if (is(w, k, esc, "binary_data_output")) return read_bool(w, &env->bdo, &env->bdo_v);
  if (!is(w, k, esc, "mode")) return qs_jw_skip(w);
  static const char *const modes[] = {"static", "dynamic"};
  int which;
  qs_jerr e = read_choice(w, modes, 2, &which);
  env->mode = which >= 0 ? QS_V2_OK : QS_V2_BAD;
  env->dynamic_v = which == 1;
  return e;
}

/* One requested output. */
typedef struct v2_out {
  int name, params, bd;
  qs_span name_raw;
  bool bd_v;
} v2_out;

/* outputs[i].parameters: binary_data. */
static qs_jerr output_param(v2_walk *vw, void *into, qs_span k, bool esc) {
  v2_out *out = into;
  return is(&vw->w, k, esc, "binary_data") ? read_bool(&vw->w, &out->bd, &out->bd_v) : qs_jw_skip(&vw->w);
}

static qs_jerr output_member(v2_walk *vw, void *into, qs_span k, bool esc) {
  v2_out *out = into;
  if (is(&vw->w, k, esc, "name")) return read_string(&vw->w, &out->name, &out->name_raw);
  if (is(&vw->w, k, esc, "parameters")) return read_object(vw, &out->params, output_param, out);
  return qs_jw_skip(&vw->w);
}

/* outputs[i]; notes the first element that is wrong, in the order the
 * checks were always made: object with a "name", the name, its parameters,
 * binary_data. */
static qs_jerr output_element(v2_walk *vw, void *into, size_t i) {
  qs_v2_env *env = into;
  v2_out out = {0};
  int obj;
  qs_jerr e = read_object(vw, &obj, output_member, &out);
  if (e || env->out_err) return e;
  int err = QS_V2_OUT_FINE;
  if (obj != QS_V2_OK || out.name != QS_V2_OK)
    err = QS_V2_OUT_NONAME;
  else if (!qs_jw_key_equal(vw->w.s + out.name_raw.off, out.name_raw.len, "output", 6))
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

/* One member of the root object. */
static qs_jerr read_member(v2_walk *vw, qs_span k, bool esc) {
  qs_jwalk *w = &vw->w;
  qs_v2_env *env = vw->env;
  size_t n;
  if (is(w, k, esc, "inputs")) return read_array(vw, &env->inputs, input_element, env, &env->n_inputs);
  if (is(w, k, esc, "parameters")) return read_object(vw, &env->params, param_member, env);
  if (is(w, k, esc, "outputs")) return read_array(vw, &env->outputs, output_element, env, &n);
  if (is(w, k, esc, "id")) return read_string(w, &env->id, &env->id_raw);
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
