/* test_safetensors.c - the model file: save -> load -> save round trip
 * (bytes and outputs), and every loader refusal on crafted files, each with
 * its own qat_err and a message naming the tensor or key. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/model_fixture.h"
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

static uint64_t hdr_len(const blob *b) {
  uint64_t n;
  memcpy(&n, b->buf, 8);
  return n;
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
  /* Both output modes, each rounding convention. */
  for (int mode = 0; mode < 6; mode++) {
    qat_fixture *f = fixture_create(dims, 3, 7 + (uint32_t)mode);
    ck_assert_ptr_nonnull(f);
    f->spec.out_mode = mode & 1 ? QAT_OUT_REQUANT : QAT_OUT_DEQUANT_ACC;
    f->spec.rounding = (qat_rounding)(mode / 2);
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
    ck_assert_int_eq(qat_model_rounding(m2), f->spec.rounding);
    /* Version 3 only where the rounding key is needed. */
    ck_assert_ptr_nonnull(strstr((const char *)a.buf + 8, mode / 2 ? "\"format_version\":\"3\""
                                                                   : "\"format_version\":\"2\""));
    ck_assert(!strstr((const char *)a.buf + 8, "\"rounding\"") == (mode / 2 == 0));
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


/* Metadata order in the spec does not change the file; labels and values
 * with quotes, backslashes, commas and non-ASCII text survive the trip. */
START_TEST(deterministic_and_escaping) {
  qat_fixture *f = fixture_create(dims, 3, 3);
  ck_assert_ptr_nonnull(f);
  const char *labels[2] = {"say \"hi\", \\ ok", "T-shirt/top \xc3\xbc \xe2\x9c\x93"};
  const char *k1[3] = {"zeta", "alpha", "mid"}, *v1[3] = {"1", "a,b\n\"c\"", "\xe6\x97\xa5"};
  const char *k2[3] = {"mid", "zeta", "alpha"}, *v2[3] = {"\xe6\x97\xa5", "1", "a,b\n\"c\""};
  f->spec.labels = labels;
  f->spec.n_meta = 3;
  f->spec.meta_keys = k1;
  f->spec.meta_values = v1;
  qat_model *a, *b, *c;
  ck_assert_int_eq(qat_model_create(&f->spec, &a), QAT_OK);
  f->spec.meta_keys = k2;
  f->spec.meta_values = v2;
  ck_assert_int_eq(qat_model_create(&f->spec, &b), QAT_OK);
  make_tmpdir();
  blob x = save_blob(a, "m.safetensors"), y = save_blob(b, "m2.safetensors");
  remove_tmpdir();
  ck_assert_uint_eq(x.len, y.len);
  ck_assert_int_eq(memcmp(x.buf, y.buf, x.len), 0);
  ck_assert_int_eq(qat_model_load_mem(x.buf, x.len, &c), QAT_OK);
  ck_assert_str_eq(qat_model_label(c, 0), labels[0]);
  ck_assert_str_eq(qat_model_label(c, 1), labels[1]);
  ck_assert_str_eq(qat_model_meta(c, "alpha"), "a,b\n\"c\"");
  ck_assert_str_eq(qat_model_meta(c, "mid"), "\xe6\x97\xa5");
  const char *key, *val;
  qat_model_meta_at(c, 0, &key, &val);
  ck_assert_str_eq(key, "alpha");
  qat_model_meta_at(c, 2, &key, &val);
  ck_assert_str_eq(key, "zeta");
  qat_model_destroy(a);
  qat_model_destroy(b);
  qat_model_destroy(c);
  free(x.buf);
  free(y.buf);
  fixture_destroy(f);
}
END_TEST

/* The exact bytes of a tiny model, written out by hand from
 * docs/model-format.md: pins the format (names, dtypes, key order, offsets,
 * padding, byte order) so the PyTorch importer and this writer cannot drift. */
START_TEST(golden_bytes) {
  const int8_t wq[6] = {1, -2, 3, -128, 0, 127};
  const float ws[2] = {0.25f, 0.125f}, bias[2] = {1.0f, -0.5f};
  qat_layer_spec L = {.in_dim = 3, .out_dim = 2, .act = QAT_ACT_RELU, .wq = wq,
                      .w_scale = ws, .bias = bias, .out = {0.1f, 3, 0, 255}, .w_bits = 8};
  const char *keys[1] = {"trained_with"}, *vals[1] = {"hand"};
  const char *labels[2] = {"no", "yes"};
  qat_model_spec spec = {.n_layers = 1, .layers = &L, .input = {0.5f, 0, 0, 255},
                         .out_mode = QAT_OUT_REQUANT, .n_labels = 2, .labels = labels,
                         .n_meta = 1, .meta_keys = keys, .meta_values = vals};
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&spec, &m), QAT_OK);
  make_tmpdir();
  blob b = save_blob(m, "m.safetensors");
  remove_tmpdir();
  qat_model_destroy(m);
  const char *want_hdr =
      "{\"__metadata__\":{\"activations\":\"relu\",\"architecture\":\"3-2\","
      "\"format\":\"qatserve\",\"format_version\":\"2\","
      "\"labels\":\"[\\\"no\\\",\\\"yes\\\"]\",\"output_mode\":\"requant\","
      /* hashlib.sha256 of each tensor's bytes below */
      "\"sha256.activations.qmax\":\"993e8d8be40d896257ca43366b4e7c88768153029a02269e6fc270e6d76076a3\","
      "\"sha256.activations.scale\":\"bf262533896fce6ff51ba1348c23a759ea979b70203b20a3dd1c0f7ca7be1ae5\","
      "\"sha256.activations.zero_point\":\"9ae4c9d0864c30005acac91f21015f39e35691a056d606a097c8cf8380275a17\","
      "\"sha256.layers.0.bias\":\"e5e0ce39fac89cd93af5ba8bcad2fe35d88c75417c7e44941fe5ee4e48f1cf75\","
      "\"sha256.layers.0.bias_fp32\":\"e5e0ce39fac89cd93af5ba8bcad2fe35d88c75417c7e44941fe5ee4e48f1cf75\","
      "\"sha256.layers.0.bias_q\":\"cef74054b35b023462a18e6f90f36fe2af6a38ff6092755df5231b4443e8834d\","
      "\"sha256.layers.0.weight_fp32\":\"391b2f85e0f636d583a92f4f120cadcf40e49b6d8279cfd0dcc6c3e6a2270ba7\","
      "\"sha256.layers.0.weight_q\":\"d86a2a1e604fd822693cccaeeaaeb572d6ec784ed8a02eff452749e955b12bcf\","
      "\"sha256.layers.0.weight_scale\":\"1070572a924b011176aa5c7c79f0b60d549a98a1aecc081ae637e29601a17fac\","
      "\"trained_with\":\"hand\",\"weight_bits\":\"8\"},"
      "\"activations.qmax\":{\"data_offsets\":[72,80],\"dtype\":\"I32\",\"shape\":[2]},"
      "\"activations.scale\":{\"data_offsets\":[56,64],\"dtype\":\"F32\",\"shape\":[2]},"
      "\"activations.zero_point\":{\"data_offsets\":[64,72],\"dtype\":\"I32\",\"shape\":[2]},"
      "\"layers.0.bias\":{\"data_offsets\":[8,16],\"dtype\":\"F32\",\"shape\":[2]},"
      "\"layers.0.bias_fp32\":{\"data_offsets\":[48,56],\"dtype\":\"F32\",\"shape\":[2]},"
      "\"layers.0.bias_q\":{\"data_offsets\":[16,24],\"dtype\":\"I32\",\"shape\":[2]},"
      "\"layers.0.weight_fp32\":{\"data_offsets\":[24,48],\"dtype\":\"F32\",\"shape\":[2,3]},"
      "\"layers.0.weight_q\":{\"data_offsets\":[80,86],\"dtype\":\"I8\",\"shape\":[2,3]},"
      "\"layers.0.weight_scale\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]}}";
  size_t n = strlen(want_hdr), padded = (n + 7) / 8 * 8;
  ck_assert_uint_eq(hdr_len(&b), padded);
  ck_assert_uint_eq(b.len, 8 + padded + 86);
  /* The length is little-endian u64. */
  for (int i = 0; i < 8; i++) ck_assert_uint_eq(b.buf[i], (padded >> (8 * i)) & 0xFF);
  ck_assert_int_eq(memcmp(b.buf + 8, want_hdr, n), 0);
  for (size_t i = n; i < padded; i++) ck_assert_uint_eq(b.buf[8 + i], ' ');
  /* The data section, little-endian, in the documented order: bias_q is
   * rint(1.0 / (0.25 * 0.5)) = 8 and rint(-0.5 / (0.125 * 0.5)) = -8; the
   * fp32 weights default to the dequantized ones. */
  const uint8_t *d = b.buf + 8 + padded;
  const float f_ws[2] = {0.25f, 0.125f}, f_b[2] = {1.0f, -0.5f};
  const int32_t i_bq[2] = {8, -8};
  const float f_wf[6] = {0.25f, -0.5f, 0.75f, -16.0f, 0.0f, 15.875f};
  const float f_as[2] = {0.5f, 0.1f};
  const int32_t i_zp[2] = {0, 3}, i_qm[2] = {255, 255};
  ck_assert_int_eq(memcmp(d + 0, f_ws, 8), 0);
  ck_assert_int_eq(memcmp(d + 8, f_b, 8), 0);
  ck_assert_int_eq(memcmp(d + 16, i_bq, 8), 0);
  ck_assert_int_eq(memcmp(d + 24, f_wf, 24), 0);
  ck_assert_int_eq(memcmp(d + 48, f_b, 8), 0);
  ck_assert_int_eq(memcmp(d + 56, f_as, 8), 0);
  ck_assert_int_eq(memcmp(d + 64, i_zp, 8), 0);
  ck_assert_int_eq(memcmp(d + 72, i_qm, 8), 0);
  ck_assert_int_eq(memcmp(d + 80, wq, 6), 0);
  ck_assert_uint_eq(d[80 + 3], 0x80); /* -128, two's complement */
  free(b.buf);
}
END_TEST

/* ---- crafted files ----------------------------------------------------- */

/* A valid file of the 6-4-3-2 fixture model, made fresh for each test. */
static blob valid_blob(void) {
  qat_fixture *f = fixture_create(dims, 3, 7);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  make_tmpdir();
  blob b = save_blob(m, "m.safetensors");
  remove_tmpdir();
  qat_model_destroy(m);
  fixture_destroy(f);
  return b;
}

static json_t *hdr(const blob *b) {
  json_error_t e;
  json_t *j = json_loadb((const char *)b->buf + 8, hdr_len(b), 0, &e);
  ck_assert_ptr_nonnull(j);
  return j;
}

/* The same data section under a new header (the header is consumed). */
static blob rebuild(const blob *b, json_t *root, size_t extra_data) {
  char *h = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  ck_assert_ptr_nonnull(h);
  json_decref(root);
  uint64_t n = strlen(h), old = hdr_len(b);
  size_t dsize = b->len - 8 - old;
  blob o = {calloc(1, 8 + n + dsize + extra_data), 8 + n + dsize + extra_data};
  ck_assert_ptr_nonnull(o.buf);
  memcpy(o.buf, &n, 8);
  memcpy(o.buf + 8, h, n);
  memcpy(o.buf + 8 + n, b->buf + 8 + old, dsize);
  free(h);
  return o;
}

/* Where a tensor's bytes are, per the blob's own header. */
static uint8_t *tensor_at(const blob *b, const char *name) {
  json_t *j = hdr(b);
  json_t *t = json_object_get(j, name);
  ck_assert_ptr_nonnull(t);
  size_t off = (size_t)json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
  json_decref(j);
  return b->buf + 8 + hdr_len(b) + off;
}

static void expect_refusal(const blob *b, qat_err want, const char *needle, int line) {
  qat_model *m = NULL;
  qat_err e = qat_model_load_mem(b->buf, b->len, &m);
  ck_assert_msg(e == want, "line %d: expected %s, got %s: %s", line, qat_err_name(want),
                qat_err_name(e), qat_errmsg());
  ck_assert_msg(!needle || strstr(qat_errmsg(), needle),
                "line %d: message '%s' does not name '%s'", line, qat_errmsg(), needle);
  if (e == QAT_OK) qat_model_destroy(m);
}
#define EXPECT(b, code, needle) expect_refusal(&(b), code, needle, __LINE__)

static void set_meta(json_t *root, const char *key, const char *value) {
  json_t *meta = json_object_get(root, "__metadata__");
  if (value) json_object_set_new(meta, key, json_string(value));
  else json_object_del(meta, key);
}

/* Header edits: one per case, each breaking one rule. */
static blob with_meta(const blob *b, const char *key, const char *value) {
  json_t *j = hdr(b);
  set_meta(j, key, value);
  return rebuild(b, j, 0);
}

static blob with_field(const blob *b, const char *tensor, const char *field, json_t *v) {
  json_t *j = hdr(b);
  json_object_set_new(json_object_get(j, tensor), field, v);
  return rebuild(b, j, 0);
}

START_TEST(valid_file_loads) {
  blob b = valid_blob();
  EXPECT(b, QAT_OK, NULL);
  /* Rebuilding the header alone (different padding) still loads. */
  blob r = rebuild(&b, hdr(&b), 0);
  EXPECT(r, QAT_OK, NULL);
  free(r.buf);
  free(b.buf);
}
END_TEST

START_TEST(truncated) {
  blob b = valid_blob();
  uint64_t n = hdr_len(&b);
  blob t = b;
  t.len = 0; EXPECT(t, QAT_ETRUNC, NULL);
  t.len = 7; EXPECT(t, QAT_ETRUNC, NULL);
  t.len = 8; EXPECT(t, QAT_EHDRSIZE, NULL);
  t.len = 8 + n / 2; EXPECT(t, QAT_EHDRSIZE, NULL);      /* inside the header */
  t.len = 8 + n - 1; EXPECT(t, QAT_EHDRSIZE, NULL);
  t.len = 8 + n; EXPECT(t, QAT_EOFFSET, "past");         /* no data at all */
  t.len = 8 + n + 100; EXPECT(t, QAT_EOFFSET, "past");   /* inside the data */
  t.len = b.len - 1; EXPECT(t, QAT_EOFFSET, "layers.");  /* last byte missing */
  free(b.buf);
}
END_TEST

START_TEST(header_length) {
  blob b = valid_blob();
  blob c = {malloc(b.len), b.len};
  ck_assert_ptr_nonnull(c.buf);
  const uint64_t bad[] = {0, 1, b.len - 7, b.len, UINT64_MAX, (uint64_t)1 << 63};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memcpy(c.buf, b.buf, b.len);
    memcpy(c.buf, &bad[i], 8);
    EXPECT(c, QAT_EHDRSIZE, "header length");
  }
  /* More than 16 MiB of header is refused even when the file is that big. */
  size_t big = ((size_t)16 << 20) + 16;
  blob h = {malloc(big + 8), big + 8};
  ck_assert_ptr_nonnull(h.buf);
  uint64_t hl = big;
  memcpy(h.buf, &hl, 8);
  memset(h.buf + 8, ' ', big);
  h.buf[8] = '{';
  h.buf[9] = '}';
  EXPECT(h, QAT_EHDRSIZE, NULL);
  free(h.buf);
  free(c.buf);
  free(b.buf);
}
END_TEST

START_TEST(bad_json) {
  blob b = valid_blob();
  uint64_t n = hdr_len(&b);
  blob c = {malloc(b.len), b.len};
  ck_assert_ptr_nonnull(c.buf);
  /* Break the JSON in place, keeping every length. */
  const struct { size_t at; char ch; } cuts[] = {{0, '['}, {1, ' '}, {n - 1, ','}, {10, '\0'}};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    memcpy(c.buf, b.buf, b.len);
    c.buf[8 + cuts[i].at] = (uint8_t)cuts[i].ch;
    EXPECT(c, QAT_EJSON, "JSON");
  }
  /* Valid JSON, wrong shape: an array, a duplicate key, an unknown tensor,
   * an entry that is not an object, an extra field, a float offset. */
  memcpy(c.buf, b.buf, b.len);
  blob arr = {malloc(8 + 8), 16};
  ck_assert_ptr_nonnull(arr.buf);
  uint64_t two = 8;
  memcpy(arr.buf, &two, 8);
  memcpy(arr.buf + 8, "[]      ", 8);
  EXPECT(arr, QAT_EJSON, "not an object");
  free(arr.buf);
  char *h = malloc(n + 1);
  ck_assert_ptr_nonnull(h);
  memcpy(h, b.buf + 8, n);
  h[n] = '\0';
  char *dup = malloc(n + 64);
  ck_assert_ptr_nonnull(dup);
  /* {"__metadata__":..., -> {"x":1,"x":2,"__metadata__":... */
  snprintf(dup, n + 64, "{\"x\":1,\"x\":2,%s", h + 1);
  json_t *unused = hdr(&b);
  json_decref(unused);
  size_t dl = strlen(dup);
  blob d = {calloc(1, 8 + dl + (b.len - 8 - n)), 8 + dl + (b.len - 8 - n)};
  ck_assert_ptr_nonnull(d.buf);
  uint64_t dl64 = dl;
  memcpy(d.buf, &dl64, 8);
  memcpy(d.buf + 8, dup, dl);
  memcpy(d.buf + 8 + dl, b.buf + 8 + n, b.len - 8 - n);
  EXPECT(d, QAT_EJSON, "JSON");
  free(d.buf);
  free(dup);
  free(h);

  json_t *j = hdr(&b);
  json_object_set(j, "layers.3.weight_q", json_object_get(j, "layers.0.weight_q"));
  blob u = rebuild(&b, j, 0);
  EXPECT(u, QAT_EJSON, "layers.3.weight_q");
  free(u.buf);
  j = hdr(&b);
  json_object_set(j, "extra", json_object_get(j, "layers.0.bias"));
  u = rebuild(&b, j, 0);
  EXPECT(u, QAT_EJSON, "extra");
  free(u.buf);
  j = hdr(&b);
  json_object_set_new(j, "layers.0.bias", json_integer(3));
  u = rebuild(&b, j, 0);
  EXPECT(u, QAT_EJSON, "layers.0.bias");
  free(u.buf);
  u = with_field(&b, "layers.1.bias", "note", json_string("x"));
  EXPECT(u, QAT_EJSON, "layers.1.bias");
  free(u.buf);
  u = with_field(&b, "layers.1.bias", "data_offsets", json_pack("[f,f]", 0.0, 12.0));
  EXPECT(u, QAT_EJSON, "layers.1.bias");
  free(u.buf);
  u = with_field(&b, "layers.1.bias", "shape", json_pack("[s]", "3"));
  EXPECT(u, QAT_EJSON, "layers.1.bias");
  free(u.buf);
  free(c.buf);
  free(b.buf);
}
END_TEST

START_TEST(metadata) {
  blob b = valid_blob();
  const struct {
    const char *key, *value;
    qat_err want;
  } cases[] = {
      {"format_version", "4", QAT_EVERSION},
      {"rounding", "onnxruntime", QAT_EVERSION},   /* needs version 3 */
      {"format_version", "1", QAT_EMETA}, /* checksums need version 2 */
      {"format_version", "", QAT_EVERSION},
      {"format_version", NULL, QAT_EMISSING},
      {"format", "qatserv", QAT_EMETA},
      {"format", NULL, QAT_EMISSING},
      {"architecture", NULL, QAT_EMISSING},
      {"architecture", "6-4-3", QAT_EMETA},         /* 2 layers: 3 activations */
      {"architecture", "6-4-3-2-", QAT_EMETA},
      {"architecture", "6-04-3-2", QAT_EMETA},
      {"architecture", "6-4-3-0", QAT_EMETA},
      {"architecture", "6-4-3-99999", QAT_EMETA},
      {"architecture", "6-5-3-2", QAT_EMETA},       /* disagrees with the tensors */
      {"activations", "relu,relu", QAT_EMETA},
      {"activations", "relu,sigmoid,none", QAT_EMETA},
      {"activations", "relu,relu,none,", QAT_EMETA},
      {"activations", NULL, QAT_EMISSING},
      {"weight_bits", "8,8,9", QAT_EMETA},
      {"weight_bits", "8,8", QAT_EMETA},
      {"weight_bits", "8,4,8", QAT_ERANGE},         /* weights beyond 4 bits */
      {"output_mode", "dequant", QAT_EMETA},
      {"output_mode", NULL, QAT_EMISSING},
      {"labels", "[\"a\",\"b\",\"c\"]", QAT_ELABELS},
      {"labels", "[\"a\"]", QAT_ELABELS},
      {"labels", "[\"a\",2]", QAT_EMETA},
      {"labels", "{\"a\":1}", QAT_EMETA},
      {"labels", "[\"a\",", QAT_EMETA},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    blob m = with_meta(&b, cases[i].key, cases[i].value);
    qat_model *mm = NULL;
    qat_err e = qat_model_load_mem(m.buf, m.len, &mm);
    ck_assert_msg(e == cases[i].want, "%s=%s: expected %s, got %s (%s)", cases[i].key,
                  cases[i].value ? cases[i].value : "(missing)", qat_err_name(cases[i].want),
                  qat_err_name(e), qat_errmsg());
    if (cases[i].want != QAT_ERANGE && strcmp(cases[i].key, "architecture") != 0)
      ck_assert_msg(strstr(qat_errmsg(), cases[i].key) ||
                        (cases[i].want == QAT_ELABELS && strstr(qat_errmsg(), "labels")),
                    "message '%s' does not name '%s'", qat_errmsg(), cases[i].key);
    free(m.buf);
  }
  /* Labels may be absent; free-form keys survive; non-string values do not. */
  blob m = with_meta(&b, "labels", NULL);
  EXPECT(m, QAT_OK, NULL);
  free(m.buf);
  /* Version 3: `rounding` is read, and checked. */
  blob v3 = with_meta(&b, "format_version", "3");
  EXPECT(v3, QAT_OK, NULL);
  m = with_meta(&v3, "rounding", "onnxruntime-float");
  EXPECT(m, QAT_OK, NULL);
  free(m.buf);
  m = with_meta(&v3, "rounding", "tensorflow");
  EXPECT(m, QAT_EMETA, "rounding");
  free(m.buf);
  free(v3.buf);
  json_t *j = hdr(&b);
  json_object_set_new(json_object_get(j, "__metadata__"), "epochs", json_integer(3));
  m = rebuild(&b, j, 0);
  EXPECT(m, QAT_EMETA, "epochs");
  free(m.buf);
  j = hdr(&b);
  json_object_del(j, "__metadata__");
  m = rebuild(&b, j, 0);
  EXPECT(m, QAT_EMISSING, "__metadata__");
  free(m.buf);
  free(b.buf);
}
END_TEST

START_TEST(offsets_and_tiling) {
  blob b = valid_blob();
  json_t *j = hdr(&b);
  /* Overlap: layers.0.bias_fp32 points at layers.0.bias's bytes (same size). */
  json_t *off = json_object_get(json_object_get(j, "layers.0.bias"), "data_offsets");
  json_object_set(json_object_get(j, "layers.0.bias_fp32"), "data_offsets", off);
  blob o = rebuild(&b, j, 0);
  EXPECT(o, QAT_EOVERLAP, "overlap");
  free(o.buf);
  /* Gap: trailing bytes after the last tensor. */
  o = rebuild(&b, hdr(&b), 4);
  EXPECT(o, QAT_EOVERLAP, "after the last tensor");
  free(o.buf);
  /* Gap inside: the last tensor (by offset) moved 4 bytes on, data grown by 4. */
  j = hdr(&b);
  json_t *t = json_object_get(j, "layers.2.weight_q");
  json_int_t b0 = json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
  json_int_t e0 = json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 1));
  ck_assert_int_eq(e0, (json_int_t)(b.len - 8 - hdr_len(&b))); /* it is the last */
  json_object_set_new(t, "data_offsets", json_pack("[II]", b0 + 4, e0 + 4));
  o = rebuild(&b, j, 4);
  EXPECT(o, QAT_EOVERLAP, "gap");
  free(o.buf);
  /* Outside the data section, negative, reversed, huge. */
  o = with_field(&b, "layers.2.weight_q", "data_offsets", json_pack("[II]", b0 + 100, e0 + 100));
  EXPECT(o, QAT_EOFFSET, "layers.2.weight_q");
  free(o.buf);
  o = with_field(&b, "layers.0.bias", "data_offsets", json_pack("[ii]", -16, 0));
  EXPECT(o, QAT_EOFFSET, "layers.0.bias");
  free(o.buf);
  o = with_field(&b, "layers.0.bias", "data_offsets", json_pack("[ii]", 16, 0));
  EXPECT(o, QAT_EOFFSET, "layers.0.bias");
  free(o.buf);
  o = with_field(&b, "layers.0.bias", "data_offsets",
                 json_pack("[II]", (json_int_t)0, (json_int_t)INT64_MAX));
  EXPECT(o, QAT_EOFFSET, "layers.0.bias");
  free(o.buf);
  free(b.buf);
}
END_TEST

START_TEST(dtypes_and_shapes) {
  blob b = valid_blob();
  blob o = with_field(&b, "layers.0.weight_scale", "dtype", json_string("I32"));
  EXPECT(o, QAT_EDTYPE, "layers.0.weight_scale");
  free(o.buf);
  o = with_field(&b, "layers.1.weight_q", "dtype", json_string("U8"));
  EXPECT(o, QAT_EDTYPE, "layers.1.weight_q");
  free(o.buf);
  o = with_field(&b, "activations.zero_point", "dtype", json_string("F16"));
  EXPECT(o, QAT_EDTYPE, "activations.zero_point");
  free(o.buf);
  o = with_field(&b, "layers.1.bias_q", "dtype", json_integer(4));
  EXPECT(o, QAT_EJSON, "layers.1.bias_q");
  free(o.buf);
  /* Shape x dtype size != bytes. */
  o = with_field(&b, "layers.0.bias", "shape", json_pack("[i]", 3));
  EXPECT(o, QAT_ESHAPE, "layers.0.bias");
  free(o.buf);
  o = with_field(&b, "layers.0.bias", "shape", json_pack("[i]", -4));
  EXPECT(o, QAT_ESHAPE, "layers.0.bias");
  free(o.buf);
  /* Overflowing product. */
  o = with_field(&b, "layers.0.weight_fp32", "shape",
                 json_pack("[III]", (json_int_t)1 << 40, (json_int_t)1 << 40, (json_int_t)64));
  EXPECT(o, QAT_ESHAPE, "layers.0.weight_fp32");
  free(o.buf);
  /* Right bytes, wrong shape for the model: [in, out] instead of [out, in]. */
  o = with_field(&b, "layers.0.weight_fp32", "shape", json_pack("[ii]", 6, 4));
  EXPECT(o, QAT_ESHAPE, "layers.0.weight_fp32");
  free(o.buf);
  o = with_field(&b, "layers.1.bias", "shape", json_pack("[ii]", 3, 1));
  EXPECT(o, QAT_ESHAPE, "layers.1.bias");
  free(o.buf);
  o = with_field(&b, "activations.scale", "shape", json_pack("[ii]", 2, 2));
  EXPECT(o, QAT_ESHAPE, "activations.scale");
  free(o.buf);
  o = with_field(&b, "layers.0.weight_q", "shape", json_pack("[i]", 24));
  EXPECT(o, QAT_ESHAPE, "layers.0.weight_q");
  free(o.buf);
  /* Dims that do not chain: layers.1.weight_q [3, 4] (12 bytes) as [2, 6]. */
  o = with_field(&b, "layers.1.weight_q", "shape", json_pack("[ii]", 2, 6));
  EXPECT(o, QAT_ECHAIN, "layers.1.weight_q");
  free(o.buf);
  /* Missing tensors. */
  const char *names[] = {"layers.0.weight_q", "layers.1.bias", "layers.2.bias_q",
                         "layers.2.weight_fp32", "activations.qmax", "activations.scale"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    json_t *j = hdr(&b);
    json_object_del(j, names[i]);
    o = rebuild(&b, j, 0);
    EXPECT(o, QAT_EMISSING, names[i]);
    free(o.buf);
  }
  free(b.buf);
}
END_TEST

/* The same file as format 1: version "1", no checksum keys (a blob made by
 * an older writer). Consumes b. */
static blob as_v1(blob b) {
  json_t *j = hdr(&b);
  json_t *meta = json_object_get(j, "__metadata__");
  json_t *keep = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v)
    if (strncmp(k, "sha256.", 7) != 0) json_object_set(keep, k, v);
  json_object_set_new(keep, "format_version", json_string("1"));
  json_object_set_new(j, "__metadata__", keep);
  blob o = rebuild(&b, j, 0);
  free(b.buf);
  return o;
}

static void poke_f32(blob *b, const char *name, size_t idx, float v) {
  memcpy(tensor_at(b, name) + idx * 4, &v, 4);
}
static void poke_i32(blob *b, const char *name, size_t idx, int32_t v) {
  memcpy(tensor_at(b, name) + idx * 4, &v, 4);
}

START_TEST(numbers) {
  /* Format 1 (no checksums): the number checks themselves, which in a
   * format-2 file only see data whose checksum already matched. */
  blob b = as_v1(valid_blob());
  blob c = {malloc(b.len), b.len};
  ck_assert_ptr_nonnull(c.buf);
#define FRESH() memcpy(c.buf, b.buf, b.len)
  FRESH(); poke_f32(&c, "activations.scale", 1, NAN); EXPECT(c, QAT_ESCALE, "activations[1]");
  FRESH(); poke_f32(&c, "activations.scale", 0, 0.0f); EXPECT(c, QAT_ESCALE, "activations[0]");
  FRESH(); poke_f32(&c, "activations.scale", 3, -1.0f); EXPECT(c, QAT_ESCALE, "activations[3]");
  FRESH(); poke_f32(&c, "activations.scale", 2, INFINITY); EXPECT(c, QAT_ESCALE, "activations[2]");
  FRESH(); poke_f32(&c, "layers.1.weight_scale", 2, NAN); EXPECT(c, QAT_ESCALE, "weight_scale[2]");
  FRESH(); poke_f32(&c, "layers.2.weight_scale", 0, 0.0f); EXPECT(c, QAT_ESCALE, "weight_scale[0]");
  FRESH(); poke_i32(&c, "activations.zero_point", 1, 256); EXPECT(c, QAT_EZEROPOINT, "activations[1]");
  FRESH(); poke_i32(&c, "activations.zero_point", 0, -1); EXPECT(c, QAT_EZEROPOINT, "activations[0]");
  FRESH(); poke_i32(&c, "activations.qmax", 2, 15);
  poke_i32(&c, "activations.zero_point", 2, 16); EXPECT(c, QAT_EZEROPOINT, "activations[2]");
  FRESH(); poke_i32(&c, "activations.qmax", 2, 256); EXPECT(c, QAT_EZEROPOINT, "activations[2]");
  FRESH(); poke_i32(&c, "activations.qmax", 2, 0); EXPECT(c, QAT_EZEROPOINT, "activations[2]");
  FRESH(); poke_f32(&c, "layers.0.bias", 1, NAN); EXPECT(c, QAT_ENOTFINITE, "bias[1]");
  FRESH(); poke_f32(&c, "layers.0.weight_fp32", 5, INFINITY); EXPECT(c, QAT_ENOTFINITE, "weight_fp32[5]");
  FRESH(); poke_f32(&c, "layers.2.bias_fp32", 1, NAN); EXPECT(c, QAT_ENOTFINITE, "bias_fp32[1]");
  /* bias_q must be the derivation from bias, to the unit. */
  int32_t q;
  FRESH();
  memcpy(&q, tensor_at(&c, "layers.1.bias_q") + 8, 4);
  poke_i32(&c, "layers.1.bias_q", 2, q + 1);
  EXPECT(c, QAT_EBIAS, "layers.1.bias_q[2]");
  FRESH(); poke_f32(&c, "layers.1.bias", 2, 1e9f); EXPECT(c, QAT_ERANGE, "bias[2]");
  /* -128 is fine at 8 bits (imported), and a changed weight still loads. */
  FRESH(); tensor_at(&c, "layers.0.weight_q")[3] = (uint8_t)0x80; EXPECT(c, QAT_OK, NULL);
#undef FRESH
  free(c.buf);
  free(b.buf);
}
END_TEST

/* Format 2: a flipped bit in any tensor is refused as a checksum mismatch
 * naming that tensor (before any number check could misreport it); format 1
 * still loads, unverified; the checksum keys themselves are checked. */
START_TEST(checksums) {
  blob b = valid_blob();
  qat_model *m = NULL;
  ck_assert_int_eq(qat_model_load_mem(b.buf, b.len, &m), QAT_OK);
  ck_assert(qat_model_checksummed(m));
  qat_model_destroy(m);
  json_t *j = hdr(&b);
  const char *name;
  json_t *v;
  int tensors = 0;
  uint32_t seed = 1;
  json_object_foreach(j, name, v) {
    if (strcmp(name, "__metadata__") == 0) continue;
    json_t *offs = json_object_get(v, "data_offsets");
    size_t b0 = (size_t)json_integer_value(json_array_get(offs, 0));
    size_t e0 = (size_t)json_integer_value(json_array_get(offs, 1));
    /* Every bit of small tensors, a spread of bits in the larger ones. */
    for (size_t bit = 0; bit < (e0 - b0) * 8; bit += (e0 - b0) > 16 ? 7 + (seed++ % 5) : 1) {
      uint8_t *p = b.buf + 8 + hdr_len(&b) + b0 + bit / 8;
      *p ^= (uint8_t)(1u << (bit % 8));
      EXPECT(b, QAT_ECHECKSUM, name);
      *p ^= (uint8_t)(1u << (bit % 8));
    }
    tensors++;
  }
  json_decref(j);
  ck_assert_int_eq(tensors, 3 * 6 + 3);
  EXPECT(b, QAT_OK, NULL);
  /* Format 1: loads, not verified. */
  blob one = as_v1(valid_blob());
  ck_assert_int_eq(qat_model_load_mem(one.buf, one.len, &m), QAT_OK);
  ck_assert(!qat_model_checksummed(m));
  qat_model_destroy(m);
  free(one.buf);
  /* The keys: missing, malformed, for no tensor. */
  blob o = with_meta(&b, "sha256.layers.1.bias", NULL);
  EXPECT(o, QAT_EMISSING, "sha256.layers.1.bias");
  free(o.buf);
  o = with_meta(&b, "sha256.layers.1.bias", "ABC");
  EXPECT(o, QAT_EMETA, "sha256.layers.1.bias");
  free(o.buf);
  o = with_meta(&b, "sha256.layers.9.bias",
                "0000000000000000000000000000000000000000000000000000000000000000");
  EXPECT(o, QAT_EMETA, "sha256.layers.9.bias");
  free(o.buf);
  /* Built models are not "checksummed"; a saved one is, once loaded. */
  qat_fixture *f = fixture_create(dims, 3, 7);
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  ck_assert(!qat_model_checksummed(m));
  qat_model_destroy(m);
  fixture_destroy(f);
  free(b.buf);
}
END_TEST

/* A header's size is checked before its JSON is parsed (a file of many
 * keys is refused in milliseconds, whatever its content), and the count of
 * metadata keys is capped. */
static blob many_keys(size_t n, size_t pad_to) {
  size_t cap = 64 + n * 24 + pad_to;
  char *h = malloc(cap);
  ck_assert_ptr_nonnull(h);
  size_t k = (size_t)snprintf(h, cap, "{\"__metadata__\":{\"format\":\"qatserve\"");
  for (size_t i = 0; i < n; i++) k += (size_t)snprintf(h + k, cap - k, ",\"k%zu\":\"\"", i);
  k += (size_t)snprintf(h + k, cap - k, "}}");
  while (k < pad_to) h[k++] = ' ';
  blob o = {malloc(8 + k), 8 + k};
  ck_assert_ptr_nonnull(o.buf);
  uint64_t n64 = k;
  memcpy(o.buf, &n64, 8);
  memcpy(o.buf + 8, h, k);
  free(h);
  return o;
}

/* Thread CPU time in ms: the complexity checks below compare against the
 * quadratic cost they replaced (154 s for 200,000 keys), so they bound CPU
 * time, not wall time, with a wide margin for sanitizer builds and a loaded
 * machine. */
static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Bytes this process has read through read(2) so far (/proc/self/io rchar);
 * 0 if unavailable. Counts what the loader read, whatever the disk cache. */
static unsigned long long bytes_read_so_far(void) {
  FILE *f = fopen("/proc/self/io", "r");
  if (!f) return 0;
  char line[128];
  unsigned long long v = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "rchar: %llu", &v) == 1) break;
  fclose(f);
  return v;
}

START_TEST(header_limits) {
  blob o = many_keys(200000, 0);
  double c0 = cpu_ms();
  EXPECT(o, QAT_ELIMIT, "separators");
  double ms = cpu_ms() - c0;
  ck_assert_msg(ms < 5000, "200,000 keys took %.0f ms of CPU", ms); /* was 154 s */
  free(o.buf);
  o = many_keys(5000, 0); /* under the separator cap, over the key cap */
  EXPECT(o, QAT_ELIMIT, "keys");
  free(o.buf);
  /* Labels: a string holding millions of empty arrays is refused unparsed. */
  blob b = valid_blob();
  size_t n = 200000;
  char *lab = malloc(3 * n + 2);
  ck_assert_ptr_nonnull(lab);
  lab[0] = '[';
  for (size_t i = 0; i < n; i++) memcpy(lab + 1 + 3 * i, "[],", 3);
  lab[3 * n] = ']';
  lab[3 * n + 1] = '\0';
  o = with_meta(&b, "labels", lab);
  EXPECT(o, QAT_ELIMIT, "labels");
  free(o.buf);
  free(lab);
  free(b.buf);
  /* The C API's own duplicate check is n log n too. */
  enum { NK = 200000 };
  char **keys = malloc(NK * sizeof *keys), **vals = malloc(NK * sizeof *vals);
  ck_assert(keys && vals);
  for (int i = 0; i < NK; i++) {
    keys[i] = malloc(16);
    snprintf(keys[i], 16, "k%d", i);
    vals[i] = "";
  }
  qat_fixture *f = fixture_create(dims, 3, 7);
  f->spec.n_meta = NK;
  f->spec.meta_keys = (const char *const *)keys;
  f->spec.meta_values = (const char *const *)vals;
  qat_model *m = NULL;
  c0 = cpu_ms();
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  ms = cpu_ms() - c0;
  ck_assert_msg(ms < 10000, "200,000 spec keys took %.0f ms of CPU", ms);
  qat_model_destroy(m);
  snprintf(keys[NK - 1], 16, "k7"); /* a duplicate, found */
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_EMETA);
  ck_assert(strstr(qat_errmsg(), "'k7' given twice") != NULL);
  f->spec.n_meta = 0;
  fixture_destroy(f);
  for (int i = 0; i < NK; i++) free(keys[i]);
  free(keys);
  free(vals);
}
END_TEST

/* Files that must be refused without being read whole or blocking: a FIFO
 * (open would block without O_NONBLOCK), a sparse 1 GiB file whose small
 * header does not cover it. */
START_TEST(file_checks) {
  make_tmpdir();
  char p[160];
  snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
  ck_assert_int_eq(mkfifo(p, 0600), 0);
  qat_model *m = NULL;
  qat_file_info fi;
  ck_assert_int_eq(qat_model_load_file(p, &m, &fi), QAT_ENOTREG);
  ck_assert(fi.stat_ok);
  unlink(p);
  blob b = valid_blob();
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b.buf, 1, b.len, f), b.len);
  fclose(f);
  ck_assert_int_eq(qat_model_load_file(p, &m, &fi), QAT_OK);
  ck_assert_uint_eq(fi.size, b.len);
  ck_assert_uint_ne(fi.crc32, 0);
  qat_model_destroy(m);
  ck_assert_int_eq(truncate(p, (off_t)1 << 30), 0); /* sparse: 1 GiB of holes */
  unsigned long long rd0 = bytes_read_so_far();
  ck_assert_int_eq(qat_model_load_file(p, &m, &fi), QAT_EOVERLAP);
  unsigned long long rd1 = bytes_read_so_far();
  ck_assert(strstr(qat_errmsg(), "after the last tensor") != NULL);
  /* Refused from its header: not read whole (1 GiB), at most the header. */
  ck_assert_msg(rd1 - rd0 < (1u << 20), "sparse file: %llu bytes read", rd1 - rd0);
  ck_assert_int_eq(truncate(p, ((off_t)1 << 30) + 1), 0);
  ck_assert_int_eq(qat_model_load_file(p, &m, &fi), QAT_ERANGE);
  /* A header length beyond the file, checked before reading it. */
  ck_assert_int_eq(truncate(p, 64), 0);
  ck_assert_int_eq(qat_model_load_file(p, &m, &fi), QAT_EHDRSIZE);
  unlink(p);
  free(b.buf);
  remove_tmpdir();
}
END_TEST

START_TEST(load_from_path) {
  qat_model *m = NULL;
  ck_assert_int_eq(qat_model_load("/nonexistent/dir/m.safetensors", &m), QAT_EIO);
  ck_assert(strstr(qat_errmsg(), "/nonexistent/dir/m.safetensors") != NULL);
  ck_assert_int_eq(qat_model_load("/tmp", &m), QAT_ENOTREG);
  make_tmpdir();
  char p[128];
  snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("\x02\0\0\0\0\0\0\0[]", 1, 10, f);
  fclose(f);
  ck_assert_int_eq(qat_model_load(p, &m), QAT_EJSON);
  ck_assert(strstr(qat_errmsg(), p) != NULL); /* the file is named */
  /* Saving into a missing directory fails cleanly. */
  qat_fixture *fx = fixture_create(dims, 3, 1);
  ck_assert_ptr_nonnull(fx);
  ck_assert_int_eq(qat_model_create(&fx->spec, &m), QAT_OK);
  ck_assert_int_eq(qat_model_save(m, "/nonexistent/dir/m.safetensors"), QAT_EIO);
  /* Save replaces an existing file atomically and leaves no temp files. */
  ck_assert_int_eq(qat_model_save(m, p), QAT_OK);
  qat_model *m2;
  ck_assert_int_eq(qat_model_load(p, &m2), QAT_OK);
  qat_model_destroy(m2);
  qat_model_destroy(m);
  fixture_destroy(fx);
  DIR *d = opendir(tmpdir);
  ck_assert_ptr_nonnull(d);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') {
      ck_assert_str_eq(e->d_name, "m.safetensors");
      files++;
    }
  closedir(d);
  ck_assert_int_eq(files, 1);
  remove_tmpdir();
}
END_TEST

/* Fail the Nth libqat allocation for N = 0, 1, ... until the load works. */
static long countdown = -1;
static void *failing_malloc(size_t n) {
  if (countdown == 0) return NULL;
  if (countdown > 0) countdown--;
  return malloc(n);
}

START_TEST(load_alloc_failures) {
  blob b = valid_blob();
  make_tmpdir();
  char p[128];
  snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b.buf, 1, b.len, f), b.len);
  fclose(f);
  /* The same file with an unpadded header: its F32/I32 tensors sit at
   * unaligned addresses, so the loader's copying path runs too. */
  json_t *hj = hdr(&b);
  json_object_set_new(json_object_get(hj, "__metadata__"), "pad", json_string("x"));
  blob u = rebuild(&b, hj, 0);
  ck_assert_uint_ne((8 + hdr_len(&u)) % 4, 0);
  EXPECT(u, QAT_OK, NULL);
  for (int variant = 0; variant < 3; variant++) {
    int failures = 0;
    for (long n = 0;; n++) {
      countdown = n;
      qat_set_allocator(failing_malloc, free);
      qat_model *m = NULL;
      qat_err e = variant == 2 ? qat_model_load(p, &m)
                  : variant == 1 ? qat_model_load_mem(u.buf, u.len, &m)
                                 : qat_model_load_mem(b.buf, b.len, &m);
      qat_set_allocator(NULL, NULL);
      if (e == QAT_OK) {
        qat_model_destroy(m);
        break;
      }
      ck_assert_msg(e == QAT_ENOMEM, "allocation %ld: %s (%s)", n, qat_err_name(e),
                    qat_errmsg());
      ck_assert_ptr_null(m);
      failures++;
    }
    ck_assert_int_gt(failures, 20);
  }
  /* Saving under allocation failure too. */
  qat_model *m;
  ck_assert_int_eq(qat_model_load_mem(b.buf, b.len, &m), QAT_OK);
  for (long n = 0;; n++) {
    countdown = n;
    qat_set_allocator(failing_malloc, free);
    qat_err e = qat_model_save(m, p);
    qat_set_allocator(NULL, NULL);
    if (e == QAT_OK) break;
    ck_assert_int_eq(e, QAT_ENOMEM);
  }
  qat_model_destroy(m);
  remove_tmpdir();
  free(u.buf);
  free(b.buf);
}
END_TEST

Suite *suite_safetensors(void) {
  Suite *s = suite_create("safetensors");
  TCase *t = tcase_create("safetensors");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, round_trip);
  tcase_add_test(t, golden_bytes);
  tcase_add_test(t, deterministic_and_escaping);
  tcase_add_test(t, valid_file_loads);
  tcase_add_test(t, truncated);
  tcase_add_test(t, header_length);
  tcase_add_test(t, bad_json);
  tcase_add_test(t, metadata);
  tcase_add_test(t, offsets_and_tiling);
  tcase_add_test(t, dtypes_and_shapes);
  tcase_add_test(t, numbers);
  tcase_add_test(t, load_from_path);
  tcase_add_test(t, checksums);
  tcase_add_test(t, header_limits);
  tcase_add_test(t, file_checks);
  tcase_add_test(t, load_alloc_failures);
  suite_add_tcase(s, t);
  return s;
}
