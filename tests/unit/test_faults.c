/* test_faults.c - allocation failure injection over request handling and
 * reload, corrupt model replacements, and the regression inputs the fuzzers
 * found.
 *
 * How allocations are failed: the unit runner is linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free (set in
 * tests/reliability/reliability.mk), so every malloc the server, libqat and
 * the tests call comes here first; jansson (a shared library) gets here
 * through the server's own hook (qs_json_alloc_init). Armed with N, the Nth allocation from then on
 * returns NULL. The wrappers also count live blocks, so each step checks
 * that the handler freed everything it took (a leak check that does not
 * depend on LeakSanitizer; `make test SAN=1` runs it under ASan too).
 *
 * Walks: N = 0, 1, 2, ... until a run sees no failure. Every failing run
 * must end cleanly: a JSON 503 "out of memory" (or a reply buffer marked
 * failed, which http.c turns into a 500), never a crash, a wrong status or
 * a leak; a reload that fails keeps the old version serving and is retried
 * by the next sync. */
#include <check.h>
#include <jansson.h>
#include <stdatomic.h>
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

Suite *suite_faults(void);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

/* ---- the failing allocator ------------------------------------------- */

/* Only the test thread allocates while armed (handlers run inline, the
 * registry syncs inline); atomics keep any other thread's count honest. */
static atomic_long countdown = -1; /* < 0: disarmed */
static atomic_bool hit;
static atomic_long live;           /* blocks handed out and not yet freed */
static atomic_long calls;          /* malloc + calloc + realloc calls */

static bool should_fail(void) {
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  long c = atomic_load(&countdown);
  if (c < 0) return false;
  if (c == 0) {
    atomic_store(&hit, true);
    return true;
  }
  atomic_store(&countdown, c - 1);
  return false;
}

void *__wrap_malloc(size_t n) {
  if (should_fail()) return NULL;
  void *p = __real_malloc(n);
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

void *__wrap_calloc(size_t n, size_t size) {
  if (should_fail()) return NULL;
  void *p = __real_calloc(n, size);
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  void *q = __real_realloc(p, n);
  if (q && !p) atomic_fetch_add(&live, 1);
  return q;
}

void __wrap_free(void *p) {
  if (p) atomic_fetch_sub(&live, 1);
  __real_free(p);
}

static void arm(long n) {
  atomic_store(&hit, false);
  atomic_store(&countdown, n);
}

static bool disarm(void) {
  atomic_store(&countdown, -1);
  return atomic_load(&hit);
}

/* ---- fixture --------------------------------------------------------- */

static char dir[64];

/* An 8 -> 6 -> 3 model with labels; weights depend on seed. */
static void make_model_in(const char *d, const char *name, int seed) {
  int8_t w0[48], w1[18];
  float s0[6], b0[6], s1[3], b1[3];
  for (int i = 0; i < 48; i++) w0[i] = (int8_t)(((i + 1) * (seed + 3) * 37) % 255 - 127);
  for (int i = 0; i < 18; i++) w1[i] = (int8_t)(((i + 5) * (seed + 7) * 53) % 255 - 127);
  for (int c = 0; c < 6; c++) s0[c] = 0.004f * (float)(c + 1), b0[c] = 0.01f * (float)(c - seed);
  for (int c = 0; c < 3; c++) s1[c] = 0.006f * (float)(c + 1), b1[c] = 0.02f * (float)(c + seed);
  qat_layer_spec L[2] = {
      {.in_dim = 8, .out_dim = 6, .act = QAT_ACT_RELU, .wq = w0, .w_scale = s0, .bias = b0, .w_bits = 8},
      {.in_dim = 6, .out_dim = 3, .act = QAT_ACT_NONE, .wq = w1, .w_scale = s1, .bias = b1, .w_bits = 8}};
  ck_assert_int_eq(qat_qparams_from_range(0.0f, 3.0f, 8, false, &L[0].out), QAT_OK);
  ck_assert_int_eq(qat_qparams_from_range(-2.0f, 2.0f, 8, false, &L[1].out), QAT_OK);
  const char *labels[] = {"a", "b", "c"};
  qat_model_spec s = {.n_layers = 2, .layers = L, .out_mode = QAT_OUT_DEQUANT_ACC, .n_labels = 3,
                      .labels = labels};
  ck_assert_int_eq(qat_qparams_from_range(0.0f, 1.0f, 8, false, &s.input), QAT_OK);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  char path[128];
  snprintf(path, sizeof path, "%s/%s.safetensors", d, name);
  ck_assert_int_eq(qat_model_save(m, path), QAT_OK);
  qat_model_destroy(m);
}

static void make_model(const char *name, int seed) { make_model_in(dir, name, seed); }

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/qs-faults-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  qs_g.cfg.quiet = true;
  qs_g.cfg.silent = true;
  qs_g.cfg.max_batch = 8;
  qs_g.cfg.max_body = 1 << 20;
  qs_g.cfg.test_delay_ms = 0;
  qs_json_alloc_init(); /* the server's hook, over the wrapped malloc */
  qs_registry_init();
}

static void teardown(void) {
  qs_registry_shutdown();
  json_set_alloc_funcs(malloc, free);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void req_init(qs_req *r, const char *name, const char *body, size_t len) {
  memset(r, 0, sizeof *r);
  r->t0_ns = qs_now_ns();
  r->model_slot = -1;
  r->body = malloc(len + 1);
  ck_assert_ptr_nonnull(r->body);
  memcpy(r->body, body, len);
  r->body[len] = '\0';
  r->body_len = r->body_size = len;
  if (name) snprintf(r->name, sizeof r->name, "%s", name);
  qs_buf_init(&r->out, 1024, 1 << 20);
}

static void req_free(qs_req *r) {
  free(r->body);
  free(r->xh); /* extra reply headers (binary replies) */
  qs_buf_free(&r->out);
}

/* The reply is exactly {"error": msg} with msg containing want. */
static bool is_error_reply(const qs_req *r, const char *want) {
  json_t *j = json_loadb(r->out.data, r->out.len, 0, NULL);
  bool ok = j && json_object_size(j) == 1 && json_is_string(json_object_get(j, "error")) &&
            strstr(json_string_value(json_object_get(j, "error")), want);
  json_decref(j);
  return ok;
}

typedef void (*handler_fn)(qs_req *);

/* Walks allocation failures over one handler call on body; the call
 * without failures must answer want_status. Returns the failures seen. */
/* The thread's decoding and output scratch, dropped so that the next
 * request allocates it as a thread's first request does. */
static void drop_thread_scratch(void) {
  qs_api_ctx_drop();
  qs_infer_thread_drop();
}

/* cold: every run starts without the thread's scratch (walks the
 * allocations of a thread's first request); warm: with it (a warm thread's
 * request should allocate nothing on the native paths). */
static int walk_handler_mode(handler_fn h, const char *name, const char *body, int want_status, bool cold) {
  qs_req r;
  /* Warm-up: fills the model's context pool, interns the metrics slot. */
  req_init(&r, name, body, strlen(body));
  h(&r);
  ck_assert_int_eq(r.status, want_status);
  req_free(&r);
  int failures = 0;
  for (long n = 0; n < 10000; n++) {
    if (cold) drop_thread_scratch();
    req_init(&r, name, body, strlen(body));
    /* No ck_assert between the two counts: Check's own bookkeeping frees
     * memory libc allocated (its messages), which would skew them. */
    long before = atomic_load(&live);
    arm(n);
    h(&r);
    bool failed = disarm();
    int status = r.status;
    bool clean = r.out.failed || (status == 503 && is_error_reply(&r, "out of memory"));
    char reply[160];
    snprintf(reply, sizeof reply, "%s", r.out.data ? r.out.data : "(none)");
    req_free(&r);
    if (cold) drop_thread_scratch();
    long leaked = atomic_load(&live) - (before - 2); /* body + reply freed */
    if (!failed) {
      ck_assert_msg(status == want_status, "after %ld allocations: status %d", n, status);
      ck_assert_int_eq(leaked, 0);
      break;
    }
    failures++;
    /* The reply buffer is allocated before the walk, so an error reply
     * fits unless the failure hit the buffer's own growth: then http.c
     * answers 500. */
    ck_assert_msg(clean, "allocation %ld failed: status %d, reply %s", n, status, reply);
    ck_assert_msg(leaked == 0, "allocation %ld failed: %ld blocks leaked", n, leaked);
  }
  return failures;
}

static int walk_handler(handler_fn h, const char *name, const char *body, int want_status) {
  return walk_handler_mode(h, name, body, want_status, true);
}

START_TEST(predict_allocation_failures) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  int f = walk_handler(qs_handle_predict, NULL,
                       "{\"model\":\"m\",\"inputs\":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],"
                       "[1,0,1,0,1,0,1,0]],\"id\":\"x\"}",
                       200);
  ck_assert_int_ge(f, 4);
  f = walk_handler(qs_handle_predict, NULL,
                   "{\"model\":\"m\",\"mode\":\"dynamic\",\"baseline\":false,"
                   "\"inputs\":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}",
                   200);
  ck_assert_int_ge(f, 3);
  /* A warm thread: nothing to fail. */
  f = walk_handler_mode(qs_handle_predict, NULL,
                        "{\"model\":\"m\",\"inputs\":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]],\"id\":\"x\"}", 200,
                        false);
  ck_assert_int_eq(f, 0);
  /* Error paths too. */
  walk_handler(qs_handle_predict, NULL, "{\"model\":\"m\",\"inputs\":[[1,2,3]]}", 422);
  walk_handler(qs_handle_predict, NULL, "{\"model\":\"nope\",\"inputs\":[[1,2,3]]}", 404);
  walk_handler(qs_handle_predict, NULL, "{\"model\":\"m\",\"inputs\":[[1,2,3]], \"x\":[}", 400);
}
END_TEST

START_TEST(v2_allocation_failures) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  int f = walk_handler(qs_handle_v2_infer, "m",
                       "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"shape\":[2,8],"
                       "\"datatype\":\"FP32\",\"data\":[[1,2,3,4,5,6,7,8],[0,0,0,0,1,1,1,1]]}],"
                       "\"parameters\":{\"mode\":\"static\"}}",
                       200);
  ck_assert_int_ge(f, 5);
  walk_handler(qs_handle_v2_infer, "m",
               "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,8],\"datatype\":\"FP32\","
               "\"data\":[1,2,3]}]}",
               422);
  /* Binary output (a JSON header, then raw floats; its length in a reply
   * header). */
  walk_handler(qs_handle_v2_infer, "m",
               "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,8],\"datatype\":\"FP32\","
               "\"data\":[1,2,3,4,5,6,7,8]}],\"parameters\":{\"binary_data_output\":true}}",
               200);
}
END_TEST

/* A reload that runs out of memory keeps the old version, leaks nothing,
 * and is retried by the next sync (an out-of-memory refusal must not be
 * remembered like a bad file). */
START_TEST(reload_allocation_failures) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  int failures = 0;
  for (long n = 0; n < 100000; n++) {
    qs_model *old = qs_registry_get("m");
    ck_assert_ptr_nonnull(old);
    uint64_t v_old = old->version;
    qs_model_release(old);
    make_model("m", 2 + (int)(n % 2)); /* a new file (new inode) each round */
    long before = atomic_load(&live);
    arm(n);
    int k = qs_registry_sync(dir);
    bool failed = disarm();
    qs_model *cur = qs_registry_get("m");
    bool refused = cur && cur->version == v_old;
    long leaked = atomic_load(&live) - before; /* before any ck_assert */
    ck_assert_ptr_nonnull(cur);
    ck_assert_int_eq(k, 1);
    if (!failed) {
      ck_assert_uint_gt(cur->version, v_old);
      qs_model_release(cur);
      break;
    }
    failures++;
    if (refused) {
      /* Refused: the old version serves, nothing leaked, and the next sync
       * (memory back) loads the new file. */
      ck_assert_msg(leaked == 0, "reload failure %ld leaked %ld blocks", n, leaked);
      qs_model_release(cur);
      ck_assert_int_eq(qs_registry_sync(dir), 1);
      cur = qs_registry_get("m");
      ck_assert_msg(cur->version > v_old, "allocation %ld: the file was not retried", n);
    }
    /* Whatever was installed serves. */
    qat_ctx *c = qs_model_ctx_get(cur);
    float x[8] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, y[3];
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(qat_infer_int8(cur->model, c, x, 1, y), QAT_OK);
    qs_model_ctx_put(cur, c);
    qs_model_release(cur);
  }
  ck_assert_int_ge(failures, 10);
}
END_TEST

/* A file replaced by a truncated or half-written copy is refused, the old
 * version keeps serving and every refusal is counted. */
START_TEST(corrupt_replacements_refused) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  qs_model *orig = qs_registry_get("m");
  uint64_t v = orig->version;
  qs_model_release(orig);
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  static unsigned char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  ck_assert_uint_gt(len, 100);
  uint64_t refusals = qs_metrics_refusals();
  int tried = 0;
  for (size_t cut = 0; cut < len; cut += 1 + len / 40) {
    /* Half-written: the first cut bytes, renamed into place. */
    snprintf(tmp, sizeof tmp, "%s/.tmp-%zu", dir, cut);
    f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, cut, f), cut);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
    ck_assert_int_eq(qs_registry_sync(dir), 1);
    qs_model *cur = qs_registry_get("m");
    ck_assert_ptr_nonnull(cur);
    ck_assert_msg(cur->version == v, "a %zu-byte prefix was loaded", cut);
    qs_model_release(cur);
    tried++;
  }
  ck_assert_uint_eq(qs_metrics_refusals(), refusals + (uint64_t)tried);
  /* Trailing garbage after a whole file is refused too. */
  f = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fputs("junk", f);
  fclose(f);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  qs_model *cur = qs_registry_get("m");
  ck_assert_uint_eq(cur->version, v);
  qs_model_release(cur);
  /* The whole file again: loaded. */
  f = fopen(path, "wb");
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  cur = qs_registry_get("m");
  ck_assert_uint_gt(cur->version, v);
  qs_model_release(cur);
}
END_TEST

/* Start-up with a missing models directory loads nothing and says so; a
 * directory that disappears later keeps what is loaded. */
START_TEST(missing_directory) {
  char gone[128];
  snprintf(gone, sizeof gone, "%s/not-there", dir);
  ck_assert_int_eq(qs_registry_sync(gone), -1);
  ck_assert_uint_eq(qs_registry_count(), 0);
  char sub[128];
  snprintf(sub, sizeof sub, "%s/models", dir);
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  make_model_in(sub, "m", 1);
  ck_assert_int_eq(qs_registry_sync(sub), 1);
  snprintf(gone, sizeof gone, "%s/moved", dir);
  ck_assert_int_eq(rename(sub, gone), 0);
  ck_assert_int_eq(qs_registry_sync(sub), -1);
  ck_assert_uint_eq(qs_registry_count(), 1);
  qs_model *m = qs_registry_get("m");
  ck_assert_ptr_nonnull(m);
  qs_model_release(m);
}
END_TEST

/* Serves n requests through h as http.c does (one record per thread,
 * reset and reused) and returns the allocations the handler made. */
static long allocations_over(handler_fn h, const char *name, const char *body, size_t len, int n,
                             void (*prep)(qs_req *)) {
  qs_req r = {0};
  long total = 0;
  for (int i = -3; i < n; i++) { /* three warm-up requests */
    qs_req_reset(&r, 1 << 16);
    r.t0_ns = qs_now_ns();
    r.model_slot = -1;
    if (!r.body) {
      r.body = malloc(len + 1);
      r.body_size = len;
    }
    memcpy(r.body, body, len);
    r.body[len] = '\0';
    r.body_len = len;
    if (!r.out.data) qs_buf_init(&r.out, 1024, 1 << 20);
    r.out.cap = 1 << 20;
    if (name) snprintf(r.name, sizeof r.name, "%s", name);
    if (prep) prep(&r);
    long before = atomic_load(&calls);
    h(&r);
    long made = atomic_load(&calls) - before;
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.out.data);
    if (i >= 0) total += made;
  }
  qs_req_free_buffers(&r);
  return total;
}

static void prep_binary(qs_req *r) {
  r->bin_in = true;
  snprintf(r->qmodel, sizeof r->qmodel, "m");
}

static void prep_binary_out(qs_req *r) {
  prep_binary(r);
  r->bin_out = true;
}

/* The v2 binary extension: a JSON header of hlen bytes, then raw floats. */
static size_t v2_hlen;

static void prep_v2_binary(qs_req *r) {
  r->v2_bin = true;
  r->v2_hlen = v2_hlen;
}

/* A cold thread: its decoding scratch dropped before each request. */
static void prep_cold(qs_req *r) {
  (void)r;
  qs_api_ctx_drop();
}

/* A warm thread allocates nothing per request on any HTTP path: counted
 * with the wrapped allocator (jansson's allocations come through it too)
 * over 1,000 requests each, numbers written with 17 significant digits as
 * Python's json.dumps writes numpy floats. */
START_TEST(zero_allocations_per_request) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  const char *json = "{\"model\":\"m\",\"inputs\":[[0.10000000149011612,0.20000000298023224,"
                     "0.30000001192092896,0.40000000596046448,0.5,0.60000002384185791,"
                     "0.69999998807907104,0.80000001192092896]],\"extra\":{\"a\":[[],[],{\"b\":null}]}}";
  ck_assert_int_eq(allocations_over(qs_handle_predict, NULL, json, strlen(json), 1000, NULL), 0);
  const char *nobase = "{\"model\":\"m\",\"baseline\":false,\"fp32_outputs\":false,\"mode\":\"static\","
                       "\"inputs\":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}";
  ck_assert_int_eq(allocations_over(qs_handle_predict, NULL, nobase, strlen(nobase), 1000, NULL), 0);
  float rows[16];
  for (int i = 0; i < 16; i++) rows[i] = (float)i / 16.0f;
  ck_assert_int_eq(allocations_over(qs_handle_predict_binary, NULL, (const char *)rows, sizeof rows, 1000, prep_binary), 0);
  ck_assert_int_eq(
      allocations_over(qs_handle_predict_binary, NULL, (const char *)rows, sizeof rows, 1000, prep_binary_out), 0);
  /* KServe v2 JSON: flat data of 17-digit numbers. */
  const char *v2 = "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,8],\"datatype\":\"FP32\","
                   "\"data\":[0.10000000149011612,0.20000000298023224,0.30000001192092896,"
                   "0.40000000596046448,0.5,0.60000002384185791,0.69999998807907104,0.80000001192092896]}]}";
  ck_assert_int_eq(allocations_over(qs_handle_v2_infer, "m", v2, strlen(v2), 1000, NULL), 0);
  /* ... with an id (escaped, so decoded), parameters, requested outputs,
   * nested data before the shape, and an unknown nested member. */
  const char *v2full = "{\"id\":\"req-\\u00e9\\\"42\\\"\",\"parameters\":{\"baseline\":true,\"mode\":\"dynamic\","
                       "\"x\":[{}]},\"inputs\":[{\"name\":\"input\",\"data\":[[1,2,3,4,5,6,7,8],[0.5,0,0,0,1,1,1,1]],"
                       "\"datatype\":\"FP32\",\"shape\":[2,8],\"parameters\":{\"content_type\":\"x\"}}],"
                       "\"outputs\":[{\"name\":\"output\",\"parameters\":{\"binary_data\":false}}],"
                       "\"extra\":{\"a\":[[],[],{\"b\":null}]}}";
  ck_assert_int_eq(allocations_over(qs_handle_v2_infer, "m", v2full, strlen(v2full), 1000, NULL), 0);
  /* The binary extension, in and out. */
  char bin[512];
  int hl = snprintf(bin, sizeof bin,
                    "{\"id\":\"b\",\"inputs\":[{\"name\":\"input\",\"shape\":[2,8],\"datatype\":\"FP32\","
                    "\"parameters\":{\"binary_data_size\":64}}],\"parameters\":{\"binary_data_output\":true}}");
  memcpy(bin + hl, rows, sizeof rows);
  v2_hlen = (size_t)hl;
  ck_assert_int_eq(allocations_over(qs_handle_v2_infer, "m", bin, (size_t)hl + sizeof rows, 1000, prep_v2_binary),
                   0);
  /* The counter does count: a thread whose decoding scratch is dropped
   * before each request allocates it again. */
  ck_assert_int_ge(allocations_over(qs_handle_v2_infer, "m", v2, strlen(v2), 10, prep_cold), 10);
}
END_TEST

static int status_of(handler_fn h, const char *name, const char *body, size_t len) {
  qs_req r;
  req_init(&r, name, body, len);
  h(&r);
  int st = r.status;
  ck_assert_msg(st == 200 || is_error_reply(&r, ""), "status %d: %s", st, r.out.data);
  req_free(&r);
  return st;
}

/* The inputs the fuzzers found (tests/fuzz/regress/): each was accepted as
 * 200 before its fix. */
START_TEST(fuzz_regressions) {
  make_model("m", 1);
  ck_assert_int_eq(qs_registry_sync(dir), 1);
  static const char row[] = "[0.5,0.25,0.125,0,1,0.75,0.3333333,0.9]";
  char body[256];
  /* A NUL byte after the array: jansson 2.14 skipped it. */
  int n = snprintf(body, sizeof body, "{\"model\":\"m\",\"inputs\":%s", row);
  body[n++] = '\0';
  body[n++] = '}';
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, body, (size_t)n), 400);
  /* Bytes after the array merged with the spliced-in placeholder. */
  n = snprintf(body, sizeof body, "{\"model\":\"m\",\"inputs\":[%s]e38}", row);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, body, (size_t)n), 400);
  n = snprintf(body, sizeof body, "{\"model\":\"m\",\"inputs\":[%s].5}", row);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, body, (size_t)n), 400);
  n = snprintf(body, sizeof body,
               "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,8],\"datatype\":\"FP32\",\"data\":%se5}]}", row);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m", body, (size_t)n), 400);
  /* The same bodies without the stray bytes are fine. */
  n = snprintf(body, sizeof body, "{\"model\":\"m\",\"inputs\":[%s]}", row);
  ck_assert_int_eq(status_of(qs_handle_predict, NULL, body, (size_t)n), 200);
  n = snprintf(body, sizeof body,
               "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,8],\"datatype\":\"FP32\",\"data\":%s}]}", row);
  ck_assert_int_eq(status_of(qs_handle_v2_infer, "m", body, (size_t)n), 200);
}
END_TEST

Suite *suite_faults(void) {
  Suite *s = suite_create("faults");
  TCase *t = tcase_create("faults");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 120);
  tcase_add_test(t, predict_allocation_failures);
  tcase_add_test(t, v2_allocation_failures);
  tcase_add_test(t, reload_allocation_failures);
  tcase_add_test(t, corrupt_replacements_refused);
  tcase_add_test(t, missing_directory);
  tcase_add_test(t, fuzz_regressions);
  tcase_add_test(t, zero_allocations_per_request);
  suite_add_tcase(s, t);
  return s;
}
