/* test_quant.c - the quantization contract: parameters, rounding, clamping,
 * fake quantization and the STE mask, observers. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qat.h"
#include "qat_train.h"

Suite *suite_quant(void);

START_TEST(symmetric_uses_largest_magnitude) {
  qat_qparams p;
  ck_assert_int_eq(qat_qparams_from_range(-3.0f, 1.0f, 8, true, &p), QAT_OK);
  ck_assert_int_eq(p.zero_point, 0);
  ck_assert_int_eq(p.qmin, -127);
  ck_assert_int_eq(p.qmax, 127);
  ck_assert(p.scale == 3.0f / 127.0f);
  ck_assert_int_eq(qat_quantize(-3.0f, &p), -127);
  ck_assert_int_eq(qat_quantize(3.0f, &p), 127);
  ck_assert_int_eq(qat_quantize(100.0f, &p), 127);
  ck_assert_int_eq(qat_quantize(-100.0f, &p), -127);
}
END_TEST

START_TEST(affine_includes_zero) {
  qat_qparams p;
  /* A range that excludes 0 is extended to include it. */
  ck_assert_int_eq(qat_qparams_from_range(2.0f, 4.0f, 8, false, &p), QAT_OK);
  ck_assert_int_eq(p.zero_point, 0);
  ck_assert(p.scale == 4.0f / 255.0f);
  ck_assert_int_eq(qat_quantize(0.0f, &p), 0);
  ck_assert_int_eq(qat_qparams_from_range(-4.0f, -2.0f, 8, false, &p), QAT_OK);
  ck_assert_int_eq(p.zero_point, 255);
  ck_assert(qat_dequantize(qat_quantize(0.0f, &p), &p) == 0.0f);
  /* Zero is exact for any range. */
  for (int i = 0; i < 1000; i++) {
    float lo = -(float)(rand() % 1000) / 37.0f, hi = (float)(rand() % 1000) / 53.0f;
    ck_assert_int_eq(qat_qparams_from_range(lo, hi, 8, false, &p), QAT_OK);
    ck_assert(qat_dequantize(qat_quantize(0.0f, &p), &p) == 0.0f);
  }
}
END_TEST

START_TEST(bit_widths) {
  qat_qparams p;
  for (int b = 2; b <= 8; b++) {
    ck_assert_int_eq(qat_qparams_from_range(-1.0f, 1.0f, b, true, &p), QAT_OK);
    ck_assert_int_eq(p.qmax, (1 << (b - 1)) - 1);
    ck_assert_int_eq(p.qmin, -p.qmax);
    ck_assert_int_eq(qat_qparams_from_range(-1.0f, 1.0f, b, false, &p), QAT_OK);
    ck_assert_int_eq(p.qmin, 0);
    ck_assert_int_eq(p.qmax, (1 << b) - 1);
  }
  ck_assert_int_eq(qat_qparams_from_range(-1.0f, 1.0f, 1, true, &p), QAT_EINVAL);
  ck_assert_int_eq(qat_qparams_from_range(-1.0f, 1.0f, 9, false, &p), QAT_EINVAL);
  ck_assert_int_eq(qat_qparams_from_range(NAN, 1.0f, 8, false, &p), QAT_ENOTFINITE);
  ck_assert_int_eq(qat_qparams_from_range(-INFINITY, 1.0f, 8, true, &p), QAT_ENOTFINITE);
  ck_assert_int_eq(qat_qparams_from_range(2.0f, 1.0f, 8, true, &p), QAT_EINVAL);
}
END_TEST

START_TEST(degenerate_range) {
  qat_qparams p;
  ck_assert_int_eq(qat_qparams_from_range(0.0f, 0.0f, 8, true, &p), QAT_OK);
  ck_assert(p.scale == QAT_MIN_SCALE);
  ck_assert_int_eq(qat_quantize(0.0f, &p), 0);
  ck_assert_int_eq(qat_qparams_from_range(0.0f, 0.0f, 8, false, &p), QAT_OK);
  ck_assert(p.scale == QAT_MIN_SCALE);
  ck_assert_int_eq(p.zero_point, 0);
  ck_assert(isfinite(1.0f / p.scale));
}
END_TEST

START_TEST(ties_round_to_even) {
  qat_qparams p = {.scale = 1.0f, .zero_point = 0, .qmin = -127, .qmax = 127};
  ck_assert_int_eq(qat_quantize(0.5f, &p), 0);
  ck_assert_int_eq(qat_quantize(1.5f, &p), 2);
  ck_assert_int_eq(qat_quantize(2.5f, &p), 2);
  ck_assert_int_eq(qat_quantize(-0.5f, &p), 0);
  ck_assert_int_eq(qat_quantize(-1.5f, &p), -2);
  ck_assert_int_eq(qat_quantize(-2.5f, &p), -2);
  qat_qparams a = {.scale = 0.5f, .zero_point = 10, .qmin = 0, .qmax = 255};
  ck_assert_int_eq(qat_quantize(0.25f, &a), 10); /* 0.5 -> 0 */
  ck_assert_int_eq(qat_quantize(0.75f, &a), 12); /* 1.5 -> 2 */
  ck_assert_int_eq(qat_quantize(NAN, &a), 0);
}
END_TEST

/* PyTorch multiplies by the float reciprocal; plain division differs on a
 * few values in a million. Pin the multiply: find a value where the two
 * disagree and check we give the reciprocal's answer. */
START_TEST(multiplies_by_reciprocal) {
  qat_qparams p = {.scale = 0.1f, .zero_point = 0, .qmin = -127, .qmax = 127};
  int found = 0;
  srand(7);
  for (int i = 0; i < 4000000 && !found; i++) {
    float s = 0.001f + (float)rand() / (float)RAND_MAX;
    float x = ((float)rand() / (float)RAND_MAX - 0.5f) * 200.0f * s;
    float inv = 1.0f / s;
    if (rintf(x * inv) != rintf(x / s) && fabsf(rintf(x * inv)) < 127.0f) {
      p.scale = s;
      ck_assert_int_eq(qat_quantize(x, &p), (int32_t)rintf(x * inv));
      found = 1;
    }
  }
  ck_assert_msg(found, "no value found where division and reciprocal differ");
}
END_TEST

START_TEST(vector_quantize_matches_scalar) {
  qat_qparams a, s;
  ck_assert_int_eq(qat_qparams_from_range(-1.3f, 2.7f, 8, false, &a), QAT_OK);
  ck_assert_int_eq(qat_qparams_from_range(-1.3f, 2.7f, 8, true, &s), QAT_OK);
  float x[1001];
  uint8_t qu[1001];
  int8_t qs[1001];
  for (int i = 0; i < 1001; i++) x[i] = -2.0f + 5.0f * (float)i / 1000.0f;
  qat_quantize_u8(x, 1001, &a, qu);
  qat_quantize_s8(x, 1001, &s, qs);
  for (int i = 0; i < 1001; i++) {
    ck_assert_int_eq(qu[i], qat_quantize(x[i], &a));
    ck_assert_int_eq(qs[i], qat_quantize(x[i], &s));
  }
}
END_TEST

START_TEST(fake_quant_and_ste_mask) {
  qat_qparams p;
  ck_assert_int_eq(qat_qparams_from_range(-1.0f, 3.0f, 8, false, &p), QAT_OK);
  float lo = qat_dequantize(p.qmin, &p), hi = qat_dequantize(p.qmax, &p);
  float x[6] = {lo - 0.5f, lo, 0.0f, 1.2345f, hi, hi + 0.5f};
  float y[6];
  uint8_t m[6];
  qat_fake_quant(x, 6, &p, y, m);
  for (int i = 0; i < 6; i++)
    ck_assert(y[i] == qat_dequantize(qat_quantize(x[i], &p), &p));
  ck_assert_int_eq(m[0], 0);
  ck_assert_int_eq(m[1], 1);
  ck_assert_int_eq(m[2], 1);
  ck_assert_int_eq(m[3], 1);
  ck_assert_int_eq(m[4], 1);
  ck_assert_int_eq(m[5], 0);
  /* In place. */
  qat_fake_quant(x, 6, &p, x, NULL);
  for (int i = 0; i < 6; i++) ck_assert(x[i] == y[i]);
}
END_TEST

START_TEST(observers) {
  qat_observer mm, ma;
  qat_observer_init(&mm, 0.0f);
  qat_observer_init(&ma, 0.01f);
  float b1[3] = {-1.0f, 0.5f, 2.0f}, b2[3] = {-3.0f, NAN, 1.0f};
  qat_observer_update(&mm, b1, 3);
  qat_observer_update(&ma, b1, 3);
  ck_assert(mm.min == -1.0f && mm.max == 2.0f);
  ck_assert(ma.min == -1.0f && ma.max == 2.0f); /* first batch sets it */
  qat_observer_update(&mm, b2, 3);
  qat_observer_update(&ma, b2, 3);
  ck_assert(mm.min == -3.0f && mm.max == 2.0f);
  ck_assert(ma.min == -1.0f + 0.01f * (-3.0f - -1.0f));
  ck_assert(ma.max == 2.0f + 0.01f * (1.0f - 2.0f));
  qat_qparams p;
  qat_observer init;
  qat_observer_init(&init, 0.01f);
  ck_assert_int_eq(qat_observer_qparams(&init, 8, false, &p), QAT_OK);
  ck_assert_int_eq(p.zero_point, 0);
  ck_assert_int_eq(qat_observer_qparams(&mm, 8, false, &p), QAT_OK);
  ck_assert(p.scale == 5.0f / 255.0f);
}
END_TEST

START_TEST(error_table) {
  ck_assert_str_eq(qat_err_name(QAT_ESHAPE), "QAT_ESHAPE");
  ck_assert_str_eq(qat_err_name(QAT_OK), "QAT_OK");
  ck_assert_str_eq(qat_err_name((qat_err)9999), "QAT_E?");
  qat_qparams p;
  ck_assert_int_eq(qat_qparams_from_range(-1.0f, 1.0f, 12, true, &p), QAT_EINVAL);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "12"));
}
END_TEST

Suite *suite_quant(void) {
  Suite *s = suite_create("quant");
  TCase *t = tcase_create("quant");
  tcase_set_timeout(t, 30);
  tcase_add_test(t, symmetric_uses_largest_magnitude);
  tcase_add_test(t, affine_includes_zero);
  tcase_add_test(t, bit_widths);
  tcase_add_test(t, degenerate_range);
  tcase_add_test(t, ties_round_to_even);
  tcase_add_test(t, multiplies_by_reciprocal);
  tcase_add_test(t, vector_quantize_matches_scalar);
  tcase_add_test(t, fake_quant_and_ste_mask);
  tcase_add_test(t, observers);
  tcase_add_test(t, error_table);
  suite_add_tcase(s, t);
  return s;
}
