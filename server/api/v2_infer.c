/* v2_infer.c - POST /v2/models/{name}/infer (KServe v2 / Open Inference
 * Protocol): one FP32 input tensor of shape [B, K], its data as JSON (flat
 * or nested) or, with the binary tensor extension, as raw float32 after the
 * JSON header; one FP32 output [B, N], as JSON or raw bytes.
 *
 * Phases: split the body (JSON header, binary tail); walk the header once
 * without a tree (envelope.c: the numbers of "data" parsed into the
 * thread's scratch on the way); check what the walk found, in a fixed order
 * (the inputs, the tensor, the options, the shape against the model); take
 * the tensor's numbers; run the infer step; encode. A warm thread allocates
 * nothing for a request. */
#include <string.h>

#include "api/v2.h"
#include "base/config.h"
#include "base/log.h"

/* The body: the JSON header and, with the binary extension, the tail. */
typedef struct v2_body {
  const char *json, *bin; /* bin NULL without the extension */
  size_t json_len, bin_len;
} v2_body;

/* What the request asks, once checked. */
typedef struct v2_in {
  const char *id;         /* decoded, in the thread's string scratch */
  size_t B;
  bool baseline, dynamic, bin_out;
} v2_in;

/* Binary tensor data extension: the first Inference-Header-Content-Length
 * bytes are the JSON header, the rest the tensors' raw bytes. */
static bool split_body(qs_req *r, v2_body *b) {
  *b = (v2_body){.json = r->body, .json_len = r->body_len};
  if (r->v2_bin) {
    if (r->v2_hlen_bad) {
      qs_reply_error(r, 400, "Inference-Header-Content-Length must be a byte count");
      return false;
    }
    if (!r->body || r->v2_hlen > r->body_len) {
      qs_reply_error(r, 400, "Inference-Header-Content-Length %zu is past the body's %zu bytes", r->v2_hlen,
                     r->body_len);
      return false;
    }
    b->json_len = r->v2_hlen;
    b->bin = r->body + r->v2_hlen;
    b->bin_len = r->body_len - r->v2_hlen;
  }
  if (!r->body || b->json_len == 0) {
    qs_reply_error(r, 400, "empty body: send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
    return false;
  }
  return true;
}

#define ONE_TENSOR "\"inputs\" must be an array of exactly one tensor"

/* "inputs" and "id". A present but wrong "inputs" was always reported
 * first (it was located before the rest was parsed). */
static bool check_inputs(qs_req *r, const qs_v2_env *env) {
  bool one = env->inputs == QS_V2_OK && env->n_inputs == 1;
  if (env->inputs == QS_V2_BAD || (env->inputs == QS_V2_OK && !one)) {
    qs_reply_error(r, 400, ONE_TENSOR);
    return false;
  }
  if (one && !env->first_obj) {
    qs_reply_error(r, 400, "\"inputs\"[0] must be an object");
    return false;
  }
  if (env->id == QS_V2_BAD) {
    qs_reply_error(r, 400, "\"id\" must be a string");
    return false;
  }
  if (env->inputs == QS_V2_ABSENT) {
    qs_reply_error(r, 400, ONE_TENSOR);
    return false;
  }
  return true;
}

/* The input tensor's datatype, shape and parameters, and where its data
 * is: "data" or the binary tail, exactly one of them. */
static bool check_tensor(qs_req *r, const qs_v2_env *env, const v2_body *b) {
  const char *err = NULL;
  bool bds = env->bds == QS_V2_OK, found = env->data != QS_V2_NO_DATA;
  if (!env->dtype_ok)
    err = "input datatype must be \"FP32\"";
  else if (!env->shape_ok)
    err = "input shape must be [batch, features] (two integers)";
  else if (env->tparams == QS_V2_BAD)
    err = "input \"parameters\" must be an object";
  else if (env->bds == QS_V2_BAD)
    err = "\"binary_data_size\" must be a byte count";
  else if (bds && found)
    err = "input tensor has both \"data\" and \"binary_data_size\"";
  else if (!found && !bds)
    err = "input tensor has no \"data\" (nor \"binary_data_size\")";
  else if (bds && !b->bin)
    err = "\"binary_data_size\" needs the Inference-Header-Content-Length header";
  if (err) {
    qs_reply_error(r, 400, "%s", err);
    return false;
  }
  if (!bds && b->bin_len) {
    qs_reply_error(r, 400, "%zu bytes after the JSON header, but no input has \"binary_data_size\"", b->bin_len);
    return false;
  }
  return true;
}

/* "outputs": only the one output, "output", exists. */
static bool check_outputs(qs_req *r, qs_api_ctx *ctx, const qs_v2_env *env) {
  size_t i = env->out_err_idx;
  const char *name;
  switch (env->out_err) {
    case QS_V2_OUT_NONAME:
      qs_reply_error(r, 400, "\"outputs\"[%zu] must be an object with a \"name\"", i);
      return false;
    case QS_V2_OUT_UNKNOWN:
      name = qs_api_string(ctx, r->body + env->out_err_name.off, env->out_err_name.len);
      if (!name)
        qs_reply_error(r, 503, "out of memory");
      else
        qs_reply_error(r, 400, "unknown output '%s' (the model has one: \"output\")", name);
      return false;
    case QS_V2_OUT_PARAMS:
      qs_reply_error(r, 400, "\"outputs\"[%zu].parameters must be an object", i);
      return false;
    case QS_V2_OUT_BD:
      qs_reply_error(r, 400, "\"binary_data\" must be true or false");
      return false;
    default: return true;
  }
}

/* "parameters" (baseline, mode, binary_data_output) and "outputs": whether
 * the answer's output travels as raw bytes is outputs[].parameters.
 * binary_data (the last one given), else binary_data_output. */
static bool check_options(qs_req *r, qs_api_ctx *ctx, const qs_v2_env *env, v2_in *in) {
  const char *err = NULL;
  if (env->params == QS_V2_BAD)
    err = "\"parameters\" must be an object";
  else if (env->baseline == QS_V2_BAD)
    err = "\"baseline\" must be true or false";
  else if (env->mode == QS_V2_BAD)
    err = "\"mode\" must be \"static\" or \"dynamic\"";
  else if (env->bdo == QS_V2_BAD)
    err = "\"binary_data_output\" must be true or false";
  else if (env->outputs == QS_V2_BAD)
    err = "\"outputs\" must be an array";
  if (err) {
    qs_reply_error(r, 400, "%s", err);
    return false;
  }
  if (!check_outputs(r, ctx, env)) return false;
  in->baseline = env->baseline == QS_V2_OK ? env->baseline_v : true;
  in->dynamic = env->mode == QS_V2_OK && env->dynamic_v;
  in->bin_out = env->bd_set ? env->bd_v : env->bdo == QS_V2_OK && env->bdo_v;
  return true;
}

/* The shape against the model and the caps. */
static bool check_shape(qs_req *r, const qs_v2_env *in, size_t width) {
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

/* "data" the walk could not parse (or stopped at its caps): parsed again
 * with the shape's caps, so the error is the one the shape calls for. At
 * most the numbers the shape holds: one more is an error of the data, not
 * of the request's size. */
static bool reparse_data(qs_req *r, qs_api_ctx *ctx, qs_v2_env *env, size_t width) {
  size_t nb = (size_t)env->B, cap = qs_json_numbers_bound(env->data_span.len), errpos = 0;
  if (cap > nb * width) cap = nb * width;
  float *buf = qs_api_floats(ctx, cap);
  if (!buf) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
  qs_jerr e = qs_json_parse_matrix(r->body + env->data_span.off, env->data_span.len, 0, nb, buf, cap, &env->rows,
                                   &env->cols, &errpos);
  if (e == QS_JROWS) {
    qs_reply_error(r, 422, "data holds more numbers than shape [%zu, %zu]", nb, width);
    return false;
  }
  if (e != QS_JOK) {
    qs_reply_matrix_error(r, e, 0, nb, errpos);
    return false;
  }
  env->x = buf;
  return true;
}

/* The tensor's numbers, nb rows of width: from the binary tail (copied
 * aligned into the scratch) or as parsed from "data". */
static bool take_data(qs_req *r, qs_api_ctx *ctx, qs_v2_env *env, const v2_body *b, size_t width,
                      const float **x) {
  size_t nb = (size_t)env->B;
  if (env->bds == QS_V2_OK) {
    /* Sizes compared as 64-bit numbers: B <= max_batch and K <= QAT_MAX_DIM
     * keep nb * width * 4 far from overflow. */
    uint64_t want = (uint64_t)nb * width * sizeof(float);
    if ((uint64_t)env->bds_val != want || b->bin_len != want) {
      qs_reply_error(r, 422, "binary_data_size %lld and %zu bytes of tensor data, but shape [%zu, %zu] of FP32 is %llu bytes",
                     (long long)env->bds_val, b->bin_len, nb, width, (unsigned long long)want);
      return false;
    }
    return qs_binary_floats(r, ctx, b->bin, nb * width, width, x);
  }
  if (env->data == QS_V2_DATA_SPAN) {
    if (!reparse_data(r, ctx, env, width)) return false;
  } else if (env->rows > nb || env->rows * env->cols > nb * width) {
    /* What the parse with the shape's caps would have stopped at. */
    qs_reply_error(r, 422, "data holds more numbers than shape [%zu, %zu]", nb, width);
    return false;
  }
  size_t rows = env->rows, cols = env->cols;
  if (!((rows == 1 && cols == nb * width) || (rows == nb && cols == width))) {
    qs_reply_error(r, 422, "data does not match shape [%zu, %zu]", nb, width);
    return false;
  }
  *x = env->x;
  return true;
}

/* The body into *in and the input floats; false with the error reply set. */
static bool decode(qs_req *r, qs_api_ctx *ctx, const v2_body *b, size_t width, v2_in *in, const float **x) {
  qs_v2_env env = {0};
  if (!qs_v2_walk(r, ctx, b->json, b->json_len, width, &env) || !check_inputs(r, &env) ||
      !check_tensor(r, &env, b) || !check_options(r, ctx, &env, in) || !check_shape(r, &env, width) ||
      !take_data(r, ctx, &env, b, width, x))
    return false;
  in->B = (size_t)env.B;
  in->id = NULL;
  if (env.id == QS_V2_OK && !(in->id = qs_api_string(ctx, r->body + env.id_raw.off, env.id_raw.len))) {
    qs_reply_error(r, 503, "out of memory");
    return false;
  }
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

void qs_handle_v2_infer(qs_req *r) {
  qs_test_delay();
  v2_body b;
  if (!split_body(r, &b)) return;
  qs_api_ctx *ctx = qs_api_ctx_get();
  if (!ctx) {
    qs_reply_error(r, 503, "out of memory");
    return;
  }
  qs_model *m = qs_v2_model_or_404(r);
  v2_in in;
  const float *x = NULL;
  size_t width = m ? qat_model_in_dim(m->model) : 0;
  if (!m || !decode(r, ctx, &b, width, &in, &x)) goto done;
  qs_infer_req req = {.x = x, .rows = in.B, .cols = width, .baseline = in.baseline, .dynamic = in.dynamic,
                      .id = in.id, .t0_ns = r->t0_ns};
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
  qs_model_release(m);
  qs_api_ctx_done(ctx);
}
