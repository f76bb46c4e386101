/* test_data.c - the IDX and CSV readers: good files parse to the right
 * numbers, gzip and plain alike; malformed files are refused with their own
 * error codes. Files are written by the test into a temp directory. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "qat.h"
#include "qat_train.h"

Suite *suite_data(void);

static char tmpdir[256];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/qat_data_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

static const char *tpath(const char *name) {
  static char p[2][512];
  static int k;
  k ^= 1;
  snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
  return p[k];
}

static void write_bytes(const char *path, const void *b, size_t n, bool gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
  }
}

static size_t put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return 4;
}

/* An images file of n samples of r x c bytes, pixel i = (i * 7 + s) & 255. */
static size_t make_images(uint8_t *b, uint32_t n, uint32_t r, uint32_t c) {
  size_t o = put_be32(b, 0x00000803);
  o += put_be32(b + o, n);
  o += put_be32(b + o, r);
  o += put_be32(b + o, c);
  for (size_t i = 0; i < (size_t)n * r * c; i++) b[o++] = (uint8_t)(i * 7 + 3);
  return o;
}

static size_t make_labels(uint8_t *b, uint32_t n, uint32_t mod) {
  size_t o = put_be32(b, 0x00000801);
  o += put_be32(b + o, n);
  for (uint32_t i = 0; i < n; i++) b[o++] = (uint8_t)(i % mod);
  return o;
}

START_TEST(idx_reads_plain_and_gzip) {
  uint8_t img[1024], lab[64];
  size_t ni = make_images(img, 5, 4, 3), nl = make_labels(lab, 5, 10);
  for (int gz = 0; gz < 2; gz++) {
    write_bytes(tpath("i"), img, ni, gz);
    write_bytes(tpath("l"), lab, nl, gz);
    qat_dataset *d = NULL;
    ck_assert_int_eq(qat_dataset_load_idx(tpath("i"), tpath("l"), 10, &d), QAT_OK);
    ck_assert_uint_eq(d->n, 5);
    ck_assert_uint_eq(d->dim, 12);
    ck_assert_uint_eq(d->n_classes, 10);
    for (size_t i = 0; i < 60; i++)
      ck_assert(d->x[i] == (float)(uint8_t)(i * 7 + 3) / 255.0f);
    for (uint32_t i = 0; i < 5; i++) ck_assert_uint_eq(d->y[i], i);
    qat_dataset_destroy(d);
  }
  /* n_classes 0: max label + 1. */
  qat_dataset *d = NULL;
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni, lab, nl, 0, &d), QAT_OK);
  ck_assert_uint_eq(d->n_classes, 5);
  qat_dataset *s = NULL;
  ck_assert_int_eq(qat_dataset_slice(d, 3, 2, &s), QAT_OK);
  ck_assert_uint_eq(s->n, 2);
  ck_assert_uint_eq(s->y[0], 3);
  ck_assert(s->x[0] == d->x[36]);
  ck_assert_int_eq(qat_dataset_slice(d, 4, 2, &s), QAT_EINVAL);
  qat_dataset_destroy(s);
  qat_dataset_destroy(d);
}
END_TEST

START_TEST(idx_refuses_malformed) {
  uint8_t img[1024], lab[64], bad[1024];
  size_t ni = make_images(img, 5, 4, 3), nl = make_labels(lab, 5, 10);
  qat_dataset *d = NULL;
  /* wrong magic: a labels file as images, a 0x0802 type, garbage */
  ck_assert_int_eq(qat_dataset_load_idx_mem(lab, nl, lab, nl, 10, &d), QAT_EDATA);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "magic"));
  memcpy(bad, img, ni);
  bad[2] = 0x09;
  ck_assert_int_eq(qat_dataset_load_idx_mem(bad, ni, lab, nl, 10, &d), QAT_EDATA);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "magic"));
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni, img, ni, 10, &d), QAT_EDATA);
  /* truncated: a pixel short, a header short, empty */
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni - 1, lab, nl, 10, &d), QAT_ETRUNC);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "truncated"));
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, 10, lab, nl, 10, &d), QAT_ETRUNC);
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, 0, lab, nl, 10, &d), QAT_ETRUNC);
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni, lab, nl - 1, 10, &d), QAT_ETRUNC);
  /* a header claiming 2^32-1 images in a small file: refused, not allocated */
  memcpy(bad, img, ni);
  put_be32(bad + 4, 0xffffffffu);
  ck_assert_int_eq(qat_dataset_load_idx_mem(bad, ni, lab, nl, 10, &d), QAT_ETRUNC);
  /* trailing bytes */
  memcpy(bad, img, ni);
  bad[ni] = 0;
  ck_assert_int_eq(qat_dataset_load_idx_mem(bad, ni + 1, lab, nl, 10, &d), QAT_EDATA);
  /* counts disagree */
  uint8_t lab4[64];
  size_t nl4 = make_labels(lab4, 4, 10);
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni, lab4, nl4, 10, &d), QAT_EDIM);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "5 images but 4 labels"));
  /* labels out of range */
  uint8_t lab12[64];
  memcpy(lab12, lab, nl);
  lab12[8 + 2] = 12;
  ck_assert_int_eq(qat_dataset_load_idx_mem(img, ni, lab12, nl, 10, &d), QAT_ERANGE);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "label 12"));
  /* corrupt and truncated gzip */
  write_bytes(tpath("i.gz"), img, ni, true);
  FILE *f = fopen(tpath("i.gz"), "rb");
  size_t gl = fread(bad, 1, sizeof bad, f);
  fclose(f);
  ck_assert_int_eq(qat_dataset_load_idx_mem(bad, gl / 2, lab, nl, 10, &d), QAT_ETRUNC);
  bad[gl / 2] ^= 0x55;
  bad[gl / 2 + 1] ^= 0xaa;
  qat_err e = qat_dataset_load_idx_mem(bad, gl, lab, nl, 10, &d);
  ck_assert(e == QAT_EDATA || e == QAT_ETRUNC);
  /* the file entry point names the file */
  write_bytes(tpath("l"), lab4, nl4, false);
  write_bytes(tpath("i"), img, ni, false);
  ck_assert_int_eq(qat_dataset_load_idx(tpath("i"), tpath("l"), 10, &d), QAT_EDIM);
  ck_assert_int_eq(qat_dataset_load_idx(tpath("nope"), tpath("l"), 10, &d), QAT_EIO);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "nope"));
}
END_TEST

static qat_err csv(const char *text, qat_dataset **d) {
  qat_csv_opts o = {.label_col = 0, .divisor = 2.0f, .n_classes = 3};
  return qat_dataset_load_csv_mem(text, strlen(text), &o, d);
}

START_TEST(csv_reads) {
  qat_dataset *d = NULL;
  ck_assert_int_eq(csv("label,a,b\n2, 1.5 ,4\r\n0,-2,1e1\n\n1,0,0", &d), QAT_OK);
  ck_assert_uint_eq(d->n, 3);
  ck_assert_uint_eq(d->dim, 2);
  ck_assert_uint_eq(d->n_classes, 3);
  ck_assert_uint_eq(d->y[0], 2);
  ck_assert_uint_eq(d->y[1], 0);
  ck_assert_uint_eq(d->y[2], 1);
  ck_assert(d->x[0] == 0.75f && d->x[1] == 2.0f && d->x[2] == -1.0f && d->x[3] == 5.0f);
  qat_dataset_destroy(d);
  /* label in the last column, from a file */
  const char *t = "1,2,0\n3,4,1\n";
  FILE *f = fopen(tpath("c.csv"), "w");
  fputs(t, f);
  fclose(f);
  qat_csv_opts o = {.label_col = 2, .divisor = 1.0f, .n_classes = 0};
  ck_assert_int_eq(qat_dataset_load_csv(tpath("c.csv"), &o, &d), QAT_OK);
  ck_assert_uint_eq(d->n_classes, 2);
  ck_assert(d->x[2] == 3.0f && d->y[1] == 1);
  qat_dataset_destroy(d);
}
END_TEST

START_TEST(csv_refuses_malformed) {
  qat_dataset *d = NULL;
  ck_assert_int_eq(csv("0,1,2\n1,1,x\n", &d), QAT_EDATA);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "line 2 column 3"));
  ck_assert_int_eq(csv("0,1,2\n1,1,nan\n", &d), QAT_EDATA);
  ck_assert_int_eq(csv("0,1,2\n1,1,\n", &d), QAT_EDATA);
  ck_assert_int_eq(csv("0,1,2\n1,1,0x10\n", &d), QAT_EDATA);
  ck_assert_int_eq(csv("0,1,2\n1,1e999,2\n", &d), QAT_EDATA);
  /* ragged rows */
  ck_assert_int_eq(csv("0,1,2\n1,1\n", &d), QAT_EDIM);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "line 2"));
  ck_assert_int_eq(csv("0,1,2\n1,1,2,3\n", &d), QAT_EDIM);
  /* labels out of range or not integers */
  ck_assert_int_eq(csv("0,1,2\n3,1,2\n", &d), QAT_ERANGE);
  ck_assert_int_eq(csv("0,1,2\n-1,1,2\n", &d), QAT_ERANGE);
  ck_assert_int_eq(csv("0.5,1,2\n", &d), QAT_ERANGE);
  /* nothing to read */
  ck_assert_int_eq(csv("", &d), QAT_EDATA);
  ck_assert_int_eq(csv("a,b,c\n", &d), QAT_EDATA);
  ck_assert_int_eq(csv("1\n2\n", &d), QAT_EDATA);
  qat_csv_opts o = {.label_col = 5, .divisor = 1.0f};
  ck_assert_int_eq(qat_dataset_load_csv_mem("0,1\n", 4, &o, &d), QAT_EINVAL);
  o.label_col = 0;
  o.divisor = 0.0f;
  ck_assert_int_eq(qat_dataset_load_csv_mem("0,1\n", 4, &o, &d), QAT_EINVAL);
  o.divisor = 1.0f;
  /* not NUL-terminated: the reader stays inside len */
  char buf[4] = {'1', ',', '2', '3'};
  ck_assert_int_eq(qat_dataset_load_csv_mem(buf, 3, &o, &d), QAT_OK);
  ck_assert(d->x[0] == 2.0f);
  qat_dataset_destroy(d);
}
END_TEST

Suite *suite_data(void) {
  Suite *s = suite_create("data");
  TCase *t = tcase_create("readers");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, idx_reads_plain_and_gzip);
  tcase_add_test(t, idx_refuses_malformed);
  tcase_add_test(t, csv_reads);
  tcase_add_test(t, csv_refuses_malformed);
  suite_add_tcase(s, t);
  return s;
}
