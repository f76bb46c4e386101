/* test_json.c - the request number scanner: exact against strtof, strict
 * about grammar and types, and every cap enforced. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/json_walk.h"

/* qs_buf_fixed3 and qs_buf_uint write exactly what printf's "%.3f" and
 * "%llu" write: timings from nanoseconds, ratios, values a hair off a
 * decimal tie (x.xxx5 +- a few ulps), exact ties (odd sixteenths), powers of ten, the range's edges. */
START_TEST(fixed3_and_uint_match_printf) {
  qs_buf b;
  qs_buf_init(&b, 64, 1 << 20);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  char want[128];
  for (long i = 0; i < 2000000; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    double v;
    switch (i % 7) {
      case 0: v = (double)(s % 100000000) / 1000.0; break;      /* ns -> us */
      case 1: v = (double)(s % 1000000) / (double)(1 + (s >> 40) % 100000); break; /* ratios */
      case 2: v = (double)(s % 10000000) / 1e4 + 0.00005; break; /* x.xxxx5 */
      case 6: v = (double)(s % 100000000) + (double)(2 * (s % 8) + 1) / 16; break; /* ties */
      case 3: v = nextafter((double)(s % 10000000) / 1e4 + 0.00005, (s >> 63) ? 0.0 : 1e13); break;
      case 4: v = ldexp((double)(s >> 11), -(int)((s >> 3) % 90)); break; /* any magnitude */
      default: v = (double)(s % 13) ? pow(10.0, (double)(s % 25) - 12) : 0.0; break;
    }
    if (v >= 1e12) v = fmod(v, 1e12);
    b.len = 0;
    qs_buf_fixed3(&b, v);
    snprintf(want, sizeof want, "%.3f", v);
    ck_assert_msg(strcmp(b.data, want) == 0, "%.17g: %s vs printf %s", v, b.data, want);
    b.len = 0;
    qs_buf_uint(&b, s >> (i % 64));
    snprintf(want, sizeof want, "%llu", (unsigned long long)(s >> (i % 64)));
    ck_assert_str_eq(b.data, want);
  }
  b.len = 0;
  qs_buf_fixed3(&b, 999999999999.9995);
  snprintf(want, sizeof want, "%.3f", 999999999999.9995);
  ck_assert_str_eq(b.data, want);
  static const double ties[] = {0.4375, 974882722205.4375, 2.5625, 0.0625, 3.1875};
  for (size_t t = 0; t < sizeof ties / sizeof ties[0]; t++) { /* exact ties: to even */
    b.len = 0;
    qs_buf_fixed3(&b, ties[t]);
    snprintf(want, sizeof want, "%.3f", ties[t]);
    ck_assert_str_eq(b.data, want);
  }
  b.len = 0;
  qs_buf_fixed3(&b, -1.5); /* printf's path */
  ck_assert_str_eq(b.data, "-1.500");
  qs_buf_free(&b);
}
END_TEST

Suite *suite_json(void);

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* Parses text as one number and checks it against strtof bit for bit. */
static void check_against_strtof(const char *text) {
  size_t pos = 0, n = strlen(text);
  float got = 0;
  qs_jerr e = qs_json_number(text, n, &pos, &got);
  float want = strtof(text, NULL);
  if (!isfinite(want)) {
    ck_assert_msg(e == QS_JNONFINITE, "%s: want non-finite error, got %d", text, e);
    return;
  }
  ck_assert_msg(e == QS_JOK, "%s: error %d", text, e);
  ck_assert_uint_eq(pos, n);
  ck_assert_msg(bits(got) == bits(want), "%s: got %.9g (%08x) want %.9g (%08x)", text,
                (double)got, bits(got), (double)want, bits(want));
  /* The matrix parser has its own fast path for short tokens: same result. */
  char arr[640];
  int k = snprintf(arr, sizeof arr, "[%s, %s]", text, text);
  if (k < 0 || (size_t)k >= sizeof arr) return;
  float two[2];
  size_t rows, cols, errpos;
  ck_assert_int_eq(qs_json_parse_matrix(arr, (size_t)k, 2, 1, two, 2, &rows, &cols, &errpos), QS_JOK);
  ck_assert_msg(bits(two[0]) == bits(want) && bits(two[1]) == bits(want), "matrix %s: got %.9g", text,
                (double)two[0]);
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

START_TEST(numbers_match_strtof_exactly) {
  static const char *fixed[] = {
      "0", "-0", "1", "-1", "0.5", "0.1", "0.2", "0.3", "1e10", "1E-10", "3.4028235e38",
      "3.4028236e38", "1.17549435e-38", "1.4e-45", "7e-46", "1e-50", "16777216", "16777217",
      "16777219", "33554434", "33554435", "9007199254740993", "0.003921568859368563",
      "0.00392156862745098", "123456789012345678901234567890", "4.9406564584124654e-324",
      "0.1000000000000000055511151231257827", "1.00000005960464477539062500000001",
      "1.000000059604644775390625", "0.0000000000000000000000001", "1e22", "1e23", "9e-23",
      "340282356779733661637539395458142568447", "340282356779733661637539395458142568448",
      "0.466667", "-0.25", "9999999", "0.0000001", "0.00000000001", "1.5", "0.1234567", "12345678",
      "0.12345678", "-0.000000001"};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) check_against_strtof(fixed[i]);
  char buf[96];
  for (int i = 0; i < 200000; i++) {
    uint64_t r = rng();
    switch (i % 5) {
      case 0: { /* round-trip of a random finite float */
        uint32_t u = (uint32_t)r;
        float f;
        memcpy(&f, &u, 4);
        if (!isfinite(f)) continue;
        snprintf(buf, sizeof buf, "%.9g", (double)f);
        break;
      }
      case 1: /* short decimals like pixel values */
        snprintf(buf, sizeof buf, "%s0.%0*llu", (r & 1) ? "-" : "", (int)(1 + (r >> 8) % 8),
                 (unsigned long long)((r >> 16) % 100000000));
        break;
      case 2: /* many digits: the slow path */
        snprintf(buf, sizeof buf, "%llu.%llue%d", (unsigned long long)((r >> 3) % 1000000),
                 (unsigned long long)(rng() % 10000000000000000000ULL),
                 (int)((r >> 40) % 90) - 45);
        break;
      case 3: /* integers with exponents near the fast-path edge */
        snprintf(buf, sizeof buf, "%llue%d", (unsigned long long)(r >> (11 + (r & 31))),
                 (int)((r >> 50) % 50) - 25);
        break;
      default: { /* doubles printed with 17 digits: near float midpoints too */
        double d = (double)(r >> 11) / (double)(1ULL << 53) * pow(10.0, (double)((int)(r % 20) - 10));
        snprintf(buf, sizeof buf, "%.17g", d);
        break;
      }
    }
    check_against_strtof(buf);
  }
}
END_TEST

/* Every decimal 0.d .. 0.dddd and d.ddd (with signs) through the matrix
 * parser's short-token path, against strtof. */
START_TEST(short_tokens_exhaustive) {
  char tok[32];
  for (int digits = 1; digits <= 4; digits++) {
    int lim = 1;
    for (int i = 0; i < digits; i++) lim *= 10;
    for (int v = 0; v < lim; v++) {
      snprintf(tok, sizeof tok, "%s0.%0*d", (v & 1) ? "-" : "", digits, v);
      check_against_strtof(tok);
      snprintf(tok, sizeof tok, "%d.%0*d", v % 10, digits, v);
      check_against_strtof(tok);
    }
  }
  /* around the 2^24 limit of the fast path */
  static const char *const edge[] = {"1.6777216", "1.6777217", "16777216", "16777217", "0.16777215",
                                     "9.999999", "9999999.9", "0.0000001", "1677721.6", "1677721.7"};
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) check_against_strtof(edge[i]);
}
END_TEST

static qs_jerr one(const char *t, float *f) {
  size_t pos = 0;
  return qs_json_number(t, strlen(t), &pos, f);
}

START_TEST(numbers_refuse_what_json_refuses) {
  float f;
  ck_assert_int_eq(one("NaN", &f), QS_JNONFINITE);
  ck_assert_int_eq(one("Infinity", &f), QS_JNONFINITE);
  ck_assert_int_eq(one("-Infinity", &f), QS_JNONFINITE);
  ck_assert_int_eq(one("1e999", &f), QS_JNONFINITE);
  ck_assert_int_eq(one("-1e39", &f), QS_JNONFINITE);
  ck_assert_int_eq(one("0x10", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("01", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("+1", &f), QS_JSYNTAX);
  ck_assert_int_eq(one(".5", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("1.", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("1e", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("1e+", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("-", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("nan", &f), QS_JSYNTAX);
  ck_assert_int_eq(one("1e-400", &f), QS_JOK);
  ck_assert(f == 0.0f);
  ck_assert_int_eq(one("-0", &f), QS_JOK);
  ck_assert(f == 0.0f && signbit(f));
  ck_assert_int_eq(one("1e99999999999999999999", &f), QS_JNONFINITE);
}
END_TEST

static qs_jerr mat(const char *t, size_t width, size_t max_rows, size_t *rows, size_t *cols,
                   float *out, size_t cap) {
  size_t errpos;
  return qs_json_parse_matrix(t, strlen(t), width, max_rows, out, cap, rows, cols, &errpos);
}

START_TEST(matrix_shapes_and_errors) {
  float out[64];
  size_t r = 0, c = 0;
  ck_assert_int_eq(mat(" [[1, 2, 3], [4,5,6]] ", 3, 10, &r, &c, out, 64), QS_JOK);
  ck_assert_uint_eq(r, 2);
  ck_assert_uint_eq(c, 3);
  for (int i = 0; i < 6; i++) ck_assert(out[i] == (float)(i + 1));
  ck_assert_int_eq(mat("[0.5,-0.25,1e2]", 3, 10, &r, &c, out, 64), QS_JOK);
  ck_assert_uint_eq(r, 1);
  ck_assert(out[0] == 0.5f && out[1] == -0.25f && out[2] == 100.0f);
  ck_assert_int_eq(mat("[1,2]", 3, 10, &r, &c, out, 64), QS_JWIDTH);
  ck_assert_int_eq(mat("[1,2,3,4]", 3, 10, &r, &c, out, 64), QS_JWIDTH);
  ck_assert_int_eq(mat("[[1,2,3],[1,2]]", 3, 10, &r, &c, out, 64), QS_JWIDTH);
  ck_assert_int_eq(mat("[[]]", 3, 10, &r, &c, out, 64), QS_JWIDTH);
  ck_assert_int_eq(mat("[]", 3, 10, &r, &c, out, 64), QS_JEMPTY);
  ck_assert_int_eq(mat("[[1,2,3],[1,2,3],[1,2,3]]", 3, 2, &r, &c, out, 64), QS_JROWS);
  ck_assert_int_eq(mat("[1,2,3,4,5]", 0, 1, &r, &c, out, 4), QS_JROWS);
  ck_assert_int_eq(mat("[[1,\"2\",3]]", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("[[1,null,3]]", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("[[1,true,3]]", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("[[1,[2],3]]", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("[[1,2,3],4]", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("\"abc\"", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("7", 3, 10, &r, &c, out, 64), QS_JTYPE);
  ck_assert_int_eq(mat("[[1,NaN,3]]", 3, 10, &r, &c, out, 64), QS_JNONFINITE);
  ck_assert_int_eq(mat("[[1,2,1e999]]", 3, 10, &r, &c, out, 64), QS_JNONFINITE);
  ck_assert_int_eq(mat("[[1,2,3]", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  ck_assert_int_eq(mat("[[1,2,3]] x", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  ck_assert_int_eq(mat("[[1,2,,3]]", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  ck_assert_int_eq(mat("[[1,2,3,]]", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  ck_assert_int_eq(mat("[[1 2 3]]", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  ck_assert_int_eq(mat("[[0x1,2,3]]", 3, 10, &r, &c, out, 64), QS_JSYNTAX);
  /* width 0: the first row sets it (KServe data with a separate shape) */
  ck_assert_int_eq(mat("[[1,2],[3,4],[5,6]]", 0, 10, &r, &c, out, 64), QS_JOK);
  ck_assert_uint_eq(r, 3);
  ck_assert_uint_eq(c, 2);
  ck_assert_int_eq(mat("[[1,2],[3,4,5]]", 0, 10, &r, &c, out, 64), QS_JWIDTH);
  /* The capacity guard holds even when the caller's max_rows is generous. */
  ck_assert_int_eq(mat("[[1,2],[3,4],[5,6]]", 2, 100, &r, &c, out, 5), QS_JROWS);
  /* The bound a buffer is sized with covers the densest text. */
  ck_assert_uint_ge(qs_json_numbers_bound(strlen("[1,2,3,4,5]")), 5);
  ck_assert_uint_ge(qs_json_numbers_bound(strlen("[1]")), 1);
}
END_TEST

/* Walks a nested envelope: {"a": {"k": 1, "s": "x\u00e9"}, "b": [1, -2, 3.0]}. */
START_TEST(walker_nested_values) {
  qs_jkeys keys = {0};
  qs_jwalk w;
  const char *t = " {\"a\": {\"k\": 9223372036854775807, \"s\": \"x\\u00e9\\\"\\ud83d\\ude00\"}, "
                  "\"b\": [1, -0, 3.0, \"4\"], \"c\": {\"k\": 2}} ";
  ck_assert_int_eq(qs_jw_begin(&w, t, strlen(t), &keys), QS_JOK);
  qs_span k, raw;
  bool esc, done;
  ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
  ck_assert(!done && k.len == 1 && t[k.off] == 'a');
  qs_jw_obj o;
  int64_t v = 0;
  ck_assert_int_eq(qs_jw_obj_begin(&w, &o), QS_JOK);
  ck_assert_int_eq(qs_jw_obj_key(&w, &o, &k, &esc, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_str(&w, &raw, &esc), QS_JTYPE); /* an integer, position kept */
  ck_assert_int_eq(qs_jw_int(&w, &v), QS_JOK);
  ck_assert(v == INT64_MAX);
  ck_assert_int_eq(qs_jw_obj_key(&w, &o, &k, &esc, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_int(&w, &v), QS_JTYPE);
  ck_assert_int_eq(qs_jw_str(&w, &raw, &esc), QS_JOK);
  ck_assert(esc);
  char out[32];
  ck_assert_uint_eq(qs_jw_unescape(t + raw.off, raw.len, out), 8);
  ck_assert_str_eq(out, "x\xc3\xa9\"\xf0\x9f\x98\x80");
  ck_assert_int_eq(qs_jw_obj_key(&w, &o, &k, &esc, &done), QS_JOK);
  ck_assert(done);
  ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
  qs_jw_arr a;
  ck_assert_int_eq(qs_jw_obj_begin(&w, &o), QS_JTYPE);
  ck_assert_int_eq(qs_jw_arr_begin(&w, &a), QS_JOK);
  int64_t want[] = {1, 0};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(qs_jw_arr_next(&w, &a, &done), QS_JOK);
    ck_assert_int_eq(qs_jw_int(&w, &v), QS_JOK);
    ck_assert(v == want[i]);
  }
  ck_assert_int_eq(qs_jw_arr_next(&w, &a, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_int(&w, &v), QS_JTYPE); /* 3.0 is a real, as in jansson */
  ck_assert_int_eq(qs_jw_skip(&w), QS_JOK);
  ck_assert_int_eq(qs_jw_arr_next(&w, &a, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_int(&w, &v), QS_JTYPE);
  ck_assert_int_eq(qs_jw_skip(&w), QS_JOK);
  ck_assert_int_eq(qs_jw_arr_next(&w, &a, &done), QS_JOK);
  ck_assert(done && a.count == 4);
  /* "k" again, in another object: not a duplicate. */
  ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_skip(&w), QS_JOK);
  ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
  ck_assert(done);
  ck_assert_uint_eq(keys.live, 0);

  /* Refused as jansson refuses: a duplicate in a nested object (also
   * spelled with an escape), a trailing comma, an integer past int64. */
  static const char *const bad[] = {
      "{\"a\": {\"k\": 1, \"k\": 2}}",     "{\"a\": {\"k\": 1, \"\\u006b\": 2}}",
      "{\"a\": [1, 2, ]}",                 "{\"a\": {\"k\": 1,}}",
      "{\"a\": [9223372036854775808]}",    "{\"a\": {\"k\" 1}}",
      "{\"a\": [1 2]}",                    "{\"a\": {\"k\": \"\\u0000\"}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    qs_jerr e = qs_jw_begin(&w, bad[i], strlen(bad[i]), &keys);
    ck_assert_int_eq(e, QS_JOK);
    ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
    if (qs_jw_peek(&w) == '{') {
      ck_assert_int_eq(qs_jw_obj_begin(&w, &o), QS_JOK);
      for (;;) {
        if ((e = qs_jw_obj_key(&w, &o, &k, &esc, &done)) || done) break;
        if ((e = qs_jw_str(&w, &raw, &esc)) == QS_JTYPE) e = qs_jw_int(&w, &v);
        if (e) break;
      }
    } else {
      ck_assert_int_eq(qs_jw_arr_begin(&w, &a), QS_JOK);
      for (;;) {
        if ((e = qs_jw_arr_next(&w, &a, &done)) || done) break;
        if ((e = qs_jw_int(&w, &v))) break;
      }
    }
    ck_assert_msg(e == QS_JSYNTAX, "%s: %d", bad[i], e);
  }

  /* The depth cap counts every container open: the root and 63 more are
   * fine, one more is not, whether opened by the reader or by skip. */
  char deep[300];
  for (int extra = 63; extra <= 64; extra++) {
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"a\":[");
    for (int i = 1; i < extra; i++) deep[n++] = '[';
    for (int i = 0; i < extra; i++) deep[n++] = ']';
    deep[n++] = '}';
    ck_assert_int_eq(qs_jw_begin(&w, deep, n, &keys), QS_JOK);
    ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
    ck_assert_int_eq(qs_jw_arr_begin(&w, &a), QS_JOK);
    ck_assert_int_eq(qs_jw_arr_next(&w, &a, &done), QS_JOK);
    qs_jerr e = extra > 1 ? qs_jw_skip(&w) : QS_JOK;
    ck_assert_int_eq(e, extra == 63 ? QS_JOK : QS_JDEPTH);
  }
  /* A million '[' fail fast at the depth limit, without recursion, in
   * both the walker and the bracket skipper. */
  size_t n = 1000000;
  char *many = malloc(n + 16);
  ck_assert_ptr_nonnull(many);
  memcpy(many, "{\"x\":", 5);
  memset(many + 5, '[', n);
  ck_assert_int_eq(qs_jw_begin(&w, many, n + 5, &keys), QS_JOK);
  ck_assert_int_eq(qs_jw_key(&w, &k, &esc, &done), QS_JOK);
  ck_assert_int_eq(qs_jw_skip(&w), QS_JDEPTH);
  size_t pos = 5;
  ck_assert_int_eq(qs_json_skip_value(many, n + 5, &pos), QS_JDEPTH);
  free(many);
  /* The bracket skipper finds a value's end without judging its inside. */
  const char *sk = " [1, \"]\", {\"a\": x}] , 2";
  pos = 0;
  ck_assert_int_eq(qs_json_skip_value(sk, strlen(sk), &pos), QS_JOK);
  ck_assert_uint_eq(pos, 19);
  qs_jkeys_free(&keys);
}
END_TEST

START_TEST(output_round_trips) {
  qs_buf b;
  qs_buf_init(&b, 8, 1 << 20);
  for (int i = 0; i < 100000; i++) {
    uint32_t u = (uint32_t)rng();
    float f;
    memcpy(&f, &u, 4);
    if (!isfinite(f)) continue;
    b.len = 0;
    qs_buf_float(&b, f);
    ck_assert(!b.failed);
    float back = strtof(b.data, NULL);
    ck_assert_uint_eq(bits(back), bits(f));
  }
  b.len = 0;
  qs_buf_json_str(&b, "a\"b\\c\n\x01");
  ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\"");
  qs_buf_free(&b);
  /* The cap is hard. */
  qs_buf_init(&b, 4, 10);
  qs_buf_puts(&b, "0123456789");
  ck_assert(!b.failed);
  qs_buf_puts(&b, "x");
  ck_assert(b.failed);
  qs_buf_free(&b);
}
END_TEST

Suite *suite_json(void) {
  Suite *s = suite_create("json");
  TCase *tc = tcase_create("json");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, numbers_match_strtof_exactly);
  tcase_add_test(tc, numbers_refuse_what_json_refuses);
  tcase_add_test(tc, short_tokens_exhaustive);
  tcase_add_test(tc, matrix_shapes_and_errors);
  tcase_add_test(tc, walker_nested_values);
  tcase_add_test(tc, output_round_trips);
  tcase_add_test(tc, fixed3_and_uint_match_printf);
  suite_add_tcase(s, tc);
  return s;
}
