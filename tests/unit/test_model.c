/* test_model.c - the model: create refusals, the three inference paths
 * against independent evaluations written here straight from the formulas
 * (DESIGN.md), chunking, threads, accessors, allocation failure. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/model_fixture.h"
#include "qat.h"

Suite *suite_model(void);

/* ---- an independent reference of the int8 pipeline -------------------- */

static uint8_t ref_quant(float x, qat_qparams p, qat_rounding r) {
  /* ONNX's QuantizeLinear divides; PyTorch multiplies by the reciprocal. */
  float v = (float)p.zero_point +
            rintf(r == QAT_ROUND_PYTORCH ? x * (1.0f / p.scale) : x / p.scale);
  if (v < (float)p.qmin) v = (float)p.qmin;
  if (v > (float)p.qmax) v = (float)p.qmax;
  return (uint8_t)v;
}

/* One row through the integer layers, every step spelled out. */
static void ref_int8_row(const qat_model_spec *s, const float *x, float *y) {
  uint32_t D = 0;
  for (uint32_t i = 0; i < s->n_layers; i++) {
    if (s->layers[i].in_dim > D) D = s->layers[i].in_dim;
    if (s->layers[i].out_dim > D) D = s->layers[i].out_dim;
  }
  int32_t *q = malloc(D * sizeof *q), *nq = malloc(D * sizeof *nq);
  ck_assert(q && nq);
  qat_qparams in = s->input;
  for (uint32_t k = 0; k < s->layers[0].in_dim; k++) q[k] = ref_quant(x[k], in, s->rounding);
  for (uint32_t i = 0; i < s->n_layers; i++) {
    const qat_layer_spec *L = &s->layers[i];
    qat_qparams out = L->out;
    bool last = i + 1 == s->n_layers;
    for (uint32_t c = 0; c < L->out_dim; c++) {
      int64_t acc = 0;
      for (uint32_t k = 0; k < L->in_dim; k++)
        acc += (int64_t)(q[k] - in.zero_point) * L->wq[(size_t)c * L->in_dim + k];
      float b = L->bias ? L->bias[c] : 0.0f;
      float bq = rintf(b * (1.0f / (float)((double)L->w_scale[c] * (double)in.scale)));
      int64_t a = acc + (int64_t)bq;
      ck_assert(a >= INT32_MIN && a <= INT32_MAX);
      if (last && s->out_mode == QAT_OUT_DEQUANT_ACC) {
        float v = (float)(int32_t)a * (in.scale * L->w_scale[c]);
        if (L->act == QAT_ACT_RELU && v < 0) v = 0;
        y[c] = v;
        continue;
      }
      float v;
      if (s->rounding == QAT_ROUND_PYTORCH) {
        float M = (L->w_scale[c] * in.scale) * (1.0f / out.scale);
        v = rintf((float)(int32_t)a * M);
      } else if (s->rounding == QAT_ROUND_ORT) {
        float M = (in.scale * L->w_scale[c]) / out.scale; /* ONNX Runtime's QGemm */
        v = rintf((float)(int32_t)a * M);
      } else { /* Cast, Mul by a * b, QuantizeLinear's division */
        v = rintf(((float)(int32_t)a * (in.scale * L->w_scale[c])) / out.scale);
      }
      v += (float)out.zero_point;
      float lo = L->act == QAT_ACT_RELU ? (float)out.zero_point : 0.0f;
      if (v < lo) v = lo;
      if (v > (float)out.qmax) v = (float)out.qmax;
      nq[c] = (int32_t)v;
      if (last) y[c] = (float)(nq[c] - out.zero_point) * out.scale;
    }
    int32_t *t = q;
    q = nq;
    nq = t;
    in = out;
  }
  free(q);
  free(nq);
}

/* Plain float math: the given weights (fp32 or dequantized int8). */
static void ref_float_row(const qat_model_spec *s, const float *x, float *y,
                          bool dequantized, bool ranges) {
  float a[512], b[512];
  memcpy(a, x, s->layers[0].in_dim * sizeof(float));
  if (ranges)
    for (uint32_t k = 0; k < s->layers[0].in_dim; k++)
      a[k] = fminf(fmaxf(a[k], qat_dequantize(0, &s->input)),
                   qat_dequantize(s->input.qmax, &s->input));
  for (uint32_t i = 0; i < s->n_layers; i++) {
    const qat_layer_spec *L = &s->layers[i];
    ck_assert(L->out_dim <= 512 && L->in_dim <= 512);
    for (uint32_t c = 0; c < L->out_dim; c++) {
      double acc = dequantized ? L->bias[c] : L->b_fp32[c];
      for (uint32_t k = 0; k < L->in_dim; k++) {
        size_t j = (size_t)c * L->in_dim + k;
        float w = dequantized ? (float)L->wq[j] * L->w_scale[c] : L->w_fp32[j];
        acc += (double)w * a[k];
      }
      b[c] = L->act == QAT_ACT_RELU && acc < 0 ? 0.0f : (float)acc;
      /* The int8 model's ranges: clamp to what its activations can hold
       * (the last layer only in requant mode). */
      bool clamp = i + 1 < s->n_layers || s->out_mode == QAT_OUT_REQUANT;
      if (ranges && clamp)
        b[c] = fminf(fmaxf(b[c], qat_dequantize(0, &L->out)),
                     qat_dequantize(L->out.qmax, &L->out));
    }
    memcpy(a, b, L->out_dim * sizeof(float));
  }
  memcpy(y, a, s->layers[s->n_layers - 1].out_dim * sizeof(float));
}

static const uint32_t dims3[] = {37, 29, 13, 7};

static float *random_input(uint32_t seed, size_t n, float lo, float hi) {
  float *x = malloc(n * sizeof(float));
  ck_assert_ptr_nonnull(x);
  fixture_fill(&seed, x, n, lo, hi);
  return x;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(int8_equals_reference) {
  /* Both output modes, with and without ReLU on the last layer, inputs that
   * go past the input range on both sides (clamping). */
  /* And each rounding convention (qat.h, qat_rounding). */
  for (int variant = 0; variant < 12; variant++) {
    qat_fixture *f = fixture_create(dims3, 3, 11 + (uint32_t)variant);
    ck_assert_ptr_nonnull(f);
    f->spec.out_mode = variant & 1 ? QAT_OUT_REQUANT : QAT_OUT_DEQUANT_ACC;
    if (variant & 2) f->layers[2].act = QAT_ACT_RELU;
    f->spec.rounding = (qat_rounding)(variant / 4);
    qat_model *m;
    ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
    enum { R = 23 };
    float *x = random_input(5 + (uint32_t)variant, R * 37, -0.2f, 1.2f);
    float y[R * 7], want[7];
    qat_ctx *c;
    ck_assert_int_eq(qat_ctx_create(m, R, &c), QAT_OK);
    ck_assert_int_eq(qat_infer_int8(m, c, x, R, y), QAT_OK);
    int nonzero = 0;
    for (int r = 0; r < R; r++) {
      ref_int8_row(&f->spec, x + r * 37, want);
      for (int j = 0; j < 7; j++) {
        ck_assert_msg(y[r * 7 + j] == want[j], "variant %d row %d out %d: %.9g != %.9g",
                      variant, r, j, (double)y[r * 7 + j], (double)want[j]);
        nonzero += want[j] != 0.0f;
      }
    }
    ck_assert_int_gt(nonzero, R * 2); /* the comparison saw real numbers */
    qat_ctx_destroy(c);
    qat_model_destroy(m);
    free(x);
    fixture_destroy(f);
  }
}
END_TEST

START_TEST(int8_close_to_float) {
  /* Against float math on the dequantized weights, with each layer's output
   * clamped to its range (relu and clamping are 1-Lipschitz). The int8
   * error obeys a bound built one layer at a time: half an input step,
   * carried through sum_k |w[c,k]|, plus half a step of bias rounding and
   * half an output step per layer. */
  qat_fixture *f = fixture_create(dims3, 3, 3);
  ck_assert_ptr_nonnull(f);
  f->spec.out_mode = QAT_OUT_REQUANT;
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  enum { R = 50 };
  float *x = random_input(9, R * 37, 0.0f, 1.0f);
  float y[R * 7], want[7];
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, 8, &c), QAT_OK);
  ck_assert_int_eq(qat_infer_int8(m, c, x, R, y), QAT_OK);
  double bound = 0.5 * f->spec.input.scale;
  qat_qparams in = f->spec.input;
  for (int i = 0; i < 3; i++) {
    const qat_layer_spec *L = &f->layers[i];
    double worst_row = 0;
    for (uint32_t o = 0; o < L->out_dim; o++) {
      double s = 0;
      for (uint32_t k = 0; k < L->in_dim; k++)
        s += fabs((double)L->wq[o * L->in_dim + k] * L->w_scale[o]);
      worst_row = fmax(worst_row, s * bound + 0.5 * in.scale * L->w_scale[o]);
    }
    bound = worst_row + 0.5 * L->out.scale;
    in = L->out;
  }
  bound = bound * 1.001 + 1e-6;
  double worst = 0;
  for (int r = 0; r < R; r++) {
    ref_float_row(&f->spec, x + r * 37, want, true, true);
    for (int j = 0; j < 7; j++) worst = fmax(worst, fabs(y[r * 7 + j] - want[j]));
  }
  ck_assert_msg(worst <= bound, "worst error %g > bound %g", worst, bound);
  /* That bound is for the worst case; in practice the error stays within
   * about one output step per layer. */
  double steps = 0;
  for (int i = 0; i < 3; i++) steps += f->layers[i].out.scale;
  ck_assert_msg(worst <= steps, "worst error %g > one step per layer (%g)", worst, steps);
  ck_assert(worst > 0); /* float and int8 really are different paths */
  /* A single layer: within one step exactly. */
  qat_fixture *g = fixture_create((const uint32_t[]){37, 11}, 1, 4);
  ck_assert_ptr_nonnull(g);
  g->spec.out_mode = QAT_OUT_REQUANT;
  qat_model *m1;
  qat_ctx *c1;
  ck_assert_int_eq(qat_model_create(&g->spec, &m1), QAT_OK);
  ck_assert_int_eq(qat_ctx_create(m1, R, &c1), QAT_OK);
  /* Inputs on the input grid, so only the layer's own rounding remains. */
  for (int i = 0; i < R * 37; i++)
    x[i] = qat_dequantize(qat_quantize(x[i], &g->spec.input), &g->spec.input);
  float y1[R * 11], w1[11];
  ck_assert_int_eq(qat_infer_int8(m1, c1, x, R, y1), QAT_OK);
  for (int r = 0; r < R; r++) {
    ref_float_row(&g->spec, x + r * 37, w1, true, true);
    for (int j = 0; j < 11; j++) {
      float lo = qat_dequantize(0, &g->layers[0].out);
      float hi = qat_dequantize(g->layers[0].out.qmax, &g->layers[0].out);
      float clamped = fminf(fmaxf(w1[j], lo), hi);
      ck_assert_msg(fabsf(y1[r * 11 + j] - clamped) <= g->layers[0].out.scale * 1.0001f,
                    "row %d out %d: %g vs %g", r, j, (double)y1[r * 11 + j],
                    (double)clamped);
    }
  }
  qat_ctx_destroy(c1);
  qat_model_destroy(m1);
  fixture_destroy(g);
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  free(x);
  fixture_destroy(f);
}
END_TEST

START_TEST(fp32_equals_naive) {
  qat_fixture *f = fixture_create(dims3, 3, 21);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, 16, &c), QAT_OK);
  /* rows 1 takes the tier's gemv_f32, more takes sgemm. */
  const size_t rows[] = {1, 2, 16, 33};
  for (size_t t = 0; t < 4; t++) {
    size_t R = rows[t];
    float *x = random_input(30 + (uint32_t)t, R * 37, -1.0f, 1.0f);
    float *y = malloc(R * 7 * sizeof(float)), want[7];
    ck_assert_int_eq(qat_infer_fp32(m, c, x, R, y), QAT_OK);
    for (size_t r = 0; r < R; r++) {
      ref_float_row(&f->spec, x + r * 37, want, false, false);
      for (int j = 0; j < 7; j++)
        ck_assert_msg(fabsf(y[r * 7 + j] - want[j]) <= 1e-4f * fmaxf(1.0f, fabsf(want[j])),
                      "rows %zu row %zu out %d: %g vs %g", R, r, j,
                      (double)y[r * 7 + j], (double)want[j]);
    }
    free(x);
    free(y);
  }
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  fixture_destroy(f);
}
END_TEST

/* The dynamic path from its definition: per layer, range over the batch,
 * uint8 affine qparams, integer product, float scale and bias. */
static void ref_dynamic(const qat_model_spec *s, const float *x, size_t R, float *y) {
  float *a = malloc(R * 64 * sizeof(float)), *b = malloc(R * 64 * sizeof(float));
  ck_assert(a && b);
  memcpy(a, x, R * s->layers[0].in_dim * sizeof(float));
  for (uint32_t i = 0; i < s->n_layers; i++) {
    const qat_layer_spec *L = &s->layers[i];
    size_t K = L->in_dim, N = L->out_dim;
    float lo = a[0], hi = a[0];
    for (size_t j = 0; j < R * K; j++) lo = fminf(lo, a[j]), hi = fmaxf(hi, a[j]);
    qat_qparams p;
    ck_assert_int_eq(qat_qparams_from_range(lo, hi, 8, false, &p), QAT_OK);
    for (size_t r = 0; r < R; r++)
      for (size_t c = 0; c < N; c++) {
        int32_t acc = 0;
        for (size_t k = 0; k < K; k++)
          acc += ((int32_t)ref_quant(a[r * K + k], p, QAT_ROUND_PYTORCH) - p.zero_point) * L->wq[c * K + k];
        float v = (float)acc * (p.scale * L->w_scale[c]) + L->bias[c];
        b[r * N + c] = L->act == QAT_ACT_RELU && !(v > 0) ? 0.0f : v;
      }
    memcpy(a, b, R * N * sizeof(float));
  }
  memcpy(y, a, R * s->layers[s->n_layers - 1].out_dim * sizeof(float));
  free(a);
  free(b);
}

START_TEST(dynamic_sane) {
  qat_fixture *f = fixture_create(dims3, 3, 8);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  enum { R = 9 };
  /* An input range unlike the trained one: dynamic mode adapts. */
  float *x = random_input(77, R * 37, -3.0f, 5.0f);
  float y[R * 7], want[R * 7], fl[7];
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, R, &c), QAT_OK);
  ck_assert_int_eq(qat_infer_dynamic(m, c, x, R, y), QAT_OK);
  ref_dynamic(&f->spec, x, R, want);
  double err = 0, mag = 0;
  for (int r = 0; r < R; r++) {
    ref_float_row(&f->spec, x + r * 37, fl, true, false);
    for (int j = 0; j < 7; j++) {
      ck_assert_msg(fabsf(y[r * 7 + j] - want[r * 7 + j]) <=
                        1e-5f * fmaxf(1.0f, fabsf(want[r * 7 + j])),
                    "row %d out %d: %g vs %g", r, j, (double)y[r * 7 + j],
                    (double)want[r * 7 + j]);
      err = fmax(err, fabs(y[r * 7 + j] - fl[j]));
      mag = fmax(mag, fabs(fl[j]));
    }
  }
  /* And close to float math: a few percent of the output's magnitude. */
  ck_assert_msg(err < 0.05 * mag, "dynamic error %g vs magnitude %g", err, mag);
  /* Non-finite input is refused, not quantized. */
  x[5] = NAN;
  ck_assert_int_eq(qat_infer_dynamic(m, c, x, R, y), QAT_ENOTFINITE);
  x[5] = INFINITY;
  ck_assert_int_eq(qat_infer_dynamic(m, c, x, R, y), QAT_ENOTFINITE);
  /* Finite inputs spanning most of float overflow a one-layer model's
   * output (the last layer's output is no layer's input): refused, never
   * answered with infinities (fuzz_binary found it). */
  {
    qat_fixture *g = fixture_create((const uint32_t[]){37, 7}, 1, 9);
    qat_model *m1;
    qat_ctx *c1;
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(qat_model_create(&g->spec, &m1), QAT_OK);
    ck_assert_int_eq(qat_ctx_create(m1, 1, &c1), QAT_OK);
    for (int i = 0; i < 37; i++) x[i] = (i & 1) ? 1.5e38f : -1.5e38f;
    ck_assert_int_eq(qat_infer_dynamic(m1, c1, x, 1, y), QAT_ENOTFINITE);
    qat_ctx_destroy(c1);
    qat_model_destroy(m1);
    fixture_destroy(g);
  }
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  free(x);
  fixture_destroy(f);
}
END_TEST

START_TEST(chunking_matches_one_batch) {
  qat_fixture *f = fixture_create(dims3, 3, 5);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  enum { R = 17 };
  float *x = random_input(1, R * 37, 0.0f, 1.0f);
  float big[R * 7], small[R * 7];
  qat_ctx *cb, *cs;
  ck_assert_int_eq(qat_ctx_create(m, 64, &cb), QAT_OK);
  ck_assert_int_eq(qat_ctx_create(m, 3, &cs), QAT_OK);
  ck_assert_int_eq(qat_infer_int8(m, cb, x, R, big), QAT_OK);
  ck_assert_int_eq(qat_infer_int8(m, cs, x, R, small), QAT_OK);
  ck_assert_int_eq(memcmp(big, small, sizeof big), 0);
  /* fp32: BLAS may block differently for other row counts: near-equal. */
  ck_assert_int_eq(qat_infer_fp32(m, cb, x, R, big), QAT_OK);
  ck_assert_int_eq(qat_infer_fp32(m, cs, x, R, small), QAT_OK);
  for (int i = 0; i < R * 7; i++)
    ck_assert(fabsf(big[i] - small[i]) <= 1e-5f * fmaxf(1.0f, fabsf(big[i])));
  /* dynamic: ranges are measured per chunk, so chunked == chunk by chunk. */
  ck_assert_int_eq(qat_infer_dynamic(m, cs, x, R, small), QAT_OK);
  for (int r = 0; r < R; r += 3) {
    int n = R - r < 3 ? R - r : 3;
    ck_assert_int_eq(qat_infer_dynamic(m, cb, x + r * 37, (size_t)n, big + r * 7), QAT_OK);
  }
  ck_assert_int_eq(memcmp(big, small, sizeof big), 0);
  /* rows == 0 is a no-op, not an error. */
  ck_assert_int_eq(qat_infer_int8(m, cs, x, 0, small), QAT_OK);
  qat_ctx_destroy(cb);
  qat_ctx_destroy(cs);
  qat_model_destroy(m);
  free(x);
  fixture_destroy(f);
}
END_TEST

typedef struct thread_arg {
  const qat_model *m;
  const float *x;
  size_t rows;
  float *y;
  qat_err err;
} thread_arg;

static void *thread_run(void *p) {
  thread_arg *a = p;
  qat_ctx *c;
  a->err = qat_ctx_create(a->m, 4, &c);
  if (a->err) return NULL;
  for (int it = 0; it < 200 && !a->err; it++) {
    a->err = qat_infer_int8(a->m, c, a->x, a->rows, a->y);
    if (!a->err) a->err = qat_infer_fp32(a->m, c, a->x, a->rows, a->y + a->rows * 7);
  }
  qat_ctx_destroy(c);
  return NULL;
}

START_TEST(two_threads_agree) {
  qat_fixture *f = fixture_create(dims3, 3, 6);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  enum { R = 10 };
  float *x = random_input(2, R * 37, 0.0f, 1.0f);
  float want[2 * R * 7], got[2][2 * R * 7];
  thread_arg one = {m, x, R, want, QAT_OK};
  thread_run(&one);
  ck_assert_int_eq(one.err, QAT_OK);
  pthread_t t[2];
  thread_arg a[2];
  for (int i = 0; i < 2; i++) {
    a[i] = (thread_arg){m, x, R, got[i], QAT_OK};
    ck_assert_int_eq(pthread_create(&t[i], NULL, thread_run, &a[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(a[i].err, QAT_OK);
    ck_assert_int_eq(memcmp(got[i], want, sizeof want), 0);
  }
  qat_model_destroy(m);
  free(x);
  fixture_destroy(f);
}
END_TEST

START_TEST(ctx_checks) {
  qat_fixture *f = fixture_create(dims3, 3, 6);
  ck_assert_ptr_nonnull(f);
  qat_model *m, *m2;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  ck_assert_int_eq(qat_model_create(&f->spec, &m2), QAT_OK);
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, 0, &c), QAT_EINVAL);
  ck_assert_int_eq(qat_ctx_create(m, SIZE_MAX / 8, &c), QAT_ERANGE);
  ck_assert_int_eq(qat_ctx_create(m, 2, &c), QAT_OK);
  float x[37] = {0}, y[7];
  ck_assert_int_eq(qat_infer_int8(m2, c, x, 1, y), QAT_EINVAL);
  ck_assert_int_eq(qat_infer_fp32(m2, c, x, 1, y), QAT_EINVAL);
  ck_assert_int_eq(qat_infer_dynamic(m2, c, x, 1, y), QAT_EINVAL);
  ck_assert_int_eq(qat_infer_int8(m, c, NULL, 1, y), QAT_EINVAL);
  ck_assert_int_eq(qat_infer_int8(m, c, x, 1, y), QAT_OK);
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  qat_model_destroy(m2);
  fixture_destroy(f);
}
END_TEST

START_TEST(accessors) {
  qat_fixture *f = fixture_create(dims3, 3, 6);
  ck_assert_ptr_nonnull(f);
  qat_model *m;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  ck_assert_uint_eq(qat_model_in_dim(m), 37);
  ck_assert_uint_eq(qat_model_out_dim(m), 7);
  ck_assert_uint_eq(qat_model_n_layers(m), 3);
  ck_assert_int_eq(qat_model_out_mode(m), QAT_OUT_DEQUANT_ACC);
  ck_assert(qat_model_input_qparams(m).scale == f->spec.input.scale);
  qat_qparams prev = f->spec.input;
  for (uint32_t i = 0; i < 3; i++) {
    qat_layer_info li;
    ck_assert_int_eq(qat_model_layer(m, i, &li), QAT_OK);
    ck_assert_uint_eq(li.in_dim, dims3[i]);
    ck_assert_uint_eq(li.out_dim, dims3[i + 1]);
    ck_assert(memcmp(&li.in, &prev, sizeof prev) == 0);
    ck_assert(memcmp(&li.out, &f->layers[i].out, sizeof prev) == 0);
    ck_assert_int_eq(memcmp(li.wq, f->wq[i], (size_t)li.in_dim * li.out_dim), 0);
    ck_assert_int_eq(memcmp(li.w_fp32, f->w_fp32[i], (size_t)li.in_dim * li.out_dim * 4), 0);
    ck_assert(li.wq != f->wq[i]); /* copied, not borrowed */
    for (uint32_t c = 0; c < li.out_dim; c++) {
      float bq = rintf(li.bias[c] * (1.0f / (float)((double)li.w_scale[c] * (double)li.in.scale)));
      ck_assert_int_eq(li.bias_q[c], (int32_t)bq);
    }
    prev = li.out;
  }
  qat_layer_info li;
  ck_assert_int_eq(qat_model_layer(m, 3, &li), QAT_EINVAL);
  ck_assert_uint_eq(qat_model_n_labels(m), 7);
  ck_assert_str_eq(qat_model_label(m, 6), "c6");
  ck_assert_ptr_null(qat_model_label(m, 7));
  ck_assert_str_eq(qat_model_meta(m, "trained_with"), "fixture");
  ck_assert_ptr_null(qat_model_meta(m, "nope"));
  ck_assert_uint_eq(qat_model_n_meta(m), 2);
  const char *k0, *k1, *v;
  qat_model_meta_at(m, 0, &k0, &v);
  qat_model_meta_at(m, 1, &k1, &v);
  ck_assert_int_lt(strcmp(k0, k1), 0); /* sorted */
  qat_model_destroy(m);
  /* NULL bias / fp32 arrays: zeros and dequantized weights. */
  f->layers[0].bias = NULL;
  f->layers[0].w_fp32 = NULL;
  f->layers[0].b_fp32 = NULL;
  ck_assert_int_eq(qat_model_create(&f->spec, &m), QAT_OK);
  ck_assert_int_eq(qat_model_layer(m, 0, &li), QAT_OK);
  for (uint32_t c = 0; c < li.out_dim; c++) {
    ck_assert(li.bias[c] == 0.0f && li.b_fp32[c] == 0.0f && li.bias_q[c] == 0);
    for (uint32_t k = 0; k < li.in_dim; k++)
      ck_assert(li.w_fp32[c * li.in_dim + k] ==
                (float)li.wq[c * li.in_dim + k] * li.w_scale[c]);
  }
  qat_model_destroy(m);
  fixture_destroy(f);
}
END_TEST

/* Each refusal: break one thing in a valid spec, expect its code. */
START_TEST(create_refusals) {
  qat_fixture *f = fixture_create(dims3, 3, 12);
  ck_assert_ptr_nonnull(f);
  qat_model *m = NULL;
  qat_model_spec s;
  qat_layer_spec L[3];
#define RESET() (s = f->spec, memcpy(L, f->layers, sizeof L), s.layers = L)
#define EXPECT(code)                                                        \
  do {                                                                      \
    ck_assert_msg(qat_model_create(&s, &m) == (code), "expected %s: %s",    \
                  qat_err_name(code), qat_errmsg());                        \
    RESET();                                                                \
  } while (0)
  RESET();
  ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  qat_model_destroy(m);
  ck_assert_int_eq(qat_model_create(NULL, &m), QAT_EINVAL);
  s.n_layers = 0; EXPECT(QAT_EINVAL);
  s.n_layers = QAT_MAX_LAYERS + 1; EXPECT(QAT_EINVAL);
  s.out_mode = (qat_out_mode)7; EXPECT(QAT_EINVAL);
  L[1].in_dim = 30; EXPECT(QAT_ECHAIN);
  L[0].in_dim = 0; EXPECT(QAT_EDIM);
  L[2].out_dim = QAT_MAX_DIM + 1; EXPECT(QAT_EDIM);
  L[1].act = (qat_act)3; EXPECT(QAT_EINVAL);
  L[1].w_bits = 9; EXPECT(QAT_EINVAL);
  L[1].wq = NULL; EXPECT(QAT_EINVAL);
  s.input.scale = NAN; EXPECT(QAT_ESCALE);
  s.input.scale = 0.0f; EXPECT(QAT_ESCALE);
  s.input.scale = -1.0f; EXPECT(QAT_ESCALE);
  L[0].out.scale = INFINITY; EXPECT(QAT_ESCALE);
  s.input.zero_point = 256; EXPECT(QAT_EZEROPOINT);
  L[1].out.zero_point = -1; EXPECT(QAT_EZEROPOINT);
  L[1].out.qmin = -128; EXPECT(QAT_EZEROPOINT);
  L[1].out.qmax = 256; EXPECT(QAT_EZEROPOINT);
  s.n_labels = 6; EXPECT(QAT_ELABELS);
  s.n_labels = 8; EXPECT(QAT_ELABELS);
  /* Float arrays the spec points at: a private copy to corrupt. */
  float ws[29], b[29], wf[29 * 37], bf[29];
  memcpy(ws, f->w_scale[0], sizeof ws);
  memcpy(b, f->bias[0], sizeof b);
  memcpy(wf, f->w_fp32[0], sizeof wf);
  memcpy(bf, f->b_fp32[0], sizeof bf);
  ws[3] = NAN; L[0].w_scale = ws; EXPECT(QAT_ESCALE);
  ws[3] = 0.0f; L[0].w_scale = ws; EXPECT(QAT_ESCALE);
  ws[3] = f->w_scale[0][3];
  b[2] = INFINITY; L[0].bias = b; EXPECT(QAT_ENOTFINITE);
  b[2] = 1e30f; L[0].bias = b; EXPECT(QAT_ERANGE); /* |bq| > 2^30 */
  b[2] = f->bias[0][2];
  wf[100] = NAN; L[0].w_fp32 = wf; EXPECT(QAT_ENOTFINITE);
  bf[0] = -INFINITY; L[0].b_fp32 = bf; EXPECT(QAT_ENOTFINITE);
  /* |wq| within w_bits; -128 only at 8 bits. */
  int8_t wq[29 * 37];
  memcpy(wq, f->wq[0], sizeof wq);
  L[0].w_bits = 4; EXPECT(QAT_ERANGE);
  for (size_t i = 0; i < sizeof wq; i++) wq[i] = (int8_t)(wq[i] / 32); /* |w| <= 3 */
  L[0].wq = wq; L[0].w_bits = 3; ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  qat_model_destroy(m); RESET();
  wq[5] = -4; L[0].wq = wq; L[0].w_bits = 3; EXPECT(QAT_ERANGE);
  wq[5] = -128; L[0].wq = wq; L[0].w_bits = 8;
  ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  qat_model_destroy(m); RESET();
  wq[5] = -128; L[0].wq = wq; L[0].w_bits = 7; EXPECT(QAT_ERANGE);
  /* Labels and metadata. */
  const char *lab[7] = {"a", "b", "c", "d", "e", "f", NULL};
  s.labels = lab; EXPECT(QAT_EINVAL);
  lab[6] = "\xff"; s.labels = lab; EXPECT(QAT_EMETA);
  const char *mk[2] = {"format", "x"}, *mv[2] = {"a", "b"};
  s.meta_keys = mk; s.meta_values = mv; EXPECT(QAT_EMETA); /* reserved key */
  mk[0] = "x"; s.meta_keys = mk; s.meta_values = mv; EXPECT(QAT_EMETA); /* duplicate */
  mk[0] = ""; s.meta_keys = mk; s.meta_values = mv; EXPECT(QAT_EMETA);
  mk[0] = "y"; mv[1] = NULL; s.meta_keys = mk; s.meta_values = mv; EXPECT(QAT_EINVAL);
  /* The last layer's out qparams may be left zeroed for dequant_acc. */
  L[2].out = (qat_qparams){0, 0, 0, 0};
  ck_assert_int_eq(qat_model_create(&s, &m), QAT_OK);
  qat_model_destroy(m); RESET();
  L[2].out = (qat_qparams){0, 0, 0, 0}; s.out_mode = QAT_OUT_REQUANT; EXPECT(QAT_ESCALE);
#undef EXPECT
#undef RESET
  fixture_destroy(f);
}
END_TEST

/* Fail the Nth allocation for N = 1, 2, ... until the call succeeds; every
 * failure must be a clean QAT_ENOMEM (ASan/LSan catch leaks and crashes). */
static long alloc_countdown = -1;
static void *failing_malloc(size_t n) {
  if (alloc_countdown == 0) return NULL;
  if (alloc_countdown > 0) alloc_countdown--;
  return malloc(n);
}

START_TEST(create_alloc_failures) {
  qat_fixture *f = fixture_create(dims3, 3, 12);
  ck_assert_ptr_nonnull(f);
  int failures = 0;
  for (long n = 0;; n++) {
    alloc_countdown = n;
    qat_set_allocator(failing_malloc, free);
    qat_model *m = NULL;
    qat_ctx *c = NULL;
    qat_err e = qat_model_create(&f->spec, &m);
    if (e == QAT_OK) e = qat_ctx_create(m, 4, &c);
    qat_set_allocator(NULL, NULL);
    if (e == QAT_OK) {
      float x[37] = {0}, y[7];
      ck_assert_int_eq(qat_infer_int8(m, c, x, 1, y), QAT_OK);
      qat_ctx_destroy(c);
      qat_model_destroy(m);
      break;
    }
    ck_assert_msg(e == QAT_ENOMEM, "allocation %ld: %s", n, qat_err_name(e));
    qat_model_destroy(m);
    failures++;
  }
  ck_assert_int_gt(failures, 10);
  fixture_destroy(f);
}
END_TEST

Suite *suite_model(void) {
  Suite *s = suite_create("model");
  TCase *t = tcase_create("model");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, int8_equals_reference);
  tcase_add_test(t, int8_close_to_float);
  tcase_add_test(t, fp32_equals_naive);
  tcase_add_test(t, dynamic_sane);
  tcase_add_test(t, chunking_matches_one_batch);
  tcase_add_test(t, two_threads_agree);
  tcase_add_test(t, ctx_checks);
  tcase_add_test(t, accessors);
  tcase_add_test(t, create_refusals);
  tcase_add_test(t, create_alloc_failures);
  suite_add_tcase(s, t);
  return s;
}
