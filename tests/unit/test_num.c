/* test_num.c - server/base/num.c: parsing bit-identical to strtof on every path
 * (fast float, 64-bit bracket, exact 128-bit, strtof fallback), ties to
 * even at exact float midpoints, error offsets at the token's start, and
 * shortest printing that reads back to the same float for every class of
 * float (subnormals, powers of two, 1e+-38, extremes, random bit patterns).
 * `make num-exhaustive` checks all 2^32 patterns. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "../../server/base/num.h"

Suite *suite_num(void);

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint64_t rs = 0x243F6A8885A308D3ull;
static uint64_t rng(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

/* text (a JSON number) parses exactly as strtof does; it is refused as
 * non-finite exactly when strtof overflows, and as too long beyond
 * QS_NUM_MAX_CHARS. */
static void same_as_strtof(const char *text) {
  size_t pos = 0, n = strlen(text);
  float got = 0;
  qs_num_status st = qs_num_parse(text, n, &pos, &got);
  float want = strtof(text, NULL);
  if (n > QS_NUM_MAX_CHARS) {
    ck_assert_msg(st == QS_NUM_SYNTAX && pos == 0, "%.40s...: %zu chars accepted", text, n);
    return;
  }
  if (!isfinite(want)) {
    ck_assert_msg(st == QS_NUM_NONFINITE, "%s: want non-finite, got status %d", text, st);
    ck_assert_uint_eq(pos, 0);
    return;
  }
  ck_assert_msg(st == QS_NUM_OK, "%s: status %d", text, st);
  ck_assert_uint_eq(pos, n);
  ck_assert_msg(fbits(got) == fbits(want), "%s: got %a (%08x) want %a (%08x)", text, (double)got,
                fbits(got), (double)want, fbits(want));
}

START_TEST(parse_fixed_cases) {
  static const char *const t[] = {
      /* step 1 */
      "0", "-0", "1", "0.5", "0.12345", "16777216", "9999999e-10", "1e10", "-7e-10",
      /* step 2, 17 and 19 digits, both signs of e */
      "0.30196078431372547", "0.0039215686274509803", "1.2345678901234567e-05",
      "9999999999999999999", "1844674407370955161", "0.1000000000000000055511151231257827",
      "3.4028234663852886e+38", "3.4028235677973366e+38", "3.4028235677973367e+38",
      "1.1754943508222875e-38", "1.1754942106924411e-38", "1.401298464324817e-45",
      "7.006492321624085e-46", "7.006492321624086e-46", "2.5e-45", "1e38", "1e-38", "1e39",
      "1e-46", "1e-65", "9e-66", "1e-66",
      /* more than 19 digits: truncated, bracketed by m and m + 1 */
      "123456789012345678901234567890", "0.30196078431372547123456789",
      "16777217.000000000000000000001", "16777216.999999999999999999999",
      "1.00000005960464477539062500000001", "1.000000059604644775390625000000000000",
      "340282356779733661637539395458142568447", "340282356779733661637539395458142568448",
      "0.0000000000000000000000000000000000000000000014012984643248170709237295832899161312802619"
      "41866226288045",
      /* exact float midpoints (ties to even) */
      "16777217", "16777219", "33554434", "33554435", "1.000000059604644775390625",
      "1.000000178813934326171875", "0.50000002980232238769531250",
      /* exponent extremes and zeros */
      "0e999999", "0.000e-5", "-0.0", "1e-400", "1e99999999999999999999", "1E+2", "1e-0"};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) same_as_strtof(t[i]);
}
END_TEST

START_TEST(parse_random_shapes) {
  char buf[160];
  for (int i = 0; i < 400000; i++) {
    uint64_t r = rng();
    switch (i % 8) {
      case 0: /* 17 significant digits, any magnitude (repr of a double) */
        snprintf(buf, sizeof buf, "%.17g",
                 (double)(r >> 11) / 9007199254740992.0 * pow(10.0, (double)((int)(rng() % 90) - 50)));
        break;
      case 1: { /* 1..20 digits of a random finite float */
        float f = from_bits((uint32_t)rng());
        if (!isfinite(f)) continue;
        snprintf(buf, sizeof buf, "%.*g", (int)(1 + r % 20), (double)f);
        break;
      }
      case 2: /* random digit strings with a random exponent */
        snprintf(buf, sizeof buf, "%llu.%llue%d", (unsigned long long)(rng() % 100000000000ull),
                 (unsigned long long)rng(), (int)(r % 100) - 70);
        break;
      case 3: /* 5-digit pixel-like values */
        snprintf(buf, sizeof buf, "%s0.%05u", (r & 1) ? "-" : "", (unsigned)(rng() % 100000));
        break;
      case 4: { /* the shortest text of a random float and 9 digits of it */
        float f = from_bits((uint32_t)r);
        if (!isfinite(f)) continue;
        size_t k = qs_num_format(buf, f);
        buf[k] = '\0';
        same_as_strtof(buf);
        snprintf(buf, sizeof buf, "%.9g", (double)f);
        break;
      }
      case 5: /* integers near powers of two */
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)((1ull << (r % 64)) + (rng() % 5) - 2));
        break;
      case 6: /* long fractions (truncated paths) */
        snprintf(buf, sizeof buf, "0.%llu%llu%llue%d", (unsigned long long)rng(),
                 (unsigned long long)rng(), (unsigned long long)rng(), (int)(r % 80) - 40);
        break;
      default: /* exponents near the overflow and underflow edges */
        snprintf(buf, sizeof buf, "%.*ge%d", (int)(1 + r % 19), 1.0 + (double)(rng() >> 11) / 9007199254740992.0,
                 (r & 2) ? 38 : -38 - (int)(rng() % 9));
        break;
    }
    if (buf[0] == '-' && buf[1] == '-') continue;
    same_as_strtof(buf);
  }
}
END_TEST

/* Decimals exactly at a midpoint between two floats, and a hair either
 * side: ties go to the even significand, as strtof does. The midpoint of
 * f and its successor has 25 significant bits, so it is an exact double
 * and "%.*e" with enough digits writes it exactly (glibc prints exact
 * decimal expansions). */
START_TEST(parse_midpoints_tie_to_even) {
  char buf[256], tmp[300];
  for (int i = 0; i < 60000; i++) {
    uint32_t u = (uint32_t)rng() & 0x7FFFFFFF;
    if (u >= 0x7F7FFFFF) continue; /* the successor must be finite */
    if (i % 4 == 0) u &= 0x00FFFFFF; /* subnormals and the smallest normals */
    double mid = ((double)from_bits(u) + (double)from_bits(u + 1)) / 2;
    snprintf(buf, sizeof buf, "%.*e", 120, mid);
    same_as_strtof(buf); /* exact midpoint */
    char *e = strchr(buf, 'e');
    ck_assert_ptr_nonnull(e);
    /* a little above: a 1 far below the midpoint's last digit */
    snprintf(tmp, sizeof tmp, "%.*s1%s", (int)(e - buf), buf, e);
    same_as_strtof(tmp);
    /* a little below: the midpoint's digits cut short to 19 and 30 */
    snprintf(buf, sizeof buf, "%.18e", mid);
    same_as_strtof(buf);
    snprintf(buf, sizeof buf, "%.29e", mid);
    same_as_strtof(buf);
  }
}
END_TEST

/* Error offsets are the offending token's start, whatever the error. */
START_TEST(error_offsets_at_token_start) {
  static const struct {
    const char *text;
    qs_jerr err;
    size_t at;
  } t[] = {
      {"[[0.5,1e999,3]]", QS_JNONFINITE, 6},  {"[[0.5,NaN,3]]", QS_JNONFINITE, 6},
      {"[[0.5,-Infinity,3]]", QS_JNONFINITE, 6}, {"[0.5, -1e39, 3]", QS_JNONFINITE, 6},
      {"[0.5, Infinity, 3]", QS_JNONFINITE, 6}, {"[[0.5,1.x,3]]", QS_JSYNTAX, 6},
      {"[[0.5,01,3]]", QS_JSYNTAX, 6},          {"[[0.5,1e+,3]]", QS_JSYNTAX, 6},
      {"[[0.5,0x10,3]]", QS_JSYNTAX, 6},        {"[[0.5,\"1\",3]]", QS_JTYPE, 6},
  };
  float out[8];
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    size_t rows, cols, errpos = 999;
    qs_jerr e = qs_json_parse_matrix(t[i].text, strlen(t[i].text), 3, 4, out, 8, &rows, &cols, &errpos);
    ck_assert_msg(e == t[i].err, "%s: error %d, want %d", t[i].text, e, t[i].err);
    ck_assert_msg(errpos == t[i].at, "%s: at byte %zu, want %zu", t[i].text, errpos, t[i].at);
  }
  /* a failed token leaves the position alone */
  size_t pos = 3;
  float f;
  ck_assert_int_eq(qs_num_parse("[1,1e999]", 9, &pos, &f), QS_NUM_NONFINITE);
  ck_assert_uint_eq(pos, 3);
}
END_TEST

/* format -> parse (ours and strtof) gives the same bits back. */
static void round_trips(float f) {
  char buf[QS_NUM_FORMAT_MAX + 1];
  size_t k = qs_num_format(buf, f);
  ck_assert_uint_le(k, 15);
  buf[k] = '\0';
  float a = 0, b = strtof(buf, NULL);
  size_t pos = 0;
  ck_assert_msg(qs_num_parse(buf, k, &pos, &a) == QS_NUM_OK && pos == k, "%08x -> %s refused",
                fbits(f), buf);
  ck_assert_msg(fbits(a) == fbits(f) && fbits(b) == fbits(f), "%08x -> %s -> %08x / strtof %08x",
                fbits(f), buf, fbits(a), fbits(b));
}

/* The fewest significant digits p with which "%.{p-1}e" reads back as f:
 * qs_num_format must use exactly that many. */
static int shortest_digits(float f) {
  char ref[48];
  for (int p = 1; p <= 9; p++) {
    snprintf(ref, sizeof ref, "%.*e", p - 1, (double)f);
    if (fbits(strtof(ref, NULL)) == fbits(f)) return p;
  }
  return 9;
}
static int digits_of(const char *s) {
  int n = 0, lead = 1, zeros = 0;
  for (; *s && *s != 'e'; s++) {
    if (*s < '0' || *s > '9') continue;
    if (lead && *s == '0') continue;
    lead = 0;
    n++;
    zeros = *s == '0' ? zeros + 1 : 0;
  }
  return n - zeros; /* trailing zeros of an integer are not significant */
}

START_TEST(format_every_class_round_trips) {
  /* zeros, extremes */
  static const float fixed[] = {0.0f, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, FLT_TRUE_MIN, -FLT_TRUE_MIN,
                                1e38f, 1e-38f, 1.0f, 0.1f, 16777216.0f, 16777215.0f};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) round_trips(fixed[i]);
  /* every power of two, both signs, and its neighbours */
  for (uint32_t e = 0; e < 255; e++)
    for (int d = -2; d <= 2; d++) {
      uint32_t u = (e << 23) + (uint32_t)d;
      if ((int)(e << 23) + d <= 0 || u >= 0x7F800000) continue;
      round_trips(from_bits(u));
      round_trips(from_bits(u | 0x80000000u));
    }
  /* subnormals: a stride through all of them, and the first and last 4096 */
  for (uint32_t u = 1; u < 0x800000; u += 97) round_trips(from_bits(u));
  for (uint32_t u = 1; u < 4096; u++) {
    round_trips(from_bits(u));
    round_trips(from_bits(0x800000 - u));
  }
  /* around 1e+-38 and FLT_MAX */
  uint32_t around[] = {fbits(1e38f), fbits(1e-38f), fbits(FLT_MAX) - 2000, fbits(FLT_MIN)};
  for (size_t i = 0; i < 4; i++)
    for (uint32_t u = around[i] - 2000; u <= around[i] + 2000; u++)
      if (u < 0x7F800000) round_trips(from_bits(u));
  /* random bit patterns */
  for (int i = 0; i < 1000000; i++) {
    float f = from_bits((uint32_t)rng());
    if (isfinite(f)) round_trips(f);
  }
}
END_TEST

START_TEST(format_is_shortest_and_nearest) {
  char buf[QS_NUM_FORMAT_MAX + 1], ref[48];
  for (int i = 0; i < 200000; i++) {
    float f = from_bits((uint32_t)rng() & 0x7FFFFFFF);
    if (i % 5 == 0) f = from_bits((uint32_t)rng() & 0x7FFFFF); /* subnormal */
    if (!isfinite(f) || f == 0) continue;
    size_t k = qs_num_format(buf, f);
    buf[k] = '\0';
    int p = shortest_digits(f);
    ck_assert_msg(digits_of(buf) == p, "%08x: %s has %d digits, %d suffice", fbits(f), buf,
                  digits_of(buf), p);
    /* the correctly rounded p-digit decimal reads back, so it is the
     * nearest p-digit one: ours must be the same number */
    snprintf(ref, sizeof ref, "%.*e", p - 1, (double)f);
    ck_assert_msg(strtod(buf, NULL) == strtod(ref, NULL), "%08x: %s, nearest is %s", fbits(f), buf, ref);
  }
}
END_TEST

START_TEST(format_layout) {
  static const struct {
    float f;
    const char *s;
  } t[] = {{0.0f, "0"},           {-0.0f, "-0"},
           {1.0f, "1"},           {-2.5f, "-2.5"},
           {0.1f, "0.1"},         {0.0001f, "0.0001"},
           {0.00012f, "0.00012"}, {1e-5f, "1e-05"},
           {123456789.0f, "123456790"}, {1e9f, "1e+09"},
           {16777216.0f, "16777216"}, {FLT_MAX, "3.4028235e+38"},
           {FLT_MIN, "1.1754944e-38"}, {FLT_TRUE_MIN, "1e-45"},
           {0.3f, "0.3"},         {2.0f / 3.0f, "0.6666667"},
           {1e-10f, "1e-10"},     {12345.678f, "12345.678"}};
  char buf[QS_NUM_FORMAT_MAX + 1];
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    size_t k = qs_num_format(buf, t[i].f);
    buf[k] = '\0';
    ck_assert_str_eq(buf, t[i].s);
  }
}
END_TEST

Suite *suite_num(void) {
  Suite *s = suite_create("num");
  TCase *tc = tcase_create("num");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, parse_fixed_cases);
  tcase_add_test(tc, parse_random_shapes);
  tcase_add_test(tc, parse_midpoints_tie_to_even);
  tcase_add_test(tc, error_offsets_at_token_start);
  tcase_add_test(tc, format_every_class_round_trips);
  tcase_add_test(tc, format_is_shortest_and_nearest);
  tcase_add_test(tc, format_layout);
  suite_add_tcase(s, tc);
  return s;
}
