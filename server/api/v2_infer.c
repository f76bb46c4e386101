/* v2_infer.c - POST /v2/models/{name}/infer (KServe v2 / Open Inference
 * Protocol): one FP32 input tensor of shape [B, K], its data as JSON (flat
 * or nested) or, with the binary tensor extension, as raw float32 after the
 * JSON header; one FP32 output [B, N], as JSON or raw bytes.
 *
 * Phases: split the body (JSON header, binary tail), decode the envelope
 * (jansson, with the number array cut out: the v2 envelope is nested and
 * small), decode the tensor data into the thread's scratch, run the infer
 * step, encode. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/config.h"
#include "base/log.h"

/* Finds inputs[0].data in the body; fills *data (absolute span). */
static bool locate_data(qs_req *r, const char *text, size_t len, qs_span *data, bool *found) {
  qs_span inputs;
  bool have = false;
  *found = false;
  qs_jerr e = qs_json_find_key(text, len, "inputs", &inputs, &have);
  if (e != QS_JOK) {
    qs_reply_error(r, 400, "%s", e == QS_JDEPTH ? "JSON nested too deeply" : "malformed JSON");
    return false;
  }
  if (!have) return true; /* jansson decides what is wrong with the body */
  size_t count = 0;
  qs_span first;
  e = qs_json_array_first(text + inputs.off, inputs.len, &count, &first);
  if (e != QS_JOK || count != 1) {
    qs_reply_error(r, 400, "\"inputs\" must be an array of exactly one tensor");
    return false;
  }
  if (text[inputs.off + first.off] != '{') {
    qs_reply_error(r, 400, "\"inputs\"[0] must be an object");
    return false;
  }
  qs_span d;
  e = qs_json_find_key(text + inputs.off + first.off, first.len, "data", &d, &have);
  if (e != QS_JOK) {
    qs_reply_error(r, 400, "malformed JSON");
    return false;
  }
  if (have) {
    data->off = inputs.off + first.off + d.off;
    data->len = d.len;
    *found = true;
  }
  return true;
}

/* Binary tensor data extension: whether the answer's output travels as raw
 * bytes: outputs[].parameters.binary_data, else the request's
 * parameters.binary_data_output. Only the one output, "output", exists. */
static bool want_binary_output(qs_req *r, json_t *root, json_t *params, bool *bin) {
  json_t *bdo = params ? json_object_get(params, "binary_data_output") : NULL;
  if (bdo && !json_is_boolean(bdo)) {
    qs_reply_error(r, 400, "\"binary_data_output\" must be true or false");
    return false;
  }
  *bin = json_is_true(bdo);
  json_t *outs = json_object_get(root, "outputs");
  if (!outs) return true;
  if (!json_is_array(outs)) {
    qs_reply_error(r, 400, "\"outputs\" must be an array");
    return false;
  }
  size_t i;
  json_t *o;
  json_array_foreach(outs, i, o) {
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!json_is_object(o) || !name) {
      qs_reply_error(r, 400, "\"outputs\"[%zu] must be an object with a \"name\"", i);
      return false;
    }
    if (strcmp(name, "output") != 0) {
      qs_reply_error(r, 400, "unknown output '%s' (the model has one: \"output\")", name);
      return false;
    }
    json_t *op = json_object_get(o, "parameters");
    json_t *bd = op ? json_object_get(op, "binary_data") : NULL;
    if (op && !json_is_object(op)) {
      qs_reply_error(r, 400, "\"outputs\"[%zu].parameters must be an object", i);
      return false;
    }
    if (bd && !json_is_boolean(bd)) {
      qs_reply_error(r, 400, "\"binary_data\" must be true or false");
      return false;
    }
    if (bd) *bin = json_is_true(bd);
  }
  return true;
}


/* What the envelope says. */
typedef struct v2_in {
  json_t *root;
  const char *id;     /* inside root */
  json_int_t B, K;
  json_int_t bds;     /* binary_data_size, -1 when absent */
  bool found;         /* inputs[0] has "data" */
  qs_span data;       /* its span in the JSON header */
  bool baseline, dynamic, bin_out;
} v2_in;

/* The input tensor's datatype, shape and parameters. */
static bool decode_tensor(qs_req *r, json_t *t, v2_in *in) {
  const char *dt = json_string_value(json_object_get(t, "datatype"));
  if (!dt || strcmp(dt, "FP32") != 0) {
    qs_reply_error(r, 400, "input datatype must be \"FP32\"");
    return false;
  }
  json_t *shape = json_object_get(t, "shape");
  if (!json_is_array(shape) || json_array_size(shape) != 2 ||
      !json_is_integer(json_array_get(shape, 0)) || !json_is_integer(json_array_get(shape, 1))) {
    qs_reply_error(r, 400, "input shape must be [batch, features] (two integers)");
    return false;
  }
  in->B = json_integer_value(json_array_get(shape, 0));
  in->K = json_integer_value(json_array_get(shape, 1));
  json_t *tparams = json_object_get(t, "parameters");
  if (tparams && !json_is_object(tparams)) {
    qs_reply_error(r, 400, "input \"parameters\" must be an object");
    return false;
  }
  json_t *bds = tparams ? json_object_get(tparams, "binary_data_size") : NULL;
  if (bds && (!json_is_integer(bds) || json_integer_value(bds) < 0)) {
    qs_reply_error(r, 400, "\"binary_data_size\" must be a byte count");
    return false;
  }
  in->bds = bds ? json_integer_value(bds) : -1;
  return true;
}

/* The JSON header: everything but the number array. */
static bool decode_envelope(qs_req *r, const char *json, size_t len, bool bin, size_t bin_len, v2_in *in) {
  if (!locate_data(r, json, len, &in->data, &in->found)) return false;
  in->root = qs_parse_envelope(r, json, len, in->data, in->found);
  if (!in->root) return false;
  json_t *id = json_object_get(in->root, "id");
  if (id && !json_is_string(id)) {
    qs_reply_error(r, 400, "\"id\" must be a string");
    return false;
  }
  in->id = id ? json_string_value(id) : NULL;
  json_t *inputs = json_object_get(in->root, "inputs");
  if (!json_is_array(inputs) || json_array_size(inputs) != 1 ||
      !json_is_object(json_array_get(inputs, 0))) {
    qs_reply_error(r, 400, "\"inputs\" must be an array of exactly one tensor");
    return false;
  }
  if (!decode_tensor(r, json_array_get(inputs, 0), in)) return false;
  bool bds = in->bds >= 0;
  if (bds && in->found) {
    qs_reply_error(r, 400, "input tensor has both \"data\" and \"binary_data_size\"");
    return false;
  }
  if (!in->found && !bds) {
    qs_reply_error(r, 400, "input tensor has no \"data\" (nor \"binary_data_size\")");
    return false;
  }
  if (bds && !bin) {
    qs_reply_error(r, 400, "\"binary_data_size\" needs the Inference-Header-Content-Length header");
    return false;
  }
  if (!bds && bin_len) {
    qs_reply_error(r, 400, "%zu bytes after the JSON header, but no input has \"binary_data_size\"", bin_len);
    return false;
  }
  json_t *params = json_object_get(in->root, "parameters");
  if (params && !json_is_object(params)) {
    qs_reply_error(r, 400, "\"parameters\" must be an object");
    return false;
  }
  if (!qs_read_options(r, params, &in->baseline, &in->dynamic)) return false;
  return want_binary_output(r, in->root, params, &in->bin_out);
}

/* The shape against the model and the caps. */
static bool check_shape(qs_req *r, const v2_in *in, size_t width) {
  if (in->B < 1 || in->K < 1) {
    qs_reply_error(r, 400, "input shape dimensions must be positive");
    return false;
  }
  if ((size_t)in->K != width || (uint64_t)in->K > QAT_MAX_DIM) {
    qs_reply_error(r, 422, "wrong input width: shape [%lld, %lld], model wants [-1, %zu]", (long long)in->B,
                   (long long)in->K, width);
    return false;
  }
  if ((uint64_t)in->B > qs_g.cfg.max_batch) {
    qs_reply_error(r, 413, "batch larger than %zu rows", qs_g.cfg.max_batch);
    return false;
  }
  return true;
}

/* The tensor's numbers into the thread's scratch: nb rows of width. */
static bool decode_data(qs_req *r, qs_api_ctx *ctx, const v2_in *in, const char *json, const char *bin,
                        size_t bin_len, size_t width, const float **x) {
  size_t nb = (size_t)in->B;
  if (in->bds >= 0) {
    /* Sizes compared as 64-bit numbers: B <= max_batch and K <= QAT_MAX_DIM
     * keep nb * width * 4 far from overflow. */
    uint64_t want = (uint64_t)nb * width * sizeof(float);
    if ((uint64_t)in->bds != want || bin_len != want) {
      qs_reply_error(r, 422, "binary_data_size %lld and %zu bytes of tensor data, but shape [%zu, %zu] of FP32 is %llu bytes",
                     (long long)in->bds, bin_len, nb, width, (unsigned long long)want);
      return false;
    }
    return qs_binary_floats(r, ctx, bin, nb * width, width, x);
  }
  /* At most the numbers the shape holds: one more is an error of the
   * data, not of the request's size. */
  size_t cap = qs_json_numbers_bound(in->data.len);
  if (cap > nb * width) cap = nb * width;
  float *buf = qs_api_floats(ctx, cap);
  if (!buf) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  size_t rows = 0, cols = 0, errpos = 0;
  qs_jerr e = qs_json_parse_matrix(json + in->data.off, in->data.len, 0, nb, buf, cap, &rows, &cols, &errpos);
  if (e == QS_JROWS) {
    qs_reply_error(r, 422, "data holds more numbers than shape [%zu, %zu]", nb, width);
    return false;
  }
  if (e != QS_JOK) {
    qs_reply_matrix_error(r, e, 0, nb, errpos);
    return false;
  }
  if (!((rows == 1 && cols == nb * width) || (rows == nb && cols == width))) {
    qs_reply_error(r, 422, "data does not match shape [%zu, %zu]", nb, width);
    return false;
  }
  *x = buf;
  return true;
}

static void encode(qs_req *r, const qs_infer_res *res, const v2_in *in) {
  size_t nb = res->rows, out = res->out;
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"model_name\":");
  qs_buf_json_str(b, res->m->name);
  qs_buf_printf(b, ",\"model_version\":\"%llu\"", (unsigned long long)res->m->version);
  if (in->id) {
    qs_buf_puts(b, ",\"id\":");
    qs_buf_json_str(b, in->id);
  }
  qs_summary s;
  qs_infer_summary(res, r->t0_ns, &s);
  qs_buf_printf(b, ",\"parameters\":{\"mode\":\"%s\",\"int8_us\":%.3f", res->dynamic ? "dynamic" : "static",
                s.int8_us);
  if (s.baseline) {
    qs_buf_printf(b, ",\"fp32_us\":%.3f,\"speedup\":%.3f,\"max_abs_diff\":", s.fp32_us, s.speedup);
    qs_buf_float(b, s.max_abs_diff);
    qs_buf_printf(b, ",\"argmax_agreement\":%.6g", s.argmax_agreement);
  }
  qs_buf_printf(b, ",\"total_us\":%.3f}", s.total_us);
  qs_buf_printf(b, ",\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[%zu,%zu],", nb, out);
  if (in->bin_out) {
    /* JSON header, then the output's raw float32 bytes. */
    qs_buf_printf(b, "\"parameters\":{\"binary_data_size\":%zu}}]}", nb * out * sizeof(float));
    size_t hlen = b->len;
    qs_buf_put(b, (const char *)res->y8, nb * out * sizeof(float));
    r->ctype = "application/octet-stream";
    qs_req_header(r, "Inference-Header-Content-Length", "%zu", hlen);
  } else {
    qs_buf_puts(b, "\"data\":");
    qs_buf_float_array(b, res->y8, nb * out);
    qs_buf_puts(b, "}]}\n");
  }
}

/* Binary tensor data extension: the first Inference-Header-Content-Length
 * bytes are the JSON header, the rest the tensors' raw bytes. */
static bool split_body(qs_req *r, size_t *json_len, const char **bin, size_t *bin_len) {
  *json_len = r->body_len;
  *bin = NULL;
  *bin_len = 0;
  if (!r->v2_bin) return true;
  if (r->v2_hlen_bad) {
    qs_reply_error(r, 400, "Inference-Header-Content-Length must be a byte count");
    return false;
  }
  if (!r->body || r->v2_hlen > r->body_len) {
    qs_reply_error(r, 400, "Inference-Header-Content-Length %zu is past the body's %zu bytes", r->v2_hlen,
                   r->body_len);
    return false;
  }
  *json_len = r->v2_hlen;
  *bin = r->body + r->v2_hlen;
  *bin_len = r->body_len - r->v2_hlen;
  return true;
}

void qs_handle_v2_infer(qs_req *r) {
  qs_test_delay();
  size_t json_len;
  const char *bin;
  size_t bin_len;
  if (!split_body(r, &json_len, &bin, &bin_len)) return;
  if (!r->body || json_len == 0) {
    qs_reply_error(r, 400, "empty body: send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
    return;
  }
  qs_api_ctx *ctx = qs_api_ctx_get();
  if (!ctx) {
    qs_reply_error(r, 503, "out of memory");
    return;
  }
  qs_model *m = qs_v2_model_or_404(r);
  if (!m) return;
  v2_in in = {.baseline = true, .bds = -1};
  const float *x = NULL;
  size_t width = qat_model_in_dim(m->model);
  if (!decode_envelope(r, r->body, json_len, bin != NULL, bin_len, &in) || !check_shape(r, &in, width) ||
      !decode_data(r, ctx, &in, r->body, bin, bin_len, width, &x))
    goto done;
  qs_infer_req req = {.x = x, .rows = (size_t)in.B, .cols = width, .baseline = in.baseline,
                      .dynamic = in.dynamic, .id = in.id, .t0_ns = r->t0_ns};
  qs_infer_res res;
  qs_err err;
  if (!qs_infer_run(m, &req, &res, &err)) {
    qs_reply_err(r, &err);
    goto done;
  }
  m = NULL; /* the result holds the reference now */
  encode(r, &res, &in);
  qs_infer_res_done(&res);
done:
  json_decref(in.root);
  qs_model_release(m);
  qs_api_ctx_done(ctx);
}
