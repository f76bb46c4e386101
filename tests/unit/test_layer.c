/* test_layer.c - the integer layer against the formulas of DESIGN.md, each
 * written out here independently: every kernel tier's gemm + requant_u8 and
 * quantize_u8 (kernels.h) on random small layers and adversarial values
 * (full-range inputs, +-127 and -128 weights, zero points at both ends,
 * ties), plus the rest of core/layer.c (bias, dequant, dynamic, fp32). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "layer.h"
#include "../lib/model_fixture.h"
#include "qat.h"

Suite *suite_layer(void);

/* Every tier this machine can run (the reference always) and the test twin
 * of avxvnni where AVX-512 VNNI runs it. */
static size_t tiers(const qat_kernels **t) {
  return qat__kernels_available(t, 8, true);
}

/* out = clamp(rint((float)(acc + bq) * M) + out_zp, relu ? out_zp : 0, qmax) */
static uint8_t formula_out(int64_t acc_plus_bq, float M, int32_t zp, bool relu, int32_t qmax) {
  ck_assert(acc_plus_bq >= INT32_MIN && acc_plus_bq <= INT32_MAX);
  double v = (double)rintf((float)(int32_t)acc_plus_bq * M) + zp;
  double lo = relu ? zp : 0;
  if (v < lo) v = lo;
  if (v > qmax) v = qmax;
  return (uint8_t)v;
}

typedef struct layer_case {
  size_t M, N, K;
  uint8_t *x;
  int8_t *w;
  float *ws, *bias;
  float in_s, out_s;
  int32_t in_zp, out_zp, qmax;
  bool relu;
} layer_case;

/* Runs the library: pack with the chosen kernel tier, raw product, the
 * requantization with bias_adj / M built here from the formulas. */
static void run_case(const qat_kernels *k, const layer_case *t, uint8_t *got,
                     uint8_t *want) {
  void *packed = aligned_alloc(64, (k->packed_size(t->N, t->K) + 63) / 64 * 64);
  int32_t *raw = malloc(t->M * t->N * sizeof(int32_t));
  int32_t *adj = malloc(t->N * sizeof(int32_t));
  float *mult = malloc(t->N * sizeof(float));
  ck_assert(packed && raw && adj && mult);
  k->pack(t->w, t->N, t->K, packed);
  k->gemm_u8s8(t->x, t->M, t->K, t->K, packed, t->N, raw);
  for (size_t c = 0; c < t->N; c++) {
    int32_t rowsum = 0;
    for (size_t j = 0; j < t->K; j++) rowsum += t->w[c * t->K + j];
    float bq = rintf(t->bias[c] * (1.0f / (float)((double)t->ws[c] * (double)t->in_s)));
    adj[c] = (int32_t)bq - t->in_zp * rowsum;
    mult[c] = (t->ws[c] * t->in_s) * (1.0f / t->out_s);
  }
  k->requant_u8(raw, t->M, t->N, adj, mult, t->out_zp, t->relu ? t->out_zp : 0,
                t->qmax, got, t->N);
  /* The expected numbers, straight from acc = sum (x - in_zp) * w. */
  for (size_t m = 0; m < t->M; m++)
    for (size_t c = 0; c < t->N; c++) {
      int64_t acc = 0;
      for (size_t j = 0; j < t->K; j++)
        acc += ((int64_t)t->x[m * t->K + j] - t->in_zp) * t->w[c * t->K + j];
      float bq = rintf(t->bias[c] * (1.0f / (float)((double)t->ws[c] * (double)t->in_s)));
      float M = ((float)t->ws[c] * (float)t->in_s) * (1.0f / (float)t->out_s);
      want[m * t->N + c] = formula_out(acc + (int64_t)bq, M, t->out_zp, t->relu, t->qmax);
    }
  free(packed);
  free(raw);
  free(adj);
  free(mult);
}

static layer_case random_case(uint32_t *s, int style) {
  layer_case t;
  t.M = 1 + fixture_next(s) % 9;
  t.N = 1 + fixture_next(s) % 37;
  t.K = 1 + fixture_next(s) % 67;
  t.x = malloc(t.M * t.K);
  t.w = malloc(t.N * t.K);
  t.ws = malloc(t.N * sizeof(float));
  t.bias = malloc(t.N * sizeof(float));
  ck_assert(t.x && t.w && t.ws && t.bias);
  for (size_t i = 0; i < t.M * t.K; i++)
    t.x[i] = style == 1 ? 255 : style == 2 ? 0 : (uint8_t)fixture_next(s);
  for (size_t i = 0; i < t.N * t.K; i++) {
    int v = (int)(fixture_next(s) % 256) - 128; /* -128 included (imported) */
    t.w[i] = (int8_t)(style == 1 ? (i % 2 ? 127 : -128) : style == 2 ? -128 : v);
  }
  for (size_t c = 0; c < t.N; c++) {
    t.ws[c] = 0.001f + 0.05f * fixture_uniform(s);
    t.bias[c] = -2.0f + 4.0f * fixture_uniform(s);
  }
  t.in_s = 0.001f + 0.02f * fixture_uniform(s);
  /* Zero points at both ends and in between; output scale so that the
   * outputs span the range and clamp at both ends. */
  const int32_t zps[] = {0, 255, 128, 3};
  t.in_zp = zps[fixture_next(s) % 4];
  t.out_zp = zps[fixture_next(s) % 4];
  t.qmax = fixture_next(s) % 5 == 0 ? 15 : 255;
  if (t.out_zp > t.qmax) t.out_zp = t.qmax;
  t.out_s = sqrtf((float)t.K) * 128.0f * 0.03f * t.in_s * (0.2f + fixture_uniform(s));
  t.relu = fixture_next(s) % 2;
  return t;
}

static void free_case(layer_case *t) {
  free(t->x);
  free(t->w);
  free(t->ws);
  free(t->bias);
}

START_TEST(requant_matches_formula) {
  const qat_kernels *tier[8];
  size_t nt = tiers(tier);
  for (size_t ti = 0; ti < nt; ti++) {
    uint32_t s = 1234;
    int interior = 0, low = 0, high = 0;
    for (int it = 0; it < 600; it++) {
      layer_case t = random_case(&s, it % 20 == 0 ? 1 : it % 20 == 1 ? 2 : 0);
      uint8_t *got = malloc(t.M * t.N), *want = malloc(t.M * t.N);
      ck_assert(got && want);
      run_case(tier[ti], &t, got, want);
      for (size_t i = 0; i < t.M * t.N; i++) {
        ck_assert_msg(got[i] == want[i], "%s case %d (M %zu N %zu K %zu in_zp %d out_zp %d): "
                      "out %zu = %u, formula %u", tier[ti]->name, it, t.M, t.N, t.K,
                      t.in_zp, t.out_zp, i, got[i], want[i]);
        int lo = t.relu ? t.out_zp : 0;
        low += want[i] == lo;
        high += want[i] == t.qmax;
        interior += want[i] > lo && want[i] < t.qmax;
      }
      free(got);
      free(want);
      free_case(&t);
    }
    /* The cases really exercised both clamps and the interior. */
    ck_assert_int_gt(interior, 1000);
    ck_assert_int_gt(low, 100);
    ck_assert_int_gt(high, 100);
  }
}
END_TEST

START_TEST(requant_ties_and_extremes) {
  const qat_kernels *tier[8];
  size_t nt = tiers(tier);
  for (size_t ti = 0; ti < nt; ti++) {
  const qat_kernels *k = tier[ti];
  /* rint ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2,
   * 3.5 -> 4. Repeated to 35 channels so the vector body and the scalar
   * tail both see every case. */
  enum { N = 35 };
  const int32_t pat[] = {1, 3, 5, -1, -3, 7};
  const uint8_t pwant[] = {10, 12, 12, 10, 8, 14};
  int32_t raw[N], adj[N];
  float mult[N];
  uint8_t out[N];
  for (int i = 0; i < N; i++) {
    raw[i] = pat[i % 6] - 4 * (i % 3);
    adj[i] = 4 * (i % 3); /* raw + adj is the pattern again */
    mult[i] = 0.5f;
  }
  k->requant_u8(raw, 1, N, adj, mult, 10, 0, 255, out, N);
  for (int i = 0; i < N; i++) ck_assert_msg(out[i] == pwant[i % 6], "%s channel %d", k->name, i);
  /* Huge accumulators with a huge multiplier clamp cleanly (UBSan checks the
   * conversion never sees an out-of-range float). */
  const int32_t big[] = {INT32_MAX - 5, INT32_MIN + 5, 1 << 30, -(1 << 30)};
  const int32_t badj[] = {5, -5, 0, 0};
  const float bm[] = {1e30f, 1e30f, 3.4e38f, 3.4e38f};
  const uint8_t bwant[] = {200, 7, 200, 7};
  for (int i = 0; i < N; i++) {
    raw[i] = big[i % 4];
    adj[i] = badj[i % 4];
    mult[i] = bm[i % 4];
  }
  k->requant_u8(raw, 1, N, adj, mult, 7, 7, 200, out, N);
  for (int i = 0; i < N; i++) ck_assert_msg(out[i] == bwant[i % 4], "%s channel %d", k->name, i);
  /* Around the rounding trick's limit (2^22): still the formula. */
  for (int i = 0; i < N; i++) {
    raw[i] = (1 << 22) + i - 17;
    adj[i] = 0;
    mult[i] = i % 2 ? 1.0f : -1.0f;
  }
  k->requant_u8(raw, 1, N, adj, mult, 128, 0, 255, out, N);
  for (int i = 0; i < N; i++) ck_assert_int_eq(out[i], i % 2 ? 255 : 0);
  }
}
END_TEST

START_TEST(bias_q_matches_formula) {
  uint32_t s = 99;
  for (int i = 0; i < 100000; i++) {
    float b = -10.0f + 20.0f * fixture_uniform(&s);
    float ws = 1e-4f + 0.1f * fixture_uniform(&s), is = 1e-3f + 0.05f * fixture_uniform(&s);
    int32_t q;
    ck_assert(qat__layer_bias_q(b, ws, is, &q));
    float want = rintf(b * (1.0f / (float)((double)ws * (double)is)));
    ck_assert_int_eq(q, (int32_t)want);
    float M = qat__layer_multiplier(ws, is, 0.37f);
    ck_assert(M == ((float)ws * (float)is) * (1.0f / 0.37f));
  }
  int32_t q;
  ck_assert(qat__layer_bias_q(1.0f, 1.0f, 1.0f / (float)(1 << 30), &q)); /* exactly 2^30 */
  ck_assert_int_eq(q, 1 << 30);
  ck_assert(!qat__layer_bias_q(1.0f, 1.0f, 1.0f / 2147483648.0f, &q));
  ck_assert(!qat__layer_bias_q(-1.0f, 1.0f, 1.0f / 2147483648.0f, &q));
  ck_assert(!qat__layer_bias_q(NAN, 1.0f, 1.0f, &q));
  ck_assert(!qat__layer_bias_q(0.0f, 1e-30f, 1e-30f, &q)); /* product underflows: 0 * inf */
}
END_TEST

START_TEST(dequant_and_dynamic_outputs) {
  const int32_t raw[] = {10, -20, 7, 0, -1, 3};
  const int32_t adj[] = {5, 5, -7};
  const float sc[] = {0.5f, 0.25f, 2.0f};
  float y[6];
  qat__layer_dequant_acc(raw, 2, 3, adj, sc, false, y);
  const float want[] = {7.5f, -3.75f, 0.0f, 2.5f, 1.0f, -8.0f};
  for (int i = 0; i < 6; i++) ck_assert(y[i] == want[i]);
  qat__layer_dequant_acc(raw, 2, 3, adj, sc, true, y);
  for (int i = 0; i < 6; i++) ck_assert(y[i] == (want[i] > 0 ? want[i] : 0.0f));
  /* dynamic: (raw - zp * rowsum) * scale + bias */
  const int32_t rs[] = {2, -3, 1};
  const float bias[] = {0.5f, -1.0f, 0.0f};
  qat__layer_dynamic_out(raw, 2, 3, rs, 4, sc, bias, false, y);
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 3; c++)
      ck_assert(y[r * 3 + c] == (float)(raw[r * 3 + c] - 4 * rs[c]) * sc[c] + bias[c]);
  uint8_t q[] = {0, 10, 255};
  qat__layer_dequant_u8(q, 3, 10, 0.5f, y);
  ck_assert(y[0] == -5.0f && y[1] == 0.0f && y[2] == 122.5f);
  /* minmax over every length 1..40 (vector body and tail), with the
   * extremes and a NaN / infinity at every position. */
  uint32_t s = 3;
  float v[40], lo, hi;
  for (size_t n = 1; n <= 40; n++) {
    fixture_fill(&s, v, n, -5, 5);
    float wl = v[0], wh = v[0];
    for (size_t i = 1; i < n; i++) wl = fminf(wl, v[i]), wh = fmaxf(wh, v[i]);
    ck_assert(qat__layer_minmax(v, n, &lo, &hi));
    ck_assert(lo == wl && hi == wh);
    for (size_t i = 0; i < n; i++) {
      const float bad[] = {NAN, INFINITY, -INFINITY};
      for (int b = 0; b < 3; b++) {
        float keep = v[i];
        v[i] = bad[b];
        ck_assert_msg(!qat__layer_minmax(v, n, &lo, &hi), "n %zu pos %zu bad %d", n, i, b);
        v[i] = keep;
      }
    }
  }
  ck_assert(!qat__layer_minmax(v, 0, &lo, &hi));
}
END_TEST

START_TEST(fp32_layer_matches_naive) {
  uint32_t s = 5;
  for (int it = 0; it < 40; it++) {
    size_t R = it % 4 == 0 ? 1 : 1 + fixture_next(&s) % 20;
    size_t N = 1 + fixture_next(&s) % 50, K = 1 + fixture_next(&s) % 90;
    bool relu = it % 2;
    float *x = malloc(R * K * 4), *W = malloc(N * K * 4), *b = malloc(N * 4),
          *y = malloc(R * N * 4);
    ck_assert(x && W && b && y);
    fixture_fill(&s, x, R * K, -1, 1);
    fixture_fill(&s, W, N * K, -1, 1);
    fixture_fill(&s, b, N, -1, 1);
    for (size_t i = 0; i < R * K; i += 3) x[i] = 0.0f; /* skipped by gemv_f32 */
    float *Wt = qat__malloc_aligned(K * qat__gemv_f32_ld(N) * 4);
    ck_assert(Wt);
    qat__gemv_f32_transpose(W, N, K, Wt);
    qat__layer_fp32(qat__kernels_get(), x, R, K, W, Wt, b, N, relu, y);
    qat__free_aligned(Wt);
    for (size_t r = 0; r < R; r++)
      for (size_t c = 0; c < N; c++) {
        double acc = b[c];
        for (size_t k = 0; k < K; k++) acc += (double)x[r * K + k] * W[c * K + k];
        if (relu && acc < 0) acc = 0;
        ck_assert_msg(fabs(y[r * N + c] - acc) <= 1e-4 * fmax(1.0, fabs(acc)),
                      "R %zu N %zu K %zu: %g vs %g", R, N, K, (double)y[r * N + c], acc);
      }
    free(x);
    free(W);
    free(b);
    free(y);
  }
}
END_TEST

START_TEST(quantize_matches_contract) {
  /* Each tier's input quantizer equals the contract's qat_quantize_u8 for
   * every input: random, ties, out of range, infinities, NaN, -0. */
  uint32_t s = 77;
  enum { N = 100003 }; /* not a multiple of 16: the scalar tail runs too */
  float *x = malloc(N * sizeof(float));
  uint8_t *a = malloc(N), *b = malloc(N);
  ck_assert(x && a && b);
  const float special[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1e30f, -1e30f,
                           0.5f, 1.5f, 2.5f, -0.5f, 254.5f, 255.5f, 8388608.0f};
  for (int trial = 0; trial < 6; trial++) {
    qat_qparams p = {trial < 3 ? 1.0f : 0.00392157f, trial % 2 ? 255 : trial == 2 ? 128 : 0,
                     0, trial == 4 ? 15 : 255};
    for (size_t i = 0; i < N; i++) {
      x[i] = i < sizeof special / sizeof *special
                 ? special[i]
                 : (i % 3 == 0 ? (float)(int)(fixture_next(&s) % 600) * 0.5f - 150.0f
                               : -2.0f + 4.0f * fixture_uniform(&s)) *
                       (trial < 3 ? 1.0f : 0.00392157f);
    }
    qat_quantize_u8(x, N, &p, a);
    const qat_kernels *tier[8];
    size_t nt = tiers(tier);
    for (size_t ti = 0; ti < nt; ti++) {
      memset(b, 0xAA, N);
      tier[ti]->quantize_u8(x, N, &p, b);
      for (size_t i = 0; i < N; i++)
        ck_assert_msg(a[i] == b[i], "%s trial %d x = %g: %u vs %u", tier[ti]->name, trial,
                      (double)x[i], a[i], b[i]);
    }
  }
  free(x);
  free(a);
  free(b);
}
END_TEST

/* ONNX Runtime's rounding (qat_rounding): the division variants equal their
 * formulas, and the inputs include values where the division and PyTorch's
 * reciprocal multiply round differently, so each difference is exercised. */
START_TEST(onnxruntime_rounding) {
  uint32_t s = 91;
  enum { N = 20000 };
  float x[64];
  uint8_t q[64];
  int quant_differs = 0, mult_differs = 0, requant_differs = 0;
  for (int trial = 0; trial < N; trial++) {
    qat_qparams p = {0.001f + 0.05f * fixture_uniform(&s), (int32_t)(fixture_next(&s) % 256),
                     0, 255};
    for (int i = 0; i < 64; i++) /* near the half-way points of the grid */
      x[i] = ((float)(int)(fixture_next(&s) % 300) - 150.0f + 0.5f) * p.scale;
    qat__layer_quantize_div(x, 64, &p, q);
    for (int i = 0; i < 64; i++) {
      float v = rintf(x[i] / p.scale) + (float)p.zero_point;
      v = v < 0 ? 0 : v > 255 ? 255 : v;
      ck_assert_uint_eq(q[i], (uint8_t)v);
      quant_differs += qat_quantize(x[i], &p) != (int32_t)v;
    }
    float ws = 0.0005f + 0.01f * fixture_uniform(&s), is = p.scale, os = 0.01f + 0.1f * fixture_uniform(&s);
    float mo = qat__layer_multiplier_ort(ws, is, os);
    ck_assert(mo == (is * ws) / os);
    mult_differs += mo != qat__layer_multiplier(ws, is, os);
    /* Two roundings: (acc * (in_s * w_s)) / out_s. */
    int32_t raw[4], badj[4] = {-1000, 0, 17, 123456};
    float sc[4];
    for (int c = 0; c < 4; c++) { /* acc + bq near a half-way point */
      sc[c] = is * (ws + 0.001f * (float)c);
      double half = (double)(fixture_next(&s) % 200) - 100.0 + 0.5;
      raw[c] = (int32_t)lrint(half * (double)(os * 100.0f) / (double)sc[c]) - badj[c];
    }
    uint8_t o[4];
    int32_t zp = (int32_t)(fixture_next(&s) % 256);
    qat__layer_requant_div(raw, 1, 4, badj, sc, os * 100.0f, zp, 0, 255, o, 4);
    for (int c = 0; c < 4; c++) {
      float v = rintf(((float)(raw[c] + badj[c]) * sc[c]) / (os * 100.0f)) + (float)zp;
      v = v < 0 ? 0 : v > 255 ? 255 : v;
      ck_assert_uint_eq(o[c], (uint8_t)v);
      float one = rintf((float)(raw[c] + badj[c]) * qat__layer_multiplier_ort(sc[c] / is, is, os * 100.0f)) + (float)zp;
      one = one < 0 ? 0 : one > 255 ? 255 : one;
      requant_differs += (uint8_t)one != o[c];
    }
  }
  /* The conventions differ somewhere: these tests could see a mix-up. */
  ck_assert_int_gt(quant_differs, 0);
  ck_assert_int_gt(mult_differs, 0);
  ck_assert_int_gt(requant_differs, 0);
}
END_TEST

Suite *suite_layer(void) {
  Suite *s = suite_create("layer");
  TCase *t = tcase_create("layer");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, requant_matches_formula);
  tcase_add_test(t, requant_ties_and_extremes);
  tcase_add_test(t, bias_q_matches_formula);
  tcase_add_test(t, dequant_and_dynamic_outputs);
  tcase_add_test(t, fp32_layer_matches_naive);
  tcase_add_test(t, quantize_matches_contract);
  tcase_add_test(t, onnxruntime_rounding);
  suite_add_tcase(s, t);
  return s;
}
