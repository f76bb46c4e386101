/* test_train.c - the trainer: gradients against finite differences, the
 * STE mask, observers, fake quantization equal to core's, determinism, a
 * short training run, and conversion to the int8 model. White-box: it reads
 * the net through core/train_internal.h. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qat.h"
#include "qat_train.h"
#include "train_internal.h"

Suite *suite_train(void);

/* A tiny deterministic generator for test data. */
static uint64_t tstate;
static float urand(void) {
  tstate = tstate * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((tstate >> 40) & 0xffffff) / 16777216.0f;
}

static double mean_loss(qat_net *n, size_t rows, const uint32_t *lab) {
  ck_assert_int_eq(qat__net_fwd(n, rows, false, false), QAT_OK);
  const uint32_t K = n->dims[n->n_layers];
  double s = 0.0;
  for (size_t r = 0; r < rows; r++) {
    const float *z = n->act[n->n_layers] + r * K;
    double mx = z[0], e = 0.0;
    for (uint32_t c = 1; c < K; c++) mx = fmax(mx, z[c]);
    for (uint32_t c = 0; c < K; c++) e += exp(z[c] - mx);
    s += log(e) + mx - z[lab[r]];
  }
  return s / rows;
}

/* Central differences on every weight and bias of every layer. The net is
 * float32, so h is large-ish and the tolerance is relative + absolute. */
static void check_gradients(const uint32_t *dims, uint32_t nl, uint64_t seed) {
  qat_net *n;
  ck_assert_int_eq(qat_net_create(dims, nl, seed, &n), QAT_OK);
  const size_t rows = 4;
  ck_assert_int_eq(qat__net_reserve(n, rows), QAT_OK);
  tstate = seed;
  uint32_t lab[4];
  for (size_t i = 0; i < rows * dims[0]; i++) n->act[0][i] = urand() * 2.0f - 0.5f;
  for (uint32_t l = 0; l < nl; l++)
    for (uint32_t c = 0; c < dims[l + 1]; c++) n->L[l].b[c] = urand() * 0.2f - 0.1f;
  for (size_t r = 0; r < rows; r++) lab[r] = (uint32_t)(r * 7 % dims[nl]);
  float *x0 = malloc(rows * dims[0] * sizeof(float));
  memcpy(x0, n->act[0], rows * dims[0] * sizeof(float));
  ck_assert_int_eq(qat__net_fwd(n, rows, false, false), QAT_OK);
  double ls;
  size_t ok;
  qat__net_bwd(n, rows, false, lab, &ls, &ok);
  ck_assert(fabs(ls / rows - mean_loss(n, rows, lab)) < 1e-5);
  const float h = 1e-2f;
  int checked = 0;
  for (uint32_t l = 0; l < nl; l++) {
    qat_tlayer *t = &n->L[l];
    size_t nw = (size_t)t->in * t->out;
    for (size_t i = 0; i < nw + t->out; i++) {
      float *p = i < nw ? &t->w[i] : &t->b[i - nw];
      float g = i < nw ? t->gw[i] : t->gb[i - nw];
      float keep = *p;
      memcpy(n->act[0], x0, rows * dims[0] * sizeof(float));
      *p = keep + h;
      double lp = mean_loss(n, rows, lab);
      memcpy(n->act[0], x0, rows * dims[0] * sizeof(float));
      *p = keep - h;
      double lm = mean_loss(n, rows, lab);
      *p = keep;
      double num = (lp - lm) / (2.0 * h);
      ck_assert_msg(fabs(num - g) <= 2e-3 + 2e-2 * fabs(num),
                    "layer %u param %zu: analytic %g numeric %g", l, i, g, num);
      checked++;
    }
  }
  ck_assert_int_gt(checked, 0);
  free(x0);
  qat_net_destroy(n);
}

START_TEST(gradient_softmax_ce_linear) {
  /* One linear layer: softmax cross-entropy and the linear layer alone. */
  const uint32_t dims[] = {6, 5};
  check_gradients(dims, 1, 3);
}
END_TEST

START_TEST(gradient_relu_stack) {
  /* Linear + ReLU + linear + ReLU + linear. */
  const uint32_t dims[] = {7, 9, 6, 4};
  check_gradients(dims, 3, 11);
  check_gradients(dims, 3, 12);
}
END_TEST

/* Fills the input of a net and sets its observers by one observed fq pass. */
static qat_net *qat_ready_net(const uint32_t *dims, uint32_t nl, size_t rows, uint64_t seed) {
  qat_net *n;
  ck_assert_int_eq(qat_net_create(dims, nl, seed, &n), QAT_OK);
  ck_assert_int_eq(qat__net_reserve(n, rows), QAT_OK);
  tstate = seed;
  for (size_t i = 0; i < rows * dims[0]; i++) n->act[0][i] = urand();
  for (uint32_t l = 0; l < nl; l++)
    for (uint32_t c = 0; c < dims[l + 1]; c++) n->L[l].b[c] = urand() * 0.2f - 0.05f;
  n->quantized = true;
  ck_assert_int_eq(qat__net_quant_weights(n), QAT_OK);
  ck_assert_int_eq(qat__net_fwd(n, rows, true, true), QAT_OK);
  return n;
}

START_TEST(fake_quant_is_cores) {
  const uint32_t dims[] = {20, 16, 8, 5};
  for (int bits = 4; bits <= 8; bits += 4) {
    qat_net *n;
    ck_assert_int_eq(qat_net_create(dims, 3, 5, &n), QAT_OK);
    n->w_bits = n->a_bits = bits;
    ck_assert_int_eq(qat__net_reserve(n, 8), QAT_OK);
    tstate = 9;
    for (size_t i = 0; i < 8 * 20; i++) n->act[0][i] = urand();
    n->quantized = true;
    ck_assert_int_eq(qat__net_quant_weights(n), QAT_OK);
    ck_assert_int_eq(qat__net_fwd(n, 8, true, true), QAT_OK);
    for (uint32_t l = 0; l < 3; l++) {
      qat_tlayer *t = &n->L[l];
      /* weights: per row, symmetric, scale = max |w| / qmax, core's q/dq */
      for (uint32_t c = 0; c < t->out; c++) {
        float amax = 0;
        for (uint32_t k = 0; k < t->in; k++) amax = fmaxf(amax, fabsf(t->w[c * t->in + k]));
        qat_qparams p;
        ck_assert_int_eq(qat_qparams_from_range(-amax, amax, bits, true, &p), QAT_OK);
        ck_assert(p.scale == t->w_scale[c]);
        ck_assert_int_eq(p.qmax, (1 << (bits - 1)) - 1);
        for (uint32_t k = 0; k < t->in; k++) {
          float w = t->w[c * t->in + k];
          ck_assert(t->wq[c * t->in + k] == qat_dequantize(qat_quantize(w, &p), &p));
        }
      }
      /* activations: the observer's uint8 affine qparams, core's q/dq */
      qat_qparams a;
      ck_assert_int_eq(qat_observer_qparams(&t->obs, bits, false, &a), QAT_OK);
      ck_assert_int_eq(a.qmax, (1 << bits) - 1);
      for (size_t i = 0; i < 8 * t->in; i++)
        ck_assert(n->actq[l][i] == qat_dequantize(qat_quantize(n->act[l][i], &a), &a));
      /* bias: the integer bias core derives, times its scale */
      for (uint32_t c = 0; c < t->out; c++) {
        float s = (float)((double)t->w_scale[c] * (double)a.scale);
        ck_assert(t->bq[c] == rintf(t->b[c] * (1.0f / s)) * s);
      }
    }
    qat_net_destroy(n);
  }
}
END_TEST

START_TEST(ste_mask_zeroes_gradient) {
  const uint32_t dims[] = {12, 10, 4};
  qat_net *n = qat_ready_net(dims, 2, 1, 21);
  /* Clip the hidden layer's input range: its max at the median activation. */
  float *a1 = n->act[1];
  float sorted[10];
  memcpy(sorted, a1, sizeof sorted);
  for (int i = 0; i < 10; i++)
    for (int j = i + 1; j < 10; j++)
      if (sorted[j] < sorted[i]) {
        float t = sorted[i];
        sorted[i] = sorted[j];
        sorted[j] = t;
      }
  n->L[1].obs.min = 0.0f;
  n->L[1].obs.max = sorted[7] * 0.99f;
  ck_assert_int_eq(qat__net_fwd(n, 1, true, false), QAT_OK);
  uint32_t lab = 2;
  double ls;
  size_t ok;
  qat__net_bwd(n, 1, true, &lab, &ls, &ok);
  /* Reference: dlogits = softmax - onehot; dA1 = dlogits . Wq1; the STE
   * passes dA1 where core's mask is 1, the ReLU where a1 > 0. */
  qat_qparams p;
  ck_assert_int_eq(qat_observer_qparams(&n->L[1].obs, 8, false, &p), QAT_OK);
  float y[10];
  uint8_t mask[10];
  qat_fake_quant(a1, 10, &p, y, mask);
  const float *z = n->act[2];
  double mx = fmax(fmax(z[0], z[1]), fmax(z[2], z[3])), s = 0, sm[4];
  for (int c = 0; c < 4; c++) s += (sm[c] = exp(z[c] - mx));
  int clipped = 0;
  for (int k = 0; k < 10; k++) {
    double da = 0;
    for (int c = 0; c < 4; c++) da += (sm[c] / s - (c == 2)) * n->L[1].wq[c * 10 + k];
    double want = (a1[k] > 0 && mask[k]) ? da : 0.0;
    ck_assert_msg(fabs(n->L[0].gb[k] - want) < 1e-5, "unit %d: %g vs %g", k, n->L[0].gb[k],
                  want);
    if (a1[k] > 0 && !mask[k]) {
      clipped++;
      ck_assert(fabs(da) > 1e-6);      /* a real gradient was there ... */
      ck_assert(n->L[0].gb[k] == 0.0f); /* ... and the STE stopped it */
      for (uint32_t i = 0; i < 12; i++) ck_assert(n->L[0].gw[k * 12 + i] == 0.0f);
    }
  }
  ck_assert_int_ge(clipped, 2);
  qat_net_destroy(n);
}
END_TEST

START_TEST(observers_follow_moving_average) {
  const uint32_t dims[] = {3, 2};
  qat_net *n;
  ck_assert_int_eq(qat_net_create(dims, 1, 1, &n), QAT_OK);
  ck_assert_int_eq(qat__net_reserve(n, 2), QAT_OK);
  n->quantized = true;
  ck_assert_int_eq(qat__net_quant_weights(n), QAT_OK);
  float b1[6] = {0.1f, 0.5f, 0.2f, 0.3f, 0.9f, 0.4f};
  float b2[6] = {-1.0f, 0.0f, 3.0f, 0.0f, 0.0f, 0.0f};
  memcpy(n->act[0], b1, sizeof b1);
  ck_assert_int_eq(qat__net_fwd(n, 2, true, true), QAT_OK);
  ck_assert(n->L[0].obs.min == 0.1f && n->L[0].obs.max == 0.9f); /* first batch sets */
  memcpy(n->act[0], b2, sizeof b2);
  ck_assert_int_eq(qat__net_fwd(n, 2, true, true), QAT_OK);
  ck_assert(n->L[0].obs.min == 0.1f + 0.01f * (-1.0f - 0.1f));
  ck_assert(n->L[0].obs.max == 0.9f + 0.01f * (3.0f - 0.9f));
  /* not observing leaves them alone */
  ck_assert_int_eq(qat__net_fwd(n, 2, true, false), QAT_OK);
  ck_assert(n->L[0].obs.max == 0.9f + 0.01f * (3.0f - 0.9f));
  qat_net_destroy(n);
}
END_TEST

/* Four Gaussian-ish clusters in 16 dimensions; class c centred on +-1 in a
 * pattern of its own. */
static qat_dataset *blobs(size_t n, uint64_t seed) {
  qat_dataset *d = calloc(1, sizeof *d);
  d->n = n;
  d->dim = 16;
  d->n_classes = 4;
  d->x = malloc(n * 16 * sizeof(float));
  d->y = malloc(n * sizeof(uint32_t));
  tstate = seed;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = (uint32_t)(i % 4);
    d->y[i] = c;
    for (uint32_t k = 0; k < 16; k++) {
      float centre = ((k * 5 + c * 3) % 4 < 2) ? 0.7f : 0.3f;
      d->x[i * 16 + k] = centre + (urand() + urand() + urand() - 1.5f) * 0.25f;
    }
  }
  return d;
}

static void free_blobs(qat_dataset *d) {
  free(d->x);
  free(d->y);
  free(d);
}

typedef struct obs_log {
  qat_net *n;
  float mx[8][4];
} obs_log;

static void log_obs(const qat_epoch_stats *s, void *arg) {
  obs_log *lg = arg;
  for (uint32_t l = 0; l < lg->n->n_layers; l++) lg->mx[s->epoch][l] = lg->n->L[l].obs.max;
}

START_TEST(short_training_reaches_accuracy) {
  qat_dataset *tr = blobs(2000, 1), *te = blobs(1000, 2);
  const uint32_t dims[] = {16, 32, 16, 4};
  for (int qat = 0; qat < 2; qat++) {
    qat_net *n;
    ck_assert_int_eq(qat_net_create(dims, 3, 7, &n), QAT_OK);
    qat_train_opts o;
    qat_train_opts_default(&o);
    o.epochs = 4;
    o.qat_epochs = qat ? 2 : 0;
    o.w_bits = o.a_bits = 4;
    o.batch = 32;
    o.lr = 3e-3f;
    obs_log lg = {.n = n};
    o.on_epoch = log_obs;
    o.arg = &lg;
    ck_assert_int_eq(qat_net_train(n, tr, NULL, &o), QAT_OK);
    double acc, loss;
    ck_assert_int_eq(qat_net_evaluate(n, te, false, &acc, &loss), QAT_OK);
    ck_assert_msg(acc >= 0.97, "fp32 accuracy %.4f", acc);
    if (qat) {
      ck_assert(qat_net_quantized(n));
      ck_assert_int_eq(qat_net_evaluate(n, te, true, &acc, &loss), QAT_OK);
      ck_assert_msg(acc >= 0.95, "fake-quant accuracy %.4f", acc);
      /* Observers moved during epoch 3 and were frozen in epoch 4. */
      for (uint32_t l = 0; l < 3; l++) ck_assert(lg.mx[4][l] == lg.mx[3][l]);
      ck_assert(lg.mx[3][1] > 0.0f && lg.mx[3][2] > 0.0f);
    } else {
      ck_assert(!qat_net_quantized(n));
    }
    qat_net_destroy(n);
  }
  free_blobs(tr);
  free_blobs(te);
}
END_TEST

START_TEST(training_is_deterministic) {
  qat_dataset *tr = blobs(500, 3);
  const uint32_t dims[] = {16, 8, 4};
  qat_net *a, *b;
  qat_train_opts o;
  qat_train_opts_default(&o);
  o.epochs = 2;
  o.qat_epochs = 1;
  ck_assert_int_eq(qat_net_create(dims, 2, 42, &a), QAT_OK);
  ck_assert_int_eq(qat_net_create(dims, 2, 42, &b), QAT_OK);
  ck_assert_int_eq(qat_net_train(a, tr, NULL, &o), QAT_OK);
  ck_assert_int_eq(qat_net_train(b, tr, NULL, &o), QAT_OK);
  for (uint32_t l = 0; l < 2; l++) {
    ck_assert_mem_eq(a->L[l].w, b->L[l].w, a->L[l].in * a->L[l].out * sizeof(float));
    ck_assert(a->L[l].obs.max == b->L[l].obs.max);
  }
  /* A different seed trains differently. */
  qat_net_destroy(b);
  ck_assert_int_eq(qat_net_create(dims, 2, 43, &b), QAT_OK);
  ck_assert_int_eq(qat_net_train(b, tr, NULL, &o), QAT_OK);
  ck_assert(memcmp(a->L[0].w, b->L[0].w, 16 * 8 * sizeof(float)) != 0);
  qat_net_destroy(a);
  qat_net_destroy(b);
  free_blobs(tr);
}
END_TEST

START_TEST(train_refuses_bad_input) {
  qat_dataset *tr = blobs(100, 3);
  const uint32_t dims[] = {15, 4};
  const uint32_t bad_dims[] = {15, 0};
  qat_net *n;
  ck_assert_int_eq(qat_net_create(bad_dims, 1, 1, &n), QAT_EINVAL);
  ck_assert_int_eq(qat_net_create(dims, 1, 1, &n), QAT_OK);
  qat_train_opts o;
  qat_train_opts_default(&o);
  ck_assert_int_eq(qat_net_train(n, tr, NULL, &o), QAT_EDIM);
  ck_assert_int_eq(qat_net_forward(n, tr->x, 1, true, tr->x), QAT_EINVAL); /* no ranges */
  ck_assert_int_eq(qat_net_calibrate(n, tr, 10, 8, 9), QAT_EINVAL);
  qat_net_destroy(n);
  free_blobs(tr);
}
END_TEST


/* Conversion: the int8 model must compute what the fake-quant forward
 * computed. It cannot be bit-exact: the fake-quant forward sums float
 * products s_in*q_x * s_w*q_w in sgemm order and then quantizes
 * z * (1/s_out), while the int8 layer sums integers exactly and multiplies
 * by M = (s_w*s_in)*(1/s_out) - two float roundings apart, so a value within
 * about 1e-6 relative of a rounding tie can land one code apart. The check:
 * argmax identical on every row, and the logits equal to within 1e-4 of
 * their range on at least 99% of rows (all hidden codes agreed; measured:
 * 999/1000 at 8 bits, 1000/1000 at 4), and within 1% of it on all rows (a
 * hidden code one step off: measured 0.09%). */
START_TEST(conversion_matches_fake_quant) {
  qat_dataset *tr = blobs(2000, 5), *te = blobs(1000, 6);
  const uint32_t dims[] = {16, 32, 24, 4};
  for (int bits = 8; bits >= 4; bits -= 4) {
    qat_net *n;
    ck_assert_int_eq(qat_net_create(dims, 3, 9, &n), QAT_OK);
    qat_train_opts o;
    qat_train_opts_default(&o);
    o.epochs = 3;
    o.qat_epochs = 2;
    o.w_bits = o.a_bits = bits;
    o.lr = 3e-3f;
    ck_assert_int_eq(qat_net_train(n, tr, NULL, &o), QAT_OK);
    const char *labels[4] = {"a", "b", "c", "d"};
    const char *k[1] = {"mode"}, *v[1] = {"test"};
    qat_model *m;
    ck_assert_int_eq(qat_net_to_model(n, 4, labels, 1, k, v, &m), QAT_OK);
    ck_assert_str_eq(qat_model_meta(m, "mode"), "test");
    ck_assert_str_eq(qat_model_label(m, 3), "d");
    /* (the fake-quant forward refreshes wq and the row scales) */
    float *yq = malloc(1000 * 4 * sizeof(float)), *yi = malloc(1000 * 4 * sizeof(float));
    ck_assert_int_eq(qat_net_forward(n, te->x, 1000, true, yq), QAT_OK);
    /* the spec carries the forward's own parameters */
    for (uint32_t l = 0; l < 3; l++) {
      qat_layer_info li;
      ck_assert_int_eq(qat_model_layer(m, l, &li), QAT_OK);
      qat_qparams in;
      ck_assert_int_eq(qat_observer_qparams(&n->L[l].obs, bits, false, &in), QAT_OK);
      ck_assert(li.in.scale == in.scale);
      ck_assert_int_eq(li.in.zero_point, in.zero_point);
      ck_assert_int_eq(li.w_bits, bits);
      for (uint32_t c = 0; c < li.out_dim; c++) {
        ck_assert(li.w_scale[c] == n->L[l].w_scale[c]);
        for (uint32_t i = 0; i < li.in_dim; i++)
          ck_assert(li.wq[c * li.in_dim + i] * li.w_scale[c] ==
                    n->L[l].wq[c * li.in_dim + i]);
        ck_assert(li.w_fp32[c * li.in_dim] == n->L[l].w[c * li.in_dim]);
      }
    }
    qat_ctx *c;
    ck_assert_int_eq(qat_ctx_create(m, 64, &c), QAT_OK);
    ck_assert_int_eq(qat_infer_int8(m, c, te->x, 1000, yi), QAT_OK);
    float range = 0;
    for (size_t i = 0; i < 4000; i++) range = fmaxf(range, fabsf(yq[i]));
    size_t close = 0, agree = 0;
    for (size_t r = 0; r < 1000; r++) {
      float d = 0;
      uint32_t aq = 0, ai = 0;
      for (uint32_t j = 0; j < 4; j++) {
        d = fmaxf(d, fabsf(yq[r * 4 + j] - yi[r * 4 + j]));
        if (yq[r * 4 + j] > yq[r * 4 + aq]) aq = j;
        if (yi[r * 4 + j] > yi[r * 4 + ai]) ai = j;
      }
      ck_assert_msg(d <= 0.01f * range, "row %zu: logits %g apart (range %g)", r, d, range);
      close += d <= 1e-4f * range;
      agree += aq == ai;
    }
    ck_assert_msg(close >= 990, "w%d: %zu/1000 rows within 1e-4", bits, close);
    ck_assert_uint_eq(agree, 1000);
    free(yq);
    free(yi);
    qat_ctx_destroy(c);
    qat_model_destroy(m);
    qat_net_destroy(n);
  }
  free_blobs(tr);
  free_blobs(te);
}
END_TEST

/* PTQ: plain min/max observers over exactly the calibration rows, and a
 * model made from them; a net initialised from that model has its fp32
 * weights back bit for bit. */
START_TEST(calibration_and_init_from_model) {
  qat_dataset *tr = blobs(300, 8);
  const uint32_t dims[] = {16, 12, 4};
  qat_net *n;
  ck_assert_int_eq(qat_net_create(dims, 2, 4, &n), QAT_OK);
  ck_assert_int_eq(qat_net_calibrate(n, tr, 100, 6, 7), QAT_OK);
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < 100 * 16; i++) {
    lo = fminf(lo, tr->x[i]);
    hi = fmaxf(hi, tr->x[i]);
  }
  ck_assert(n->L[0].obs.min == lo && n->L[0].obs.max == hi);
  ck_assert(n->L[0].obs.averaging_constant == 0.0f);
  /* the hidden observer saw the fp32 ReLU outputs of those rows */
  ck_assert_int_eq(qat_net_forward(n, tr->x, 100, false, NULL), QAT_EINVAL);
  float *lg = malloc(100 * 4 * sizeof(float));
  ck_assert_int_eq(qat_net_forward(n, tr->x, 100, false, lg), QAT_OK);
  float hmax = 0;
  for (size_t i = 0; i < 100 * 12; i++) hmax = fmaxf(hmax, n->act[1][i]);
  ck_assert(n->L[1].obs.max == hmax);
  qat_model *m;
  ck_assert_int_eq(qat_net_to_model(n, 0, NULL, 0, NULL, NULL, &m), QAT_OK);
  qat_layer_info li;
  ck_assert_int_eq(qat_model_layer(m, 0, &li), QAT_OK);
  ck_assert_int_eq(li.w_bits, 6);
  ck_assert_int_eq(li.out.qmax, 127); /* 7-bit activations */
  for (size_t i = 0; i < 16 * 12; i++) ck_assert(li.wq[i] >= -31 && li.wq[i] <= 31);
  qat_net *b;
  ck_assert_int_eq(qat_net_from_model(m, &b), QAT_OK);
  for (uint32_t l = 0; l < 2; l++) {
    ck_assert_mem_eq(b->L[l].w, n->L[l].w, n->L[l].in * n->L[l].out * sizeof(float));
    ck_assert_mem_eq(b->L[l].b, n->L[l].b, n->L[l].out * sizeof(float));
  }
  ck_assert(!qat_net_quantized(b));
  free(lg);
  qat_net_destroy(b);
  qat_model_destroy(m);
  qat_net_destroy(n);
  free_blobs(tr);
}
END_TEST

/* The shipped model, through the int8 path, on Fashion-MNIST's 10,000 test
 * images: at least 0.900, and exactly the accuracy its metadata records
 * (the integer kernels are exact, so any machine gets the same count). */
START_TEST(shipped_model_accuracy) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  qat_dataset *te = NULL;
  qat_err e = qat_dataset_load_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                   "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
                                   10, &te);
  if (e == QAT_EIO) {
    fprintf(stderr, "note: %s absent; shipped-model accuracy not checked\n", dir);
    return;
  }
  ck_assert_int_eq(e, QAT_OK);
  qat_model *m;
  ck_assert_msg(qat_model_load("models/fashion-mnist.safetensors", &m) == QAT_OK, "%s",
                qat_errmsg());
  ck_assert_uint_eq(qat_model_n_labels(m), 10);
  ck_assert_str_eq(qat_model_label(m, 9), "Ankle boot");
  qat_ctx *c;
  ck_assert_int_eq(qat_ctx_create(m, 500, &c), QAT_OK);
  float *y = malloc(500 * 10 * sizeof(float));
  size_t ok = 0;
  for (size_t lo = 0; lo < te->n; lo += 500) {
    ck_assert_int_eq(qat_infer_int8(m, c, te->x + lo * 784, 500, y), QAT_OK);
    for (size_t r = 0; r < 500; r++) {
      uint32_t a = 0;
      for (uint32_t k = 1; k < 10; k++)
        if (y[r * 10 + k] > y[r * 10 + a]) a = k;
      ok += a == te->y[lo + r];
    }
  }
  double acc = (double)ok / te->n;
  ck_assert_msg(acc >= 0.900, "int8 accuracy %.4f", acc);
  const char *meta = qat_model_meta(m, "accuracy_int8");
  ck_assert_ptr_nonnull(meta);
  ck_assert_msg(fabs(acc - strtod(meta, NULL)) < 5e-5, "measured %.4f, recorded %s", acc, meta);
  free(y);
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  qat_dataset_destroy(te);
}
END_TEST

Suite *suite_train(void) {
  Suite *s = suite_create("train");
  TCase *t = tcase_create("train");
  tcase_set_timeout(t, 30);
  tcase_add_test(t, gradient_softmax_ce_linear);
  tcase_add_test(t, gradient_relu_stack);
  tcase_add_test(t, fake_quant_is_cores);
  tcase_add_test(t, ste_mask_zeroes_gradient);
  tcase_add_test(t, observers_follow_moving_average);
  tcase_add_test(t, short_training_reaches_accuracy);
  tcase_add_test(t, training_is_deterministic);
  tcase_add_test(t, train_refuses_bad_input);
  tcase_add_test(t, conversion_matches_fake_quant);
  tcase_add_test(t, calibration_and_init_from_model);
  tcase_add_test(t, shipped_model_accuracy);
  suite_add_tcase(s, t);
  return s;
}
