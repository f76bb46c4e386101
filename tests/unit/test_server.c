/* test_server.c - server pieces without HTTP: the registry (load, refcounts
 * across a reload, refusal of a corrupt file, unload), the context pool,
 * names, metrics, and the /predict and v2 handlers fed a request record
 * directly. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "base/metrics.h"
#include "model/registry.h"
#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"
#include "http/framing.h"

/* The log's one escaping helper: nothing from a file name or a request can
 * start a new line or pass for an escape of ours. */
START_TEST(log_escape) {
  char out[64];
  size_t n = qs_log_escape(out, sizeof out, "a\nb\\c\x01\x7f\xff\r", 64);
  ck_assert_str_eq(out, "a\\x0ab\\\\c\\x01\\x7f\\xff\\x0d");
  ck_assert_uint_eq(n, strlen(out));
  /* Never cut inside an escape, always terminated. */
  n = qs_log_escape(out, 6, "ab\ncd", 5);
  ck_assert_str_eq(out, "ab");
  n = qs_log_escape(out, sizeof out, "stops\0here", 10);
  ck_assert_str_eq(out, "stops");
}
END_TEST

static int verdict(const char *const *h, bool http10, char *why) {
  qs_framing f;
  memset(&f, 0, sizeof f);
  for (; *h; h += 2) qs_framing_add(&f, h[0], h[1]);
  return qs_framing_verdict(&f, http10, why, 160);
}

START_TEST(framing_rules) {
  char why[160];
  const struct {
    const char *h[9];
    bool http10;
    int want;
  } cases[] = {
      {{"Content-Length", "12", NULL}, false, 0},
      {{"Transfer-Encoding", "chunked", NULL}, false, 0},
      {{"transfer-encoding", " Chunked ", NULL}, false, 0},
      {{"Transfer-Encoding", ", chunked", NULL}, false, 0},
      {{NULL}, false, 0},
      {{"Content-Length", "5", "Content-Length", "50", NULL}, false, 400},
      {{"Content-Length", "5", "content-length", "5", NULL}, false, 400},
      {{"Content-Length", "5", "Transfer-Encoding", "chunked", NULL}, false, 400},
      {{"Transfer-Encoding", "chunked", NULL}, true, 400},
      {{"Transfer-Encoding", "gzip", NULL}, false, 501},
      {{"Transfer-Encoding", "gzip, chunked", NULL}, false, 501},
      {{"Transfer-Encoding", "chunked, gzip", NULL}, false, 501},
      {{"Transfer-Encoding", "chunked, chunked", NULL}, false, 400},
      {{"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL}, false, 400},
      {{"Transfer-Encoding", "", NULL}, false, 400},
      {{"Transfer-Encoding", "chunkedx", NULL}, false, 501},
      {{"Content-Length", "-5", NULL}, false, 400},
      {{"Content-Length", "", NULL}, false, 400},
      {{"Content-Length", "1 2", NULL}, false, 400},
      {{"Content-Length", "99999999999999999999", NULL}, false, 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    why[0] = '\0';
    int v = verdict(cases[i].h, cases[i].http10, why);
    ck_assert_msg(v == cases[i].want, "case %zu: %d, want %d (%s)", i, v, cases[i].want, why);
    ck_assert(v == 0 || why[0]);
  }
}
END_TEST

START_TEST(media_types) {
  ck_assert_int_eq(qs_body_type_of(NULL), QS_BODY_JSON);
  ck_assert_int_eq(qs_body_type_of("application/json"), QS_BODY_JSON);
  ck_assert_int_eq(qs_body_type_of("Application/JSON; charset=utf-8"), QS_BODY_JSON);
  ck_assert_int_eq(qs_body_type_of("application/x-www-form-urlencoded"), QS_BODY_JSON);
  ck_assert_int_eq(qs_body_type_of("application/octet-stream"), QS_BODY_BINARY);
  ck_assert_int_eq(qs_body_type_of(" application/octet-stream ; x=1"), QS_BODY_BINARY);
  const char *refused[] = {"application/octet-streamX", "application/octet-stream-x",
                           "text/plain", "text/plain;charset=utf-8", "multipart/form-data",
                           "", "json", "/", "application/", "a/b/c", "application/jsonx"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    ck_assert_msg(qs_body_type_of(refused[i]) == QS_BODY_REFUSED, "%s", refused[i]);
  ck_assert(qs_accept_binary("application/octet-stream"));
  ck_assert(qs_accept_binary("APPLICATION/OCTET-STREAM;q=1"));
  ck_assert(qs_accept_binary("application/json;q=0.5, application/octet-stream"));
  ck_assert(qs_accept_binary("application/octet-stream, */*;q=0.8"));
  ck_assert(qs_accept_binary("application/octet-stream;q=0.5, application/json;q=0, */*"));
  ck_assert(!qs_accept_binary(NULL));
  ck_assert(!qs_accept_binary("application/octet-stream;q=0"));
  ck_assert(!qs_accept_binary("application/octet-stream;q=0.000"));
  ck_assert(!qs_accept_binary("application/octet-stream;q=0.5, application/json"));
  ck_assert(!qs_accept_binary("application/octet-stream;q=0.5, */*"));
  ck_assert(!qs_accept_binary("application/octet-streamX"));
  ck_assert(!qs_accept_binary("*/*"));
  ck_assert(!qs_accept_binary("application/octet-stream;q=2"));
}
END_TEST

Suite *suite_server(void);

static char dir[64];

/* A 4 -> 3 model whose weights depend on seed. */
static void make_model(const char *name, int seed) {
  int8_t wq[12];
  float ws[3], b[3];
  for (int i = 0; i < 12; i++) wq[i] = (int8_t)(((i + 1) * (seed + 3) * 37) % 255 - 127);
  for (int c = 0; c < 3; c++) {
    ws[c] = 0.01f * (float)(c + 1);
    b[c] = 0.05f * (float)(c - seed);
  }
  qat_layer_spec L = {.in_dim = 4, .out_dim = 3, .act = QAT_ACT_NONE, .wq = wq, .w_scale = ws,
                      .bias = b, .w_bits = 8};
  ck_assert_int_eq(qat_qparams_from_range(-2.0f, 2.0f, 8, false, &L.out), QAT_OK);
  const char *labels[] = {"a", "b", "c"};
  qat_model_spec s = {.n_layers = 1, .layers = &L, .out_mode = QAT_OUT_DEQUANT_ACC, .n_labels = 3,
                      .labels = labels};
  ck_assert_int_eq(qat_qparams_from_range(0.0f, 1.0f, 8, false, &s.input), QAT_OK);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  char path[128];
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
  ck_assert_int_eq(qat_model_save(m, path), QAT_OK);
  qat_model_destroy(m);
}

static void write_file(const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/qs-unit-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  qs_g.cfg.quiet = true;
  qs_g.cfg.silent = true;
  qs_g.cfg.max_batch = 8;
  qs_g.cfg.max_body = 1 << 20;
  qs_g.cfg.test_delay_ms = 0;
  qs_registry_init();
}

static void teardown(void) {
  qs_registry_shutdown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(names) {
  ck_assert(qs_name_valid("fashion-mnist"));
  ck_assert(qs_name_valid("a.b_c-1"));
  ck_assert(!qs_name_valid(""));
  ck_assert(!qs_name_valid(".hidden"));
  ck_assert(!qs_name_valid(".."));
  ck_assert(!qs_name_valid("a/b"));
  ck_assert(!qs_name_valid("a b"));
  ck_assert(!qs_name_valid("caf\xc3\xa9"));
  char longname[200];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ck_assert(!qs_name_valid(longname));
  longname[128] = '\0';
  ck_assert(qs_name_valid(longname));
}
END_TEST

START_TEST(registry_load_reload_refuse_unload) {
  make_model("one", 1);
  make_model("two", 2);
  write_file("broken.safetensors", "garbage");
  write_file(".skip.safetensors", "garbage");
  write_file("notes.txt", "not a model");
  uint64_t refusals0 = qs_metrics_refusals();
  ck_assert_int_eq(qs_registry_sync(dir), 2);
  ck_assert_uint_eq(qs_metrics_refusals(), refusals0 + 1);
  /* An unchanged bad file is not retried (or re-counted). */
  ck_assert_int_eq(qs_registry_sync(dir), 2);
  ck_assert_uint_eq(qs_metrics_refusals(), refusals0 + 1);
  ck_assert_ptr_null(qs_registry_get("broken"));
  size_t count;
  ck_assert_ptr_null(qs_registry_get_only(&count));
  ck_assert_uint_eq(count, 2);

  qs_model *old = qs_registry_get("one");
  ck_assert_ptr_nonnull(old);
  ck_assert_int_eq(atomic_load(&old->refs), 2);
  uint64_t v_old = old->version;
  /* Replace "one" (a different file: new inode) while "old" is in use. */
  sleep(0); /* mtime may be equal; the inode differs because save renames */
  make_model("one", 5);
  ck_assert_int_eq(qs_registry_sync(dir), 2);
  qs_model *cur = qs_registry_get("one");
  ck_assert_ptr_nonnull(cur);
  ck_assert(cur != old);
  ck_assert_uint_gt(cur->version, v_old);
  /* The old version is still whole for its holder, now its only owner. */
  ck_assert_int_eq(atomic_load(&old->refs), 1);
  ck_assert_uint_eq(qat_model_in_dim(old->model), 4);
  qs_model_release(old);

  /* A corrupt replacement is refused; the current version stays. */
  write_file("one.safetensors", "corrupt");
  ck_assert_int_eq(qs_registry_sync(dir), 2);
  ck_assert_uint_eq(qs_metrics_refusals(), refusals0 + 2);
  qs_model *still = qs_registry_get("one");
  ck_assert_ptr_eq(still, cur);
  qs_model_release(still);
  qs_model_release(cur);

  /* Removing a file unloads its model; an unreadable directory keeps all. */
  char path[128];
  snprintf(path, sizeof path, "%s/two.safetensors", dir);
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  ck_assert_ptr_null(qs_registry_get("two"));
  ck_assert_int_eq(qs_registry_sync("/nonexistent/qs-dir"), -1);
  ck_assert_uint_eq(qs_registry_count(), 1);
  qs_model *only = qs_registry_get_only(&count);
  ck_assert_ptr_nonnull(only);
  ck_assert_str_eq(only->name, "one");
  qs_model_release(only);
}
END_TEST

START_TEST(ctx_pool_reuses) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  qs_model *m = qs_registry_get("m");
  qat_ctx *a = qs_model_ctx_get(m);
  qat_ctx *b = qs_model_ctx_get(m);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert(a != b);
  qs_model_ctx_put(m, a);
  ck_assert_ptr_eq(qs_model_ctx_get(m), a);
  qs_model_ctx_put(m, a);
  qs_model_ctx_put(m, b);
  qs_model_release(m);
}
END_TEST

/* Runs a handler on a body the way http.c would. */
static qs_req *run(void (*h)(qs_req *), const char *name, const char *body) {
  qs_req *r = calloc(1, sizeof *r);
  r->t0_ns = qs_now_ns();
  r->model_slot = -1;
  if (name) snprintf(r->name, sizeof r->name, "%s", name);
  r->body_len = strlen(body);
  r->body = malloc(r->body_len + 1);
  memcpy(r->body, body, r->body_len + 1);
  qs_buf_init(&r->out, 256, 1 << 20);
  h(r);
  return r;
}

static void req_free(qs_req *r) {
  free(r->body);
  qs_buf_free(&r->out);
  free(r);
}

static int status_of(void (*h)(qs_req *), const char *name, const char *body) {
  qs_req *r = run(h, name, body);
  int s = r->status;
  ck_assert_msg(s == 200 || strstr(r->out.data, "{\"error\":") == r->out.data, "%s", r->out.data);
  req_free(r);
  return s;
}

START_TEST(predict_handler_statuses) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  /* The answer equals core's for the same floats. */
  qs_req *r = run(qs_handle_predict, NULL, "{\"inputs\": [[0.25, 0.5, 0.75, 1]]}");
  ck_assert_int_eq(r->status, 200);
  qs_model *m = qs_registry_get("m");
  qat_ctx *c = qs_model_ctx_get(m);
  float x[4] = {0.25f, 0.5f, 0.75f, 1.0f}, y[3];
  ck_assert_int_eq(qat_infer_int8(m->model, c, x, 1, y), QAT_OK);
  qs_model_ctx_put(m, c);
  qs_buf want;
  qs_buf_init(&want, 64, 4096);
  qs_buf_puts(&want, "\"outputs\":[");
  qs_buf_float_array(&want, y, 3);
  qs_buf_puts(&want, "]");
  ck_assert_msg(strstr(r->out.data, want.data), "%s lacks %s", r->out.data, want.data);
  char lab[32];
  snprintf(lab, sizeof lab, "\"labels\":[\"%s\"]", qat_model_label(m->model, (uint32_t)qs_argmax(y, 3)));
  ck_assert_msg(strstr(r->out.data, lab), "%s lacks %s", r->out.data, lab);
  qs_buf_free(&want);
  qs_model_release(m);
  req_free(r);

  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [1, 2, 3, 4]}"), 200);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"model\": \"m\", \"inputs\": [[1,2,3,4],[0,0,0,0]]}"), 200);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3]]}"), 422);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3,NaN]]}"), 422);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3,1e39]]}"), 422);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": []}"), 422);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3,\"4\"]]}"), 400);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3,4]], \"x\": }"), 400);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"inputs\": [[1,2,3,4]], \"inputs\": 1}"), 400);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"model\": \"zz\", \"inputs\": [[1,2,3,4]]}"), 404);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"model\": \"m\\u0000x\", \"inputs\": [[1,2,3,4]]}"), 400);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, "{\"\\u0069nputs\": [[1,2,3,4]]}"), 400);
  /* max_batch is 8 */
  ck_assert_int_eq(status_of(qs_handle_predict, NULL,
                             "{\"inputs\": [[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],"
                             "[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}"), 413);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m",
                             "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
                             "\"data\":[1,2,3,4,5,6,7,8]}]}"), 200);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m",
                             "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
                             "\"data\":[[1,2,3,4],[5,6,7,8]]}]}"), 200);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m",
                             "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
                             "\"data\":[1,2,3,4,5,6,7]}]}"), 422);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m",
                             "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP64\","
                             "\"data\":[1,2,3,4,5,6,7,8]}]}"), 400);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m", "{\"inputs\":[]}"), 400);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "nope", "{}"), 404);
}
END_TEST

/* The v2 envelope's checks, one fault per body: status and message. The
 * first table is answered exactly as the jansson decoder it replaced
 * answered it (checked by running this table on that code). */
typedef struct v2_case {
  const char *body;
  int status;
  const char *msg;
} v2_case;

#define T_(extra) "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\"," extra "}]"
#define TD T_("\"data\":[1,2,3,4]")

static void v2_expect(const v2_case *c) {
  qs_req *r = run(qs_handle_v2_infer, "m", c->body);
  ck_assert_msg(r->status == c->status && strstr(r->out.data, c->msg), "%.200s -> %d %s (want %d %s)", c->body,
                r->status, r->out.data, c->status, c->msg);
  req_free(r);
}

START_TEST(v2_envelope_errors) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  static const v2_case same[] = {
      {TD "}", 200, "\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":["},
      {TD ",\"id\":\"a\\u00e9\\\"b\"}", 200, "\"id\":\"a\xc3\xa9\\\"b\""},
      {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP64\",\"data\":[1,2,3,4]}]}", 400,
       "input datatype must be \\\"FP32\\\""},
      {"{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}", 400,
       "input shape must be [batch, features] (two integers)"},
      {"{\"inputs\":[{\"shape\":[1.0,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}", 400, "two integers"},
      {"{\"inputs\":[{\"shape\":\"1,4\",\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}", 400, "two integers"},
      {TD ",\"id\":5}", 400, "\\\"id\\\" must be a string"},
      {"{\"inputs\":{}}", 400, "\\\"inputs\\\" must be an array of exactly one tensor"},
      {"{\"inputs\":[]}", 400, "exactly one tensor"},
      {"{\"id\":\"a\"}", 400, "exactly one tensor"},
      {"{\"inputs\":[1]}", 400, "\\\"inputs\\\"[0] must be an object"},
      {"{\"inputs\":[{\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]},{}]}", 400, "exactly one tensor"},
      {T_("\"data\":[1,2,3,4],\"parameters\":5") "}", 400, "input \\\"parameters\\\" must be an object"},
      {T_("\"parameters\":{\"binary_data_size\":-1}") "}", 400, "\\\"binary_data_size\\\" must be a byte count"},
      {T_("\"parameters\":{\"binary_data_size\":16.0}") "}", 400, "must be a byte count"},
      {T_("\"data\":[1,2,3,4],\"parameters\":{\"binary_data_size\":16}") "}", 400,
       "input tensor has both \\\"data\\\" and \\\"binary_data_size\\\""},
      {T_("\"dat\":[1,2,3,4]") "}", 400, "input tensor has no \\\"data\\\" (nor \\\"binary_data_size\\\")"},
      {T_("\"parameters\":{\"binary_data_size\":16}") "}", 400,
       "\\\"binary_data_size\\\" needs the Inference-Header-Content-Length header"},
      {TD ",\"parameters\":[]}", 400, "\\\"parameters\\\" must be an object"},
      {TD ",\"parameters\":{\"baseline\":1}}", 400, "\\\"baseline\\\" must be true or false"},
      {TD ",\"parameters\":{\"mode\":\"fast\"}}", 400, "\\\"mode\\\" must be \\\"static\\\" or \\\"dynamic\\\""},
      {TD ",\"parameters\":{\"binary_data_output\":\"yes\"}}", 400,
       "\\\"binary_data_output\\\" must be true or false"},
      {TD ",\"outputs\":{}}", 400, "\\\"outputs\\\" must be an array"},
      {TD ",\"outputs\":[{\"x\":1}]}", 400, "\\\"outputs\\\"[0] must be an object with a \\\"name\\\""},
      {TD ",\"outputs\":[{\"name\":\"output\"},{\"name\":\"pr\\u006fbs\"}]}", 400,
       "unknown output 'probs' (the model has one: \\\"output\\\")"},
      {TD ",\"outputs\":[{\"name\":\"output\",\"parameters\":1}]}", 400,
       "\\\"outputs\\\"[0].parameters must be an object"},
      {TD ",\"outputs\":[{\"name\":\"output\",\"parameters\":{\"binary_data\":1}}]}", 400,
       "\\\"binary_data\\\" must be true or false"},
      {"{\"inputs\":[{\"shape\":[0,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}", 400,
       "input shape dimensions must be positive"},
      {"{\"inputs\":[{\"shape\":[1,5],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5]}]}", 422,
       "wrong input width: shape [1, 5], model wants [-1, 4]"},
      {"{\"inputs\":[{\"shape\":[9,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}", 413, "batch larger than 8 rows"},
      {T_("\"data\":[1,2,3,4,5]") "}", 422, "data holds more numbers than shape [1, 4]"},
      {T_("\"data\":[[1,2],[3,4]]") "}", 422, "data holds more numbers than shape [1, 4]"},
      {T_("\"data\":[1,2,3]") "}", 422, "data does not match shape [1, 4]"},
      {T_("\"data\":[1,2,\"x\",4]") "}", 400,
       "inputs must be numbers in an array of rows (wrong type at byte 5 of the array)"},
      {T_("\"data\":[1,2,NaN,4]") "}", 422, "non-finite or out-of-range number at byte 5 of the array"},
      {"{\"inputs\":[{\"shape\":[2,4],\"datatype\":\"FP32\",\"data\":[[1,2,3,4],[1,2]]}]}", 422,
       "rows of different widths"},
      {T_("\"data\":5") "}", 400, "inputs must be numbers in an array of rows (wrong type at byte 0"},
      {T_("\"data\":[]") "}", 422, "no input rows"},
      {T_("\"data\":[1,2,3,4],\"name\":\"y\"") "}", 400, "duplicate object key"},
      {TD "} x", 400, "malformed JSON"},
      {TD, 400, "malformed JSON"},
  };
  for (size_t i = 0; i < sizeof same / sizeof *same; i++) v2_expect(&same[i]);
  /* Answered differently from the jansson decoder, on purpose. */
  static const v2_case changed[] = {
      /* Member names are compared decoded, as jansson reads them (it
       * answered 400 "no data": the number array was found by its raw
       * name only). */
      {T_("\"d\\u0061ta\":[1,2,3,4]") "}", 200, "\"shape\":[1,3]"},
      /* Not an object: the same words as /predict (was "malformed JSON"). */
      {"[1]", 400, "the body must be a JSON object"},
  };
  for (size_t i = 0; i < sizeof changed / sizeof *changed; i++) v2_expect(&changed[i]);
  /* An unknown member of 200 000 empty arrays: answered like any valid
   * body (the jansson decoder refused it, 413, before its tree grew past
   * twice the text). */
  size_t n = 200000;
  char *big = malloc(3 * n + 256);
  ck_assert_ptr_nonnull(big);
  size_t len = (size_t)sprintf(big, "{\"x\":[");
  for (size_t i = 0; i < n; i++) len += (size_t)sprintf(big + len, i ? ",[]" : "[]");
  sprintf(big + len, "],%s}", TD + 1);
  v2_case c = {big, 200, "\"shape\":[1,3]"};
  v2_expect(&c);
  free(big);
}
END_TEST

/* Random byte mutations of valid bodies: every answer is 200 or a JSON
 * error with a 4xx status, and a 200 always carries finite outputs. */
START_TEST(mutated_bodies_get_clean_answers) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  static const char *const seeds[] = {
      "{\"model\": \"m\", \"inputs\": [[0.25, 0.5, 0.75, 1], [1e-3, -0, 2, 3.5e1]], \"mode\": \"dynamic\"}",
      "{\"inputs\": [0.1, 0.2, 0.3, 0.4], \"baseline\": false}",
  };
  static const char *const v2seed =
      "{\"id\": \"x\", \"inputs\": [{\"name\": \"i\", \"shape\": [2, 4], \"datatype\": \"FP32\", "
      "\"data\": [[1, 2, 3, 4], [5, 6, 7, 8]]}], \"parameters\": {\"baseline\": true}}";
  static const char alphabet[] = "{}[]\",:0123456789.eE+-NaIfinity tnul\\\x00\xff";
  uint64_t st = 0x9E3779B97F4A7C15ULL;
  char buf[512];
  for (int iter = 0; iter < 6000; iter++) {
    const char *seed = iter % 3 == 2 ? v2seed : seeds[iter % 2];
    size_t n = strlen(seed);
    memcpy(buf, seed, n + 1);
    int edits = 1 + (int)(iter % 4);
    for (int k = 0; k < edits; k++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      size_t at = (size_t)(st >> 20) % n;
      switch ((st >> 8) % 3) {
        case 0: buf[at] = alphabet[(st >> 40) % (sizeof alphabet - 1)]; break;
        case 1: /* delete */
          memmove(buf + at, buf + at + 1, n - at);
          n--;
          break;
        default: /* truncate */
          n = at;
          buf[n] = '\0';
          break;
      }
      if (n == 0) break;
    }
    qs_req *r = calloc(1, sizeof *r);
    r->t0_ns = qs_now_ns();
    r->model_slot = -1;
    strcpy(r->name, "m");
    r->body_len = n;
    r->body = malloc(n + 1);
    memcpy(r->body, buf, n);
    r->body[n] = '\0';
    qs_buf_init(&r->out, 256, 1 << 20);
    if (iter % 3 == 2)
      qs_handle_v2_infer(r);
    else
      qs_handle_predict(r);
    ck_assert_msg(r->status == 200 || r->status == 400 || r->status == 404 || r->status == 413 ||
                      r->status == 422,
                  "status %d for %.*s", r->status, (int)n, buf);
    json_error_t je;
    json_t *j = json_loads(r->out.data, 0, &je);
    ck_assert_msg(j != NULL, "reply not JSON: %s", r->out.data);
    if (r->status == 200) {
      json_t *outs = json_object_get(j, "outputs");
      ck_assert(json_is_array(outs) && json_array_size(outs) > 0);
      size_t i, k;
      json_t *o, *v;
      json_array_foreach(outs, i, o) {
        /* /predict: rows of numbers; v2: tensors with flat data */
        json_t *vals = json_is_object(o) ? json_object_get(o, "data") : o;
        ck_assert(json_is_array(vals) && json_array_size(vals) > 0);
        json_array_foreach(vals, k, v) ck_assert_msg(json_is_number(v), "%s", r->out.data);
      }
    } else {
      ck_assert(json_is_string(json_object_get(j, "error")) && json_object_size(j) == 1);
    }
    json_decref(j);
    req_free(r);
  }
}
END_TEST

START_TEST(metrics_render) {
  int s1 = qs_metrics_slot("metric-model");
  ck_assert_int_gt(s1, 0);
  ck_assert_int_eq(qs_metrics_slot("metric-model"), s1);
  uint64_t before = qs_metrics_requests(s1, QS_EP_PREDICT, 200);
  qs_metrics_request(s1, QS_EP_PREDICT, 200);
  qs_metrics_observe(s1, QS_LAT_INT8, 3000);
  ck_assert_uint_eq(qs_metrics_requests(s1, QS_EP_PREDICT, 200), before + 1);
  qs_buf b;
  qs_buf_init(&b, 1024, 1 << 20);
  qs_metrics_render(&b);
  ck_assert(!b.failed);
  char want[160];
  snprintf(want, sizeof want,
           "qatserve_requests_total{model=\"metric-model\",endpoint=\"predict\",code=\"200\",protocol=\"http\"} %llu\n",
           (unsigned long long)(before + 1));
  ck_assert_msg(strstr(b.data, want), "missing %s", want);
  /* 3 us lands in the 5 us bucket and every larger one. */
  ck_assert(strstr(b.data, "qatserve_int8_latency_seconds_bucket{model=\"metric-model\",le=\"5e-06\"} 1\n"));
  ck_assert(strstr(b.data, "qatserve_int8_latency_seconds_bucket{model=\"metric-model\",le=\"+Inf\"} 1\n"));
  ck_assert(strstr(b.data, "qatserve_build_info{version=\"" QAT_VERSION "\""));
  qs_buf_free(&b);
}
END_TEST

/* A model's series are there at zero from its load on (slots are interned at
 * load): Prometheus' rate() then counts its very first requests. */
START_TEST(metrics_zero_from_load) {
  int s = qs_metrics_slot("zero-model");
  ck_assert_int_gt(s, 0);
  qs_buf b;
  qs_buf_init(&b, 1024, 1 << 20);
  qs_metrics_render(&b);
  ck_assert(!b.failed);
  static const char *const want[] = {
      "qatserve_requests_total{model=\"zero-model\",endpoint=\"predict\",code=\"200\",protocol=\"http\"} 0\n",
      "qatserve_requests_total{model=\"zero-model\",endpoint=\"v2_infer\",code=\"200\",protocol=\"http\"} 0\n",
      "qatserve_requests_total{model=\"zero-model\",endpoint=\"predict\",code=\"500\",protocol=\"http\"} 0\n",
      "qatserve_requests_total{model=\"zero-model\",endpoint=\"v2_infer\",code=\"other\",protocol=\"http\"} 0\n",
      "qatserve_int8_latency_seconds_bucket{model=\"zero-model\",le=\"+Inf\"} 0\n",
      "qatserve_int8_latency_seconds_count{model=\"zero-model\"} 0\n",
      "qatserve_fp32_latency_seconds_sum{model=\"zero-model\"} 0.000000000\n",
      "qatserve_total_latency_seconds_bucket{model=\"zero-model\",le=\"5e-06\"} 0\n",
      "qatserve_drift_rows_total{model=\"zero-model\"} 0\n",
      "qatserve_argmax_disagreements_total{model=\"zero-model\"} 0\n",
      "qatserve_drift_max_abs_diff_count{model=\"zero-model\"} 0\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(strstr(b.data, want[i]), "missing %s", want[i]);
  /* Not for other endpoints, and not for model="" (no model served it). */
  ck_assert(!strstr(b.data, "{model=\"zero-model\",endpoint=\"models\""));
  /* gRPC's ModelInfer series only once gRPC serves. */
  ck_assert(!strstr(b.data, "endpoint=\"ModelInfer\""));
  qs_metrics_grpc_serving();
  qs_buf_free(&b);
  qs_buf_init(&b, 1024, 1 << 20);
  qs_metrics_render(&b);
  ck_assert(strstr(b.data, "qatserve_requests_total{model=\"zero-model\",endpoint=\"ModelInfer\",code=\"OK\",protocol=\"grpc\"} 0\n"));
  ck_assert(strstr(b.data, "qatserve_requests_total{model=\"zero-model\",endpoint=\"ModelInfer\",code=\"INVALID_ARGUMENT\",protocol=\"grpc\"} 0\n"));
  ck_assert(!strstr(b.data, "{model=\"zero-model\",endpoint=\"ModelReady\""));
  /* Drift: 3 rows, 1 disagreement, 0.03 max difference -> the 0.05 bucket up. */
  qs_metrics_drift(s, 3, 1, 0.03f);
  qs_buf_free(&b);
  qs_buf_init(&b, 1024, 1 << 20);
  qs_metrics_render(&b);
  ck_assert(strstr(b.data, "qatserve_drift_rows_total{model=\"zero-model\"} 3\n"));
  ck_assert(strstr(b.data, "qatserve_argmax_disagreements_total{model=\"zero-model\"} 1\n"));
  ck_assert(strstr(b.data, "qatserve_drift_max_abs_diff_bucket{model=\"zero-model\",le=\"0.025\"} 0\n"));
  ck_assert(strstr(b.data, "qatserve_drift_max_abs_diff_bucket{model=\"zero-model\",le=\"0.05\"} 1\n"));
  ck_assert(strstr(b.data, "qatserve_drift_max_abs_diff_sum{model=\"zero-model\"} 0.030000\n"));
  ck_assert(!strstr(b.data, "qatserve_int8_latency_seconds_count{model=\"\"}"));
  qs_buf_free(&b);
}
END_TEST

Suite *suite_server(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("server");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, names);
  tcase_add_test(tc, log_escape);
  tcase_add_test(tc, framing_rules);
  tcase_add_test(tc, media_types);
  tcase_add_test(tc, registry_load_reload_refuse_unload);
  tcase_add_test(tc, ctx_pool_reuses);
  tcase_add_test(tc, predict_handler_statuses);
  tcase_add_test(tc, v2_envelope_errors);
  tcase_add_test(tc, mutated_bodies_get_clean_answers);
  tcase_add_test(tc, metrics_render);
  tcase_add_test(tc, metrics_zero_from_load);
  suite_add_tcase(s, tc);
  return s;
}
