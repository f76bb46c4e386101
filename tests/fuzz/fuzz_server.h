/* fuzz_server.h - what the request-parser fuzz targets share: two small
 * models loaded into the real registry (through qs_registry_sync, as the
 * server does at start-up), a way to run a handler on a body without HTTP,
 * and the checks every reply must pass.
 *
 * The handlers (qs_handle_predict, qs_handle_v2_infer) read only the
 * qs_req record, the registry and qs_g.cfg, so they are the HTTP-free
 * seam: the fuzzer calls them exactly as http.c does after the body is in.
 *
 * Models: "m" 8 -> 6 -> 3 with labels, "w" 3 -> 2 without. Both tiny so an
 * execution costs microseconds. */
#ifndef QS_FUZZ_SERVER_H
#define QS_FUZZ_SERVER_H

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qat.h"
#include "../lib/model_fixture.h"
#include "api/exchange.h"
#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"
#include "model/registry.h"

#define FZ_MAX_BATCH 16
#define FZ_OUT_CAP (1u << 20)

/* Random models from the one test model maker (tests/lib/model_fixture.c),
 * saved as real model files. */
static void fz_make_model(const char *path, const uint32_t *dims, uint32_t nl, bool labels) {
  fixture_opts o = {.label_prefix = labels ? "l" : NULL};
  qat_fixture *f = fixture_create_opts(dims, nl, 12345, &o);
  assert(f);
  assert(fixture_save(f, path) == QAT_OK);
  fixture_destroy(f);
}

/* Writes both models into a fresh temporary directory and loads it. */
static void fz_setup_registry(void) {
  char dir[] = "/tmp/qs-fuzz.XXXXXX";
  assert(mkdtemp(dir));
  char path[128];
  static const uint32_t dm[] = {8, 6, 3}, dw[] = {3, 2};
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  fz_make_model(path, dm, 2, true);
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  fz_make_model(path, dw, 1, false);
  qs_g.cfg = (qs_config){.models_dir = dir, .host = "127.0.0.1", .threads = 1,
                         .max_body = 1u << 20, .max_batch = FZ_MAX_BATCH, .quiet = true};
  qs_registry_init();
  assert(qs_registry_sync(dir) == 2);
  atomic_store(&qs_g.ready, true);
  /* The registry now holds the models in memory; the files can go. */
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  unlink(path);
  rmdir(dir);
}

/* A request record as http.c makes it once the whole body is in: the body
 * in its own allocation of exactly size bytes + NUL (ASan sees any read
 * past it). */
static void fz_req_init(qs_req *r, const uint8_t *data, size_t size, const char *name) {
  memset(r, 0, sizeof *r);
  r->t0_ns = qs_now_ns();
  r->model_slot = -1;
  r->body = malloc(size + 1);
  assert(r->body);
  memcpy(r->body, data, size);
  r->body[size] = '\0';
  r->body_len = r->body_size = size;
  if (name) snprintf(r->name, sizeof r->name, "%s", name);
  qs_buf_init(&r->out, 1024, FZ_OUT_CAP);
}

static void fz_req_free(qs_req *r) {
  free(r->body);
  free(r->xh); /* extra reply headers (binary replies) */
  r->xh = NULL;
  qs_buf_free(&r->out);
}

/* Every reply: a status from the documented set, a buffer that did not
 * overflow, valid JSON, and for errors exactly {"error": "<text>"}.
 * Returns the parsed reply (caller decrefs). */
static json_t *fz_check_reply(const qs_req *r) {
  static const int ok_status[] = {200, 400, 404, 413, 422, 503};
  bool known = false;
  for (size_t i = 0; i < sizeof ok_status / sizeof *ok_status; i++) known |= r->status == ok_status[i];
  if (!known) {
    fprintf(stderr, "unexpected status %d: %s\n", r->status, r->out.data ? r->out.data : "");
    abort();
  }
  assert(!r->out.failed && r->out.data && r->out.len > 0);
  json_error_t je;
  json_t *reply = json_loadb(r->out.data, r->out.len, JSON_REJECT_DUPLICATES, &je);
  if (!reply) {
    fprintf(stderr, "reply is not JSON (%s): %.*s\n", je.text, (int)r->out.len, r->out.data);
    abort();
  }
  assert(json_is_object(reply));
  if (r->status != 200) {
    assert(json_object_size(reply) == 1);
    assert(json_is_string(json_object_get(reply, "error")));
    assert(json_string_length(json_object_get(reply, "error")) > 0);
  }
  return reply;
}

/* Every number in a row of outputs: a finite real. Returns the row width. */
static size_t fz_check_finite_row(json_t *row) {
  assert(json_is_array(row));
  size_t i;
  json_t *v;
  json_array_foreach(row, i, v) {
    assert(json_is_number(v));
    assert(isfinite(json_number_value(v)));
  }
  return json_array_size(row);
}

/* Deepest nesting of a jansson value (a scalar is 0, [] is 1). */
static int fz_depth(json_t *v) {
  int d = 0;
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      int k = fz_depth(x);
      if (k > d) d = k;
    }
    return d + 1;
  }
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      int e = fz_depth(x);
      if (e > d) d = e;
    }
    return d + 1;
  }
  return 0;
}

/* Whether a number that fits a float: jansson reads doubles; the server
 * rounds the decimal to float directly. Both agree on finiteness except
 * within half an ulp of FLT_MAX's rounding boundary, which the oracle
 * leaves out. */
static int fz_float_class(json_t *v) {
  if (!json_is_number(v)) return -1; /* not a number */
  double d = json_number_value(v);
  double a = fabs(d);
  if (a >= 3.4028234e38 && a <= 3.4028236e38) return 2; /* ambiguous: skip */
  return isfinite((float)d) ? 1 : 0;
}

/* Longest run of number characters in the body (the server refuses number
 * tokens over 511 characters; the oracle leaves those out). */
static size_t fz_longest_number_run(const uint8_t *d, size_t n) {
  size_t best = 0, cur = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = d[i];
    if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
      if (++cur > best) best = cur;
    } else {
      cur = 0;
    }
  }
  return best;
}

#endif
