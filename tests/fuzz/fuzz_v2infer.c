/* fuzz_v2infer.c - POST /v2/models/{name}/infer's body parser and handler,
 * without HTTP.
 *
 * Input: the model name from the URL, a newline, then the body. Names that
 * http.c's router would refuse (qs_name_valid) are skipped, as the handler
 * never sees them. Checks, besides ASan/UBSan:
 *   - every reply is JSON with a documented status; errors are {"error"};
 *   - the decoder walks the body without a tree (envelope.c); jansson is
 *     the oracle here;
 *   - a 200 means jansson accepts the body, and the reply's single FP32
 *     output has shape [B, out_dim] and B * out_dim finite numbers, and
 *     echoes the request's id;
 *   - differential: a body an independent jansson reading finds valid (one
 *     FP32 tensor of shape [B, K] with K the model's width, B <= --max-batch,
 *     data flat or nested holding B*K float-sized numbers, id a string,
 *     parameters an object with valid options, member names possibly
 *     written with escapes) must get 200. */
#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_setup_registry();
  return 0;
}

static int numbers_ok(json_t *a, size_t want) {
  if (!json_is_array(a) || json_array_size(a) != want) return 0;
  for (size_t j = 0; j < want; j++) {
    int c = fz_float_class(json_array_get(a, j));
    if (c != 1) return c == 2 ? -1 : 0;
  }
  return 1;
}

/* 1: must succeed; 0: must fail; -1: no opinion. */
static int oracle(json_t *root, const char *model, const uint8_t *body, size_t size, size_t *B_out) {
  size_t in;
  if (strcmp(model, "m") == 0)
    in = 8;
  else if (strcmp(model, "w") == 0)
    in = 3;
  else
    return 0;
  if (!root || !json_is_object(root)) return 0;
  /* Escapes count (member names and strings are compared decoded, as
   * jansson reads them). */
  if (memchr(body, '\0', size) || fz_depth(root) > QS_JSON_MAX_DEPTH ||
      fz_longest_number_run(body, size) > 511)
    return -1;
  json_t *id = json_object_get(root, "id");
  if (id && !json_is_string(id)) return 0;
  json_t *params = json_object_get(root, "parameters");
  if (params) {
    if (!json_is_object(params)) return 0;
    json_t *bdo = json_object_get(params, "binary_data_output");
    if (bdo && !json_is_boolean(bdo)) return 0;
    json_t *b = json_object_get(params, "baseline");
    if (b && !json_is_boolean(b)) return 0;
    json_t *mode = json_object_get(params, "mode");
    if (mode) {
      const char *v = json_string_value(mode);
      if (!v || (strcmp(v, "static") != 0 && strcmp(v, "dynamic") != 0)) return 0;
    }
  }
  /* Requested outputs: only "output" exists; binary_data a boolean. */
  json_t *outs = json_object_get(root, "outputs");
  if (outs) {
    if (!json_is_array(outs)) return 0;
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
      const char *on = json_string_value(json_object_get(o, "name"));
      if (!json_is_object(o) || !on || strcmp(on, "output") != 0) return 0;
      json_t *op = json_object_get(o, "parameters");
      if (op && !json_is_object(op)) return 0;
      json_t *bd = op ? json_object_get(op, "binary_data") : NULL;
      if (bd && !json_is_boolean(bd)) return 0;
    }
  }
  json_t *inputs = json_object_get(root, "inputs");
  if (!json_is_array(inputs) || json_array_size(inputs) != 1) return 0;
  json_t *t = json_array_get(inputs, 0);
  if (!json_is_object(t)) return 0;
  const char *dt = json_string_value(json_object_get(t, "datatype"));
  if (!dt || strcmp(dt, "FP32") != 0) return 0;
  json_t *shape = json_object_get(t, "shape");
  if (!json_is_array(shape) || json_array_size(shape) != 2) return 0;
  /* Binary input needs the Inference-Header-Content-Length header, which
   * the fuzzer never sends. */
  json_t *tp = json_object_get(t, "parameters");
  if (tp && (!json_is_object(tp) || json_object_get(tp, "binary_data_size"))) return 0;
  json_t *jb = json_array_get(shape, 0), *jk = json_array_get(shape, 1);
  if (!json_is_integer(jb) || !json_is_integer(jk)) return 0;
  json_int_t B = json_integer_value(jb), K = json_integer_value(jk);
  if (B < 1 || B > FZ_MAX_BATCH || K != (json_int_t)in) return 0;
  json_t *d = json_object_get(t, "data");
  if (!json_is_array(d) || json_array_size(d) == 0) return 0;
  int ok;
  if (!json_is_array(json_array_get(d, 0))) {
    ok = numbers_ok(d, (size_t)B * in);
  } else if (json_array_size(d) == (size_t)B) {
    ok = 1;
    for (size_t i = 0; i < (size_t)B && ok == 1; i++) ok = numbers_ok(json_array_get(d, i), in);
  } else if (json_array_size(d) == 1) {
    ok = numbers_ok(json_array_get(d, 0), (size_t)B * in);
  } else {
    ok = 0;
  }
  *B_out = (size_t)B;
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size < 130 ? size : 130);
  if (!nl) return 0;
  char name[129];
  size_t nn = (size_t)(nl - data);
  if (nn >= sizeof name) return 0;
  memcpy(name, data, nn);
  name[nn] = '\0';
  if (!qs_name_valid(name)) return 0; /* the router answers 400 first */
  const uint8_t *body = nl + 1;
  size_t blen = size - nn - 1;

  qs_req r;
  fz_req_init(&r, body, blen, name);
  qs_handle_v2_infer(&r);
  /* A binary-output answer is a JSON header and then the floats' bytes. */
  size_t hlen = r.out.len;
  if (r.status == 200 && r.out.data && r.out.len > 0) {
    json_error_t he;
    json_t *h = json_loadb(r.out.data, r.out.len, JSON_DISABLE_EOF_CHECK, &he);
    if (h) hlen = (size_t)he.position;
    json_decref(h);
  }
  size_t full = r.out.len;
  r.out.len = hlen;
  json_t *reply = fz_check_reply(&r);
  r.out.len = full;

  json_error_t je;
  /* Shape needs jansson's integers; data may hold integers beyond int64,
   * which only its real mode reads: no opinion when the modes disagree. */
  json_t *root = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, &je);
  size_t B = 0;
  int verdict = oracle(root, name, body, blen, &B);
  if (!root) {
    json_t *real = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
    if (real) verdict = -1;
    json_decref(real);
  }
  if (verdict == 1 && r.status != 200) {
    fprintf(stderr, "valid body refused with %d: %s\n", r.status, r.out.data);
    abort();
  }
  if (r.status == 200) {
    if (verdict == 0) {
      fprintf(stderr, "invalid body accepted: %.*s\n", (int)blen, (const char *)body);
      abort();
    }
    /* jansson 2.14 skips a NUL byte between tokens; JSON has none. */
    assert(!memchr(body, '\0', blen));
    assert(root || verdict == -1);
    size_t width = strcmp(name, "m") == 0 ? 3 : 2;
    assert(strcmp(json_string_value(json_object_get(reply, "model_name")), name) == 0);
    json_t *outs = json_object_get(reply, "outputs");
    assert(json_is_array(outs) && json_array_size(outs) == 1);
    json_t *o = json_array_get(outs, 0);
    assert(strcmp(json_string_value(json_object_get(o, "datatype")), "FP32") == 0);
    json_t *shape = json_object_get(o, "shape");
    size_t rows = (size_t)json_integer_value(json_array_get(shape, 0));
    assert(json_array_size(shape) == 2 && rows >= 1 && rows <= FZ_MAX_BATCH);
    assert((size_t)json_integer_value(json_array_get(shape, 1)) == width);
    if (verdict == 1) assert(rows == B);
    json_t *od = json_object_get(o, "data");
    if (od) {
      assert(fz_check_finite_row(od) == rows * width);
      assert(full == hlen || full == hlen + 1); /* the newline */
    } else {
      /* binary: exactly rows * width finite floats after the header */
      json_t *bds = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
      assert(json_integer_value(bds) == (json_int_t)(rows * width * sizeof(float)));
      assert(full - hlen == rows * width * sizeof(float));
      for (size_t k = 0; k < rows * width; k++) {
        float v;
        memcpy(&v, r.out.data + hlen + k * sizeof v, sizeof v);
        assert(isfinite(v));
      }
    }
    if (root) {
      json_t *id = json_object_get(root, "id");
      if (id)
        assert(json_equal(id, json_object_get(reply, "id")));
      else
        assert(json_object_get(reply, "id") == NULL);
    }
  }
  json_decref(root);
  json_decref(reply);
  fz_req_free(&r);
  return 0;
}
