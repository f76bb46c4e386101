/* fuzz_binary.c - binary payloads without HTTP: /predict with raw float32
 * rows (qs_handle_predict_binary) and the v2 binary tensor extension
 * (qs_handle_v2_infer with Inference-Header-Content-Length).
 *
 * Input: byte 0 picks the path and options, the rest is the body.
 *   bit 0: 0 = /predict binary, 1 = v2 infer with a header length
 *   /predict: bit 1 model "m" (8 -> 3) or "w" (3 -> 2), bit 2 binary answer
 *     (Accept), bit 3 baseline=false, bit 4 mode=dynamic
 *   v2: bytes 1-2 the little-endian header length (may be past the body)
 * Checks, besides ASan/UBSan:
 *   - every reply has a documented status; errors are JSON {"error"};
 *   - /predict: a body of 1..16 whole rows of finite floats must get 200 (or
 *     core's own 422 refusal of an unrepresentable range), any other body
 *     must not; a 200 answers exactly rows x out_dim floats, all finite, raw
 *     or as JSON;
 *   - v2: a binary 200 carries Inference-Header-Content-Length, a JSON
 *     header there, and exactly the bytes of the outputs it declares. */
/* fuzz_server.h's JSON-oracle helpers are not needed here. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#include "fuzz_server.h"
#pragma clang diagnostic pop
#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_setup_registry();
  return 0;
}

/* The value of reply header name in r->xh, or NULL. */
static const char *xh_get(const qs_req *r, const char *name) {
  for (size_t i = 0; i < r->xh_len;) {
    const char *n = r->xh + i, *v = n + strlen(n) + 1;
    if (strcmp(n, name) == 0) return v;
    i = (size_t)(v + strlen(v) + 1 - r->xh);
  }
  return NULL;
}

static void check_predict(const uint8_t *data, size_t size) {
  uint8_t op = data[0];
  const char *model = op & 2 ? "w" : "m";
  size_t in = op & 2 ? 3 : 8, out = op & 2 ? 2 : 3;
  qs_req r;
  fz_req_init(&r, data + 1, size - 1, NULL);
  r.bin_in = true;
  r.bin_out = (op & 4) != 0;
  snprintf(r.qmodel, sizeof r.qmodel, "%s", model);
  if (op & 8) snprintf(r.qbaseline, sizeof r.qbaseline, "false");
  if (op & 16) snprintf(r.qmode, sizeof r.qmode, "dynamic");
  qs_handle_predict_binary(&r);
  size_t n = size - 1, rows = n / (4 * in);
  bool finite = true;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    float f;
    memcpy(&f, data + 1 + i, 4);
    finite &= isfinite(f) != 0;
  }
  bool must = n > 0 && n % (4 * in) == 0 && rows <= FZ_MAX_BATCH && finite;
  /* Core may still refuse finite inputs whose range it cannot represent
   * (dynamic mode over [-3e38, 3e38], an fp32 baseline overflowing): the
   * JSON path answers those 422 too. */
  bool refused = r.status == 422 && r.out.data && strstr(r.out.data, "inference refused the input");
  if (must ? !(r.status == 200 || refused) : r.status == 200) {
    fprintf(stderr, "binary /predict: %zu bytes, finite %d: status %d\n", n, finite, r.status);
    abort();
  }
  if (r.status == 200 && r.bin_out) {
    assert(r.ctype && strcmp(r.ctype, "application/octet-stream") == 0);
    assert(r.out.len == rows * out * 4);
    for (size_t i = 0; i < rows * out; i++) {
      float f;
      memcpy(&f, r.out.data + 4 * i, 4);
      assert(isfinite(f));
    }
    const char *shape = xh_get(&r, "X-Shape");
    char want[64];
    snprintf(want, sizeof want, "%zu,%zu", rows, out);
    assert(shape && strcmp(shape, want) == 0);
    assert(xh_get(&r, "X-Latency-Us"));
  } else {
    assert(!r.ctype);
    json_t *reply = fz_check_reply(&r);
    if (r.status == 200) {
      json_t *o = json_object_get(reply, "outputs");
      assert(json_is_array(o) && json_array_size(o) == rows);
      for (size_t i = 0; i < rows; i++) assert(fz_check_finite_row(json_array_get(o, i)) == out);
    }
    json_decref(reply);
  }
  fz_req_free(&r);
}

static void check_v2(const uint8_t *data, size_t size) {
  if (size < 3) return;
  qs_req r;
  fz_req_init(&r, data + 3, size - 3, "m");
  r.v2_bin = true;
  r.v2_hlen = (size_t)data[1] | (size_t)data[2] << 8;
  qs_handle_v2_infer(&r);
  if (r.ctype) {
    /* A binary answer: JSON header, then the output's bytes. */
    assert(r.status == 200);
    const char *h = xh_get(&r, "Inference-Header-Content-Length");
    assert(h);
    size_t hlen = strtoul(h, NULL, 10);
    assert(hlen <= r.out.len);
    json_error_t je;
    json_t *j = json_loadb(r.out.data, hlen, JSON_REJECT_DUPLICATES, &je);
    assert(j);
    json_t *o = json_array_get(json_object_get(j, "outputs"), 0);
    json_t *shape = json_object_get(o, "shape");
    size_t B = (size_t)json_integer_value(json_array_get(shape, 0));
    size_t N = (size_t)json_integer_value(json_array_get(shape, 1));
    json_t *bds = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
    assert(N == 3 && B >= 1 && B <= FZ_MAX_BATCH);
    assert((size_t)json_integer_value(bds) == B * N * 4 && r.out.len - hlen == B * N * 4);
    assert(!json_object_get(o, "data"));
    json_decref(j);
  } else {
    json_decref(fz_check_reply(&r));
  }
  fz_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1)
    check_v2(data, size);
  else
    check_predict(data, size);
  return 0;
}
