/* kserve.c - the KServe v2 / Open Inference Protocol subset: server and
 * model metadata, model readiness, and infer with one FP32 input tensor of
 * shape [B, K] (data flat or nested), answering one FP32 output [B, N]. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/config.h"
#include "base/log.h"

#define QS_PLATFORM "qatserve_int8"

void qs_handle_v2_server(qs_req *r) {
  r->status = 200;
  qs_buf_printf(&r->out, "{\"name\":\"%s\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\"]}\n", QS_NAME,
                QAT_VERSION);
}

static qs_model *model_or_404(qs_req *r) {
  qs_model *m = NULL;
  qs_err err;
  if (!qs_infer_model(r->name, "in the URL", &m, &err)) {
    qs_reply_err(r, &err);
    return NULL;
  }
  r->model_slot = m->metrics_slot;
  return m;
}

void qs_handle_v2_model(qs_req *r) {
  qs_model *m = model_or_404(r);
  if (!m) return;
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"name\":");
  qs_buf_json_str(b, m->name);
  qs_buf_printf(b,
                ",\"versions\":[\"%llu\"],\"platform\":\"" QS_PLATFORM "\","
                "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1,%u]}],"
                "\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[-1,%u]}]}\n",
                (unsigned long long)m->version, qat_model_in_dim(m->model),
                qat_model_out_dim(m->model));
  qs_model_release(m);
}

void qs_handle_v2_model_ready(qs_req *r) {
  qs_model *m = model_or_404(r);
  if (!m) return;
  r->status = 200;
  qs_buf_puts(&r->out, "{\"name\":");
  qs_buf_json_str(&r->out, m->name);
  qs_buf_puts(&r->out, ",\"ready\":true}\n");
  qs_model_release(m);
}

/* Finds inputs[0].data in the body; fills *data (absolute span). */
static bool locate_data(qs_req *r, qs_span *data, bool *found) {
  qs_span inputs;
  bool have = false;
  *found = false;
  qs_jerr e = qs_json_find_key(r->body, r->body_len, "inputs", &inputs, &have);
  if (e != QS_JOK) {
    qs_reply_error(r, 400, "%s", e == QS_JDEPTH ? "JSON nested too deeply" : "malformed JSON");
    return false;
  }
  if (!have) return true; /* jansson decides what is wrong with the body */
  size_t count = 0;
  qs_span first;
  e = qs_json_array_first(r->body + inputs.off, inputs.len, &count, &first);
  if (e != QS_JOK || count != 1) {
    qs_reply_error(r, 400, "\"inputs\" must be an array of exactly one tensor");
    return false;
  }
  if (r->body[inputs.off + first.off] != '{') {
    qs_reply_error(r, 400, "\"inputs\"[0] must be an object");
    return false;
  }
  qs_span d;
  e = qs_json_find_key(r->body + inputs.off + first.off, first.len, "data", &d, &have);
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

static void qs_v2_infer_json(qs_req *r, const char *bin, size_t bin_len);

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

void qs_handle_v2_infer(qs_req *r) {
  qs_test_delay();
  /* Binary tensor data extension: the first Inference-Header-Content-Length
   * bytes are the JSON header, the rest the tensors' raw bytes. The JSON
   * work below sees only the header (body_len is cut to it, then restored). */
  size_t full_len = r->body_len;
  const char *bin = NULL;
  size_t bin_len = 0;
  if (r->v2_bin && r->v2_hlen_bad) {
    qs_reply_error(r, 400, "Inference-Header-Content-Length must be a byte count");
    return;
  }
  if (r->v2_bin) {
    if (!r->body || r->v2_hlen > r->body_len) {
      qs_reply_error(r, 400, "Inference-Header-Content-Length %zu is past the body's %zu bytes",
                     r->v2_hlen, r->body_len);
      return;
    }
    bin = r->body + r->v2_hlen;
    bin_len = full_len - r->v2_hlen;
    r->body_len = r->v2_hlen;
  }
  qs_v2_infer_json(r, bin, bin_len);
  r->body_len = full_len;
}

static void qs_v2_infer_json(qs_req *r, const char *bin, size_t bin_len) {
  if (!r->body || r->body_len == 0) {
    qs_reply_error(r, 400, "empty body: send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
    return;
  }
  qs_model *m = model_or_404(r);
  if (!m) return;
  qs_span sp = {0, 0};
  bool found = false;
  json_t *root = NULL;
  float *x = NULL;
  if (!locate_data(r, &sp, &found)) goto done;
  root = qs_parse_envelope(r, sp, found);
  if (!root) goto done;
  json_t *id = json_object_get(root, "id");
  if (id && !json_is_string(id)) {
    qs_reply_error(r, 400, "\"id\" must be a string");
    goto done;
  }
  json_t *inputs = json_object_get(root, "inputs");
  if (!json_is_array(inputs) || json_array_size(inputs) != 1 ||
      !json_is_object(json_array_get(inputs, 0))) {
    qs_reply_error(r, 400, "\"inputs\" must be an array of exactly one tensor");
    goto done;
  }
  json_t *t = json_array_get(inputs, 0);
  const char *dt = json_string_value(json_object_get(t, "datatype"));
  if (!dt || strcmp(dt, "FP32") != 0) {
    qs_reply_error(r, 400, "input datatype must be \"FP32\"");
    goto done;
  }
  json_t *shape = json_object_get(t, "shape");
  if (!json_is_array(shape) || json_array_size(shape) != 2 ||
      !json_is_integer(json_array_get(shape, 0)) || !json_is_integer(json_array_get(shape, 1))) {
    qs_reply_error(r, 400, "input shape must be [batch, features] (two integers)");
    goto done;
  }
  json_t *tparams = json_object_get(t, "parameters");
  if (tparams && !json_is_object(tparams)) {
    qs_reply_error(r, 400, "input \"parameters\" must be an object");
    goto done;
  }
  json_t *bds = tparams ? json_object_get(tparams, "binary_data_size") : NULL;
  if (bds && (!json_is_integer(bds) || json_integer_value(bds) < 0)) {
    qs_reply_error(r, 400, "\"binary_data_size\" must be a byte count");
    goto done;
  }
  if (bds && found) {
    qs_reply_error(r, 400, "input tensor has both \"data\" and \"binary_data_size\"");
    goto done;
  }
  if (!found && !bds) {
    qs_reply_error(r, 400, "input tensor has no \"data\" (nor \"binary_data_size\")");
    goto done;
  }
  if (bds && !bin) {
    qs_reply_error(r, 400, "\"binary_data_size\" needs the Inference-Header-Content-Length header");
    goto done;
  }
  if (!bds && bin_len) {
    qs_reply_error(r, 400, "%zu bytes after the JSON header, but no input has \"binary_data_size\"", bin_len);
    goto done;
  }
  bool baseline = true, dynamic = false, bin_out = false;
  json_t *params = json_object_get(root, "parameters");
  if (params && !json_is_object(params)) {
    qs_reply_error(r, 400, "\"parameters\" must be an object");
    goto done;
  }
  if (!qs_read_options(r, params, &baseline, &dynamic)) goto done;
  if (!want_binary_output(r, root, params, &bin_out)) goto done;
  json_int_t B = json_integer_value(json_array_get(shape, 0));
  json_int_t K = json_integer_value(json_array_get(shape, 1));
  size_t in = qat_model_in_dim(m->model), out = qat_model_out_dim(m->model);
  if (B < 1 || K < 1) {
    qs_reply_error(r, 400, "input shape dimensions must be positive");
    goto done;
  }
  if ((size_t)K != in || (uint64_t)K > QAT_MAX_DIM) {
    qs_reply_error(r, 422, "wrong input width: shape [%lld, %lld], model wants [-1, %zu]",
                   (long long)B, (long long)K, in);
    goto done;
  }
  if ((uint64_t)B > qs_g.cfg.max_batch) {
    qs_reply_error(r, 413, "batch larger than %zu rows", qs_g.cfg.max_batch);
    goto done;
  }
  size_t rows = 0, cols = 0, nb = (size_t)B;
  (void)rows, (void)cols;
  if (bds) {
    /* Sizes compared as 64-bit numbers: B <= max_batch and K <= QAT_MAX_DIM
     * keep nb * in * 4 far from overflow. */
    uint64_t want = (uint64_t)nb * in * sizeof(float);
    if ((uint64_t)json_integer_value(bds) != want || bin_len != want) {
      qs_reply_error(r, 422, "binary_data_size %lld and %zu bytes of tensor data, but shape [%zu, %zu] of FP32 is %llu bytes",
                     (long long)json_integer_value(bds), bin_len, nb, in, (unsigned long long)want);
      goto done;
    }
    if (!qs_binary_floats(r, bin, nb * in, in, &x)) goto done;
  } else if (!qs_parse_batch(r, r->body + sp.off, sp.len, 0, nb, nb * in, &x, &rows, &cols)) {
    if (r->status == 413) qs_reply_error(r, 422, "data holds more numbers than shape [%zu, %zu]", nb, in);
    goto done;
  }
  if (!bds && !((rows == 1 && cols == nb * in) || (rows == nb && cols == in))) {
    qs_reply_error(r, 422, "data does not match shape [%zu, %zu]", nb, in);
    goto done;
  }
  qs_infer_req req = {.x = x, .rows = nb, .cols = in, .baseline = baseline, .dynamic = dynamic,
                      .t0_ns = r->t0_ns};
  qs_infer_res run;
  qs_err err;
  if (!qs_infer_run(m, &req, &run, &err)) {
    qs_reply_err(r, &err);
    goto done;
  }
  m = NULL; /* the result holds the reference now */
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"model_name\":");
  qs_buf_json_str(b, run.m->name);
  qs_buf_printf(b, ",\"model_version\":\"%llu\"", (unsigned long long)run.m->version);
  if (id) {
    qs_buf_puts(b, ",\"id\":");
    qs_buf_json_str(b, json_string_value(id));
  }
  double us8 = (double)run.ns_int8 * 1e-3, us32 = (double)run.ns_fp32 * 1e-3;
  qs_buf_printf(b, ",\"parameters\":{\"mode\":\"%s\",\"int8_us\":%.3f", dynamic ? "dynamic" : "static",
                us8);
  if (baseline) {
    qs_buf_printf(b, ",\"fp32_us\":%.3f,\"speedup\":%.3f,\"max_abs_diff\":", us32,
                  us8 > 0 ? us32 / us8 : 0.0);
    qs_buf_float(b, run.max_abs_diff);
    qs_buf_printf(b, ",\"argmax_agreement\":%.6g", (double)run.argmax_agree / (double)nb);
  }
  if (run.batch_rows)
    qs_buf_printf(b, ",\"queue_us\":%.3f,\"batch_rows\":%zu", (double)run.ns_queue * 1e-3, run.batch_rows);
  qs_buf_printf(b, ",\"total_us\":%.3f}", (double)(qs_now_ns() - r->t0_ns) * 1e-3);
  qs_buf_printf(b, ",\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[%zu,%zu],", nb, out);
  if (bin_out) {
    /* JSON header, then the output's raw float32 bytes. */
    qs_buf_printf(b, "\"parameters\":{\"binary_data_size\":%zu}}]}", nb * out * sizeof(float));
    size_t hlen = b->len;
    qs_buf_put(b, (const char *)run.y8, nb * out * sizeof(float));
    r->ctype = "application/octet-stream";
    qs_req_header(r, "Inference-Header-Content-Length", "%zu", hlen);
  } else {
    qs_buf_puts(b, "\"data\":");
    qs_buf_float_array(b, run.y8, nb * out);
    qs_buf_puts(b, "}]}\n");
  }
  qs_infer_res_done(&run);
done:
  free(x);
  json_decref(root);
  qs_model_release(m);
}
