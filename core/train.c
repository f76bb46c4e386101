/* train.c - the MLP trainer: forward and backward through OpenBLAS, softmax
 * cross-entropy, Adam(W), learning-rate schedules, the epoch loop.
 *
 * Quantization-aware training lives in the same forward/backward: with fq
 * set, every layer's input goes through core's qat_fake_quant (with an
 * observer-derived uint8 range) and every layer uses fake-quantized weights
 * (train_quant.c); the backward pass multiplies by the STE masks. The fp32
 * weights stay the shadow copy Adam updates.
 *
 * Determinism: one PRNG (xoshiro256**) seeded from the caller, OpenBLAS
 * forced to one thread, no other source of ordering. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "qat_train.h"
#include "train_internal.h"


/* ---- PRNG -------------------------------------------------------------- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
  uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return res;
}

static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Unbiased index in [0, n) by rejection. */
static size_t rng_below(rng *r, size_t n) {
  uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
  do v = rng_next(r);
  while (v >= lim);
  return (size_t)(v % n);
}

static double rng_normal(rng *r) {
  double u = rng_unit(r), v = rng_unit(r);
  if (u < 1e-300) u = 1e-300;
  return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ---- the net ----------------------------------------------------------- */

static void free_scratch(qat_net *n) {
  for (uint32_t l = 0; l <= n->n_layers; l++) {
    qat__free(n->act[l]);
    n->act[l] = NULL;
    if (l < n->n_layers) {
      qat__free(n->actq[l]);
      qat__free(n->amask[l]);
      qat__free(n->dmask[l]);
      n->actq[l] = NULL;
      n->amask[l] = NULL;
      n->dmask[l] = NULL;
    }
  }
  qat__free(n->g1);
  qat__free(n->g2);
  qat__free(n->labels);
  n->g1 = n->g2 = NULL;
  n->labels = NULL;
  n->cap_rows = 0;
}

void qat_net_destroy(qat_net *n) {
  if (!n) return;
  free_scratch(n);
  if (n->L) {
    for (uint32_t l = 0; l < n->n_layers; l++) {
      qat_tlayer *t = &n->L[l];
      float *fs[] = {t->w, t->b, t->mw, t->vw, t->mb, t->vb, t->gw, t->gb, t->wq,
                     t->w_scale, t->bq};
      for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) qat__free(fs[i]);
      qat__free(t->wmask);
    }
    qat__free(n->L);
  }
  qat__free(n);
}

uint32_t qat_net_n_layers(const qat_net *n) { return n->n_layers; }
uint32_t qat_net_dim(const qat_net *n, uint32_t i) {
  return i <= n->n_layers ? n->dims[i] : 0;
}

qat_err qat__net_reserve(qat_net *n, size_t rows) {
  if (rows <= n->cap_rows) return QAT_OK;
  free_scratch(n);
  uint32_t maxd = 0;
  for (uint32_t l = 0; l <= n->n_layers; l++)
    if (n->dims[l] > maxd) maxd = n->dims[l];
  bool ok = true;
  for (uint32_t l = 0; l <= n->n_layers; l++) {
    ok &= (n->act[l] = qat__calloc(rows, n->dims[l] * sizeof(float))) != NULL;
    if (l < n->n_layers) {
      ok &= (n->actq[l] = qat__calloc(rows, n->dims[l] * sizeof(float))) != NULL;
      ok &= (n->amask[l] = qat__calloc(rows, n->dims[l])) != NULL;
      ok &= (n->dmask[l] = qat__calloc(rows, n->dims[l])) != NULL;
    }
  }
  ok &= (n->g1 = qat__calloc(rows, maxd * sizeof(float))) != NULL;
  ok &= (n->g2 = qat__calloc(rows, maxd * sizeof(float))) != NULL;
  ok &= (n->labels = qat__calloc(rows, sizeof(uint32_t))) != NULL;
  if (!ok) {
    free_scratch(n);
    return qat__fail(QAT_ENOMEM, "training scratch for %zu rows", rows);
  }
  n->cap_rows = rows;
  return QAT_OK;
}

qat_err qat__net_alloc(const uint32_t *dims, uint32_t n_layers, qat_net **out) {
  if (!dims || !out || n_layers < 1 || n_layers > QAT_MAX_LAYERS)
    return qat__fail(QAT_EINVAL, "net of %u layers (1..%d)", n_layers, QAT_MAX_LAYERS);
  for (uint32_t i = 0; i <= n_layers; i++)
    if (dims[i] < 1 || dims[i] > QAT_MAX_DIM)
      return qat__fail(QAT_EINVAL, "layer width %u outside 1..%d", dims[i], QAT_MAX_DIM);
  qat_net *n = qat__calloc(1, sizeof *n);
  if (!n) return qat__fail(QAT_ENOMEM, "net");
  n->n_layers = n_layers;
  memcpy(n->dims, dims, (n_layers + 1) * sizeof *dims);
  n->w_bits = n->a_bits = 8;
  n->L = qat__calloc(n_layers, sizeof *n->L);
  if (!n->L) goto oom;
  for (uint32_t l = 0; l < n_layers; l++) {
    qat_tlayer *t = &n->L[l];
    t->in = dims[l];
    t->out = dims[l + 1];
    size_t nw = (size_t)t->in * t->out;
    float **ws[] = {&t->w, &t->mw, &t->vw, &t->gw, &t->wq};
    float **bs[] = {&t->b, &t->mb, &t->vb, &t->gb, &t->w_scale, &t->bq};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
      if (!(*ws[i] = qat__calloc(nw, sizeof(float)))) goto oom;
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
      if (!(*bs[i] = qat__calloc(t->out, sizeof(float)))) goto oom;
    if (!(t->wmask = qat__calloc(nw, 1))) goto oom;
    qat_observer_init(&t->obs, 0.01f);
  }
  qat_observer_init(&n->out_obs, 0.01f);
  *out = n;
  return QAT_OK;
oom:
  qat_net_destroy(n);
  return qat__fail(QAT_ENOMEM, "net parameters");
}

qat_err qat_net_create(const uint32_t *dims, uint32_t n_layers, uint64_t seed,
                       qat_net **out) {
  qat_net *n;
  qat_err e = qat__net_alloc(dims, n_layers, &n);
  if (e) return e;
  rng r;
  rng_seed(&r, seed);
  for (uint32_t l = 0; l < n_layers; l++) {
    qat_tlayer *t = &n->L[l];
    /* He initialisation for ReLU nets: N(0, 2 / fan_in). */
    double sd = sqrt(2.0 / t->in);
    for (size_t i = 0; i < (size_t)t->in * t->out; i++) t->w[i] = (float)(sd * rng_normal(&r));
  }
  *out = n;
  return QAT_OK;
}

/* ---- forward / backward ------------------------------------------------ */

qat_err qat__net_fwd(qat_net *n, size_t rows, bool fq, bool observe) {
  const int rn = (int)rows;
  for (uint32_t l = 0; l < n->n_layers; l++) {
    qat_tlayer *t = &n->L[l];
    const float *x = n->act[l], *w = t->w, *b = t->b;
    size_t nx = rows * t->in;
    if (observe) qat_observer_update(&t->obs, x, nx);
    if (fq) {
      qat_qparams p;
      qat_err e = qat_observer_qparams(&t->obs, n->a_bits, false, &p);
      if (e) return e;
      qat_fake_quant(x, nx, &p, n->actq[l], n->amask[l]);
      x = n->actq[l];
      w = t->wq;
      /* The bias as the integer layer sees it: bq = rint(b / (s_in s_w)),
       * the same float expression core uses when it derives bq. */
      for (uint32_t c = 0; c < t->out; c++) {
        float s = (float)((double)t->w_scale[c] * (double)p.scale);
        float q = rintf(t->b[c] * (1.0f / s));
        q = fminf(fmaxf(q, -(float)QAT_MAX_BIAS_Q), (float)QAT_MAX_BIAS_Q);
        t->bq[c] = q * s;
      }
      b = t->bq;
    }
    if (n->training && n->drop[l] > 0.0f) {
      /* Inverted dropout: keep with probability 1 - p, scale by 1/(1-p). */
      rng *dr = (rng *)n->drop_rng;
      const uint64_t keep_below = (uint64_t)((1.0 - n->drop[l]) * 18446744073709551616.0);
      const float sc = 1.0f / (1.0f - n->drop[l]);
      float *xd = n->actq[l];
      uint8_t *dm = n->dmask[l];
      for (size_t i = 0; i < nx; i++) {
        dm[i] = rng_next(dr) < keep_below;
        xd[i] = dm[i] ? x[i] * sc : 0.0f;
      }
      x = xd;
    }
    n->xin[l] = x;
    float *z = n->act[l + 1];
    /* z[rows][out] = x[rows][in] * w[out][in]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rn, (int)t->out, (int)t->in, 1.0f,
                x, (int)t->in, w, (int)t->in, 0.0f, z, (int)t->out);
    bool relu = l + 1 < n->n_layers;
    for (size_t r = 0; r < rows; r++) {
      float *zr = z + r * t->out;
      for (uint32_t c = 0; c < t->out; c++) {
        float v = zr[c] + b[c];
        zr[c] = relu && v < 0.0f ? 0.0f : v;
      }
    }
  }
  if (observe) qat_observer_update(&n->out_obs, n->act[n->n_layers], rows * n->dims[n->n_layers]);
  return QAT_OK;
}

void qat__net_bwd(qat_net *n, size_t rows, bool fq, const uint32_t *labels, double *loss_sum,
                 size_t *correct) {
  const uint32_t L = n->n_layers, k = n->dims[L];
  const float *logits = n->act[L];
  float *g = n->g1, *g2 = n->g2;
  const float inv_rows = 1.0f / (float)rows;
  double loss = 0.0;
  size_t ok = 0;
  /* Softmax cross-entropy: dL/dz = (softmax(z) - onehot) / rows. */
  for (size_t r = 0; r < rows; r++) {
    const float *z = logits + r * k;
    float *gr = g + r * k;
    uint32_t arg = 0;
    float mx = z[0];
    for (uint32_t c = 1; c < k; c++)
      if (z[c] > mx) mx = z[c], arg = c;
    ok += arg == labels[r];
    double sum = 0.0;
    for (uint32_t c = 0; c < k; c++) {
      gr[c] = expf(z[c] - mx);
      sum += gr[c];
    }
    loss += log(sum) - (double)(z[labels[r]] - mx);
    float inv = (float)(1.0 / sum);
    /* With label smoothing e the target is (1-e) onehot + e/K. */
    const float eps = n->label_smoothing, off = eps / (float)k;
    for (uint32_t c = 0; c < k; c++) gr[c] = (gr[c] * inv - off) * inv_rows;
    gr[labels[r]] -= (1.0f - eps) * inv_rows;
    if (eps > 0.0f) {
      double lse = log(sum) + mx, ce_all = 0.0;
      for (uint32_t c = 0; c < k; c++) ce_all += lse - z[c];
      loss += eps * (ce_all / k - (lse - z[labels[r]]));
    }
  }
  *loss_sum = loss;
  *correct = ok;
  const int rn = (int)rows;
  for (uint32_t l = L; l-- > 0;) {
    qat_tlayer *t = &n->L[l];
    const float *x = n->xin[l];
    const float *w = fq ? t->wq : t->w;
    /* gw[out][in] = g[rows][out]^T x[rows][in]; the STE passes it where
     * the weight lay inside its clamping range. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)t->out, (int)t->in, rn, 1.0f, g,
                (int)t->out, x, (int)t->in, 0.0f, t->gw, (int)t->in);
    if (fq)
      for (size_t i = 0; i < (size_t)t->out * t->in; i++)
        if (!t->wmask[i]) t->gw[i] = 0.0f;
    for (uint32_t c = 0; c < t->out; c++) t->gb[c] = 0.0f;
    for (size_t r = 0; r < rows; r++)
      for (uint32_t c = 0; c < t->out; c++) t->gb[c] += g[r * t->out + c];
    if (l == 0) break; /* the data needs no gradient */
    /* g2[rows][in] = g[rows][out] w[out][in] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rn, (int)t->in, (int)t->out, 1.0f,
                g, (int)t->out, w, (int)t->in, 0.0f, g2, (int)t->in);
    /* Through the input's fake quant (STE mask) and the previous ReLU. */
    const float *a = n->act[l];
    const uint8_t *m = n->amask[l];
    size_t na = rows * t->in;
    if (n->training && n->drop[l] > 0.0f) {
      const float sc = 1.0f / (1.0f - n->drop[l]);
      for (size_t i = 0; i < na; i++) g2[i] = n->dmask[l][i] ? g2[i] * sc : 0.0f;
    }
    for (size_t i = 0; i < na; i++)
      if (!(a[i] > 0.0f) || (fq && !m[i])) g2[i] = 0.0f;
    float *tmp = g;
    g = g2;
    g2 = tmp;
  }
}

/* ---- Adam -------------------------------------------------------------- */

/* Without errno, sqrtf is one instruction and the loop vectorizes (v >= 0,
 * so errno could never be set anyway). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-math-errno", "tree-vectorize")))
#endif
static void adam_step(float *restrict p, float *restrict m, float *restrict v,
                      const float *restrict g, size_t n, float lr, float wd, float c1,
                      float c2) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  for (size_t i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    float mh = m[i] * c1, vh = v[i] * c2;
    p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
  }
}

static void net_adam(qat_net *n, float lr, float wd) {
  n->adam_t++;
  float c1 = (float)(1.0 / (1.0 - pow(0.9, (double)n->adam_t)));
  float c2 = (float)(1.0 / (1.0 - pow(0.999, (double)n->adam_t)));
  for (uint32_t l = 0; l < n->n_layers; l++) {
    qat_tlayer *t = &n->L[l];
    adam_step(t->w, t->mw, t->vw, t->gw, (size_t)t->in * t->out, lr, wd, c1, c2);
    adam_step(t->b, t->mb, t->vb, t->gb, t->out, lr, 0.0f, c1, c2);
  }
}

/* ---- the epoch loop ---------------------------------------------------- */

void qat_train_opts_default(qat_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->epochs = 10;
  o->batch = 64;
  o->lr = 1e-3f;
  o->lr_final = 0.0f;
  o->schedule = QAT_SCHED_COSINE;
  o->qat_lr = 1e-4f;
  o->w_bits = o->a_bits = 8;
  o->obs_constant = 0.01f;
  o->freeze_last = true;
  o->seed = 1;
}

static float sched_lr(const qat_train_opts *o, float peak, double t, double T) {
  double f = T > 0 ? t / T : 0.0;
  switch (o->schedule) {
  case QAT_SCHED_COSINE:
    return (float)(peak * (o->lr_final + (1.0 - o->lr_final) * 0.5 * (1.0 + cos(M_PI * f))));
  case QAT_SCHED_STEP:
    return (float)(peak * (f < 0.5 ? 1.0 : f < 0.75 ? 0.1 : 0.01));
  default:
    return peak;
  }
}

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static qat_err check_data(const qat_net *n, const qat_dataset *d, const char *what) {
  if (!d || !d->x || !d->y || d->n == 0)
    return qat__fail(QAT_EINVAL, "%s set empty", what);
  if (d->dim != n->dims[0])
    return qat__fail(QAT_EDIM, "%s set has %u features, the net takes %u", what, d->dim,
                    n->dims[0]);
  for (size_t i = 0; i < d->n; i++)
    if (d->y[i] >= n->dims[n->n_layers])
      return qat__fail(QAT_ERANGE, "%s label %u but the net has %u outputs", what, d->y[i],
                      n->dims[n->n_layers]);
  return QAT_OK;
}

qat_err qat_net_train(qat_net *n, const qat_dataset *train, const qat_dataset *val,
                      const qat_train_opts *o) {
  if (!n || !o) return qat__fail(QAT_EINVAL, "qat_net_train: NULL argument");
  qat_err e = check_data(n, train, "training");
  if (e) return e;
  if (val && (e = check_data(n, val, "validation"))) return e;
  if (o->batch < 1 || o->epochs < 1 || o->qat_epochs > o->epochs || !(o->lr > 0.0f))
    return qat__fail(QAT_EINVAL, "batch %u, epochs %u, qat epochs %u, lr %g", o->batch,
                    o->epochs, o->qat_epochs, o->lr);
  if (o->qat_epochs && (o->w_bits < 2 || o->w_bits > 8 || o->a_bits < 2 || o->a_bits > 8))
    return qat__fail(QAT_EINVAL, "bit widths w%d a%d outside 2..8", o->w_bits, o->a_bits);
  if (!(o->dropout_in >= 0.0f && o->dropout_in < 1.0f && o->dropout >= 0.0f &&
        o->dropout < 1.0f && o->label_smoothing >= 0.0f && o->label_smoothing < 1.0f))
    return qat__fail(QAT_EINVAL, "dropout %g, %g or label smoothing %g outside [0, 1)",
                    o->dropout_in, o->dropout, o->label_smoothing);
  qat_blas_single_thread();
  size_t B = o->batch < train->n ? o->batch : train->n;
  if ((e = qat__net_reserve(n, B))) return e;
  size_t *perm = qat__malloc(train->n * sizeof *perm);
  if (!perm) return qat__fail(QAT_ENOMEM, "permutation of %zu", train->n);
  for (size_t i = 0; i < train->n; i++) perm[i] = i;
  rng r;
  rng_seed(&r, o->seed ^ 0x5851f42d4c957f2dull);
  rng_seed((rng *)n->drop_rng, o->seed ^ 0x2545f4914f6cdd1dull);
  for (uint32_t l = 0; l < n->n_layers; l++) n->drop[l] = l ? o->dropout : o->dropout_in;
  n->label_smoothing = o->label_smoothing;
  if (o->qat_epochs) {
    n->w_bits = o->w_bits;
    n->a_bits = o->a_bits;
    /* A QAT phase starts its observers afresh (a calibration's min/max
     * ranges would otherwise linger). */
    for (uint32_t l = 0; l < n->n_layers; l++) qat_observer_init(&n->L[l].obs, o->obs_constant);
    qat_observer_init(&n->out_obs, o->obs_constant);
  }
  const size_t steps_per_epoch = (train->n + B - 1) / B;
  const uint32_t fp_epochs = o->epochs - o->qat_epochs;
  const uint32_t D = n->dims[0], W = o->hflip_width;
  if (W && D % W)
    e = qat__fail(QAT_EINVAL, "flip width %u does not divide %u inputs", W, D);
  for (uint32_t ep = 1; ep <= o->epochs && !e; ep++) {
    bool fq = ep > fp_epochs;
    bool frozen = fq && o->freeze_last && ep == o->epochs && o->qat_epochs > 1;
    if (fq) n->quantized = true;
    /* Fisher-Yates shuffle, one per epoch. */
    for (size_t i = train->n - 1; i > 0; i--) {
      size_t j = rng_below(&r, i + 1), tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double loss = 0.0, lr = 0.0;
    size_t correct = 0;
    for (size_t s = 0; s < steps_per_epoch; s++) {
      size_t lo = s * B, rows = train->n - lo < B ? train->n - lo : B;
      for (size_t i = 0; i < rows; i++) {
        size_t k = perm[lo + i];
        const float *src = train->x + k * D;
        float *dst = n->act[0] + i * D;
        if (W) {
          /* Augmentation for images: a left-right mirror with probability
           * 1/2 and a shift of up to o->shift pixels, zero filled. */
          const int H = (int)(D / W), S = (int)o->shift;
          bool flip = rng_next(&r) >> 63;
          int dx = S ? (int)rng_below(&r, 2 * (size_t)S + 1) - S : 0;
          int dy = S ? (int)rng_below(&r, 2 * (size_t)S + 1) - S : 0;
          for (int yy = 0; yy < H; yy++) {
            int sy = yy - dy;
            for (int xx = 0; xx < (int)W; xx++) {
              int sx = (flip ? (int)W - 1 - xx : xx) - dx;
              dst[yy * (int)W + xx] = sy >= 0 && sy < H && sx >= 0 && sx < (int)W
                                          ? src[sy * (int)W + sx] : 0.0f;
            }
          }
        } else {
          memcpy(dst, src, D * sizeof(float));
        }
        n->labels[i] = train->y[k];
      }
      /* The schedule: per step over all epochs, or restarted for QAT. */
      if (o->warm_restart && o->qat_epochs && o->qat_epochs < o->epochs) {
        if (fq)
          lr = sched_lr(o, o->qat_lr, (double)(ep - 1 - fp_epochs) * steps_per_epoch + s,
                        (double)o->qat_epochs * steps_per_epoch);
        else
          lr = sched_lr(o, o->lr, (double)(ep - 1) * steps_per_epoch + s,
                        (double)fp_epochs * steps_per_epoch);
      } else {
        lr = sched_lr(o, o->lr, (double)(ep - 1) * steps_per_epoch + s,
                      (double)o->epochs * steps_per_epoch);
      }
      if (fq && (e = qat__net_quant_weights(n))) break;
      n->training = true;
      e = qat__net_fwd(n, rows, fq, fq && !frozen);
      if (e) {
        n->training = false;
        break;
      }
      double ls;
      size_t ok;
      qat__net_bwd(n, rows, fq, n->labels, &ls, &ok);
      n->training = false;
      loss += ls;
      correct += ok;
      net_adam(n, (float)lr, o->weight_decay);
      if (o->on_batch && (s % 32 == 31 || s + 1 == steps_per_epoch))
        o->on_batch(ep, s + 1, steps_per_epoch, o->arg);
    }
    if (e) break;
    qat_epoch_stats st = {.epoch = ep, .epochs = o->epochs, .qat = fq,
                          .observers_frozen = frozen, .lr = (float)lr,
                          .loss = loss / train->n, .acc = (double)correct / train->n,
                          .val_loss = NAN, .val_acc = NAN,
                          .seconds = clock_s(CLOCK_MONOTONIC) - t0,
                          .cpu_seconds = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0};
    if (val && (e = qat_net_evaluate(n, val, fq, &st.val_acc, &st.val_loss))) break;
    if (o->on_epoch) o->on_epoch(&st, o->arg);
  }
  qat__free(perm);
  n->label_smoothing = 0.0f;
  return e;
}

/* ---- inference --------------------------------------------------------- */

qat_err qat_net_forward(qat_net *n, const float *x, size_t rows, bool fake_quant,
                        float *logits) {
  if (!n || (!x && rows) || (!logits && rows))
    return qat__fail(QAT_EINVAL, "qat_net_forward: NULL argument");
  if (fake_quant && !n->quantized)
    return qat__fail(QAT_EINVAL, "fake-quant forward of a net without observed ranges");
  qat_blas_single_thread();
  const size_t chunk = 1024;
  qat_err e = qat__net_reserve(n, rows < chunk ? rows : chunk);
  if (e) return e;
  if (fake_quant && (e = qat__net_quant_weights(n))) return e;
  const uint32_t D = n->dims[0], K = n->dims[n->n_layers];
  for (size_t lo = 0; lo < rows; lo += chunk) {
    size_t m = rows - lo < chunk ? rows - lo : chunk;
    memcpy(n->act[0], x + lo * D, m * D * sizeof(float));
    if ((e = qat__net_fwd(n, m, fake_quant, false))) return e;
    memcpy(logits + lo * K, n->act[n->n_layers], m * K * sizeof(float));
  }
  return QAT_OK;
}

qat_err qat_net_evaluate(qat_net *n, const qat_dataset *d, bool fake_quant, double *acc,
                         double *loss) {
  qat_err e = check_data(n, d, "evaluation");
  if (e) return e;
  const uint32_t K = n->dims[n->n_layers];
  const size_t chunk = 1024;
  float *lg = qat__malloc(chunk * K * sizeof(float));
  if (!lg) return qat__fail(QAT_ENOMEM, "logits");
  size_t ok = 0;
  double ls = 0.0;
  for (size_t lo = 0; lo < d->n && !e; lo += chunk) {
    size_t m = d->n - lo < chunk ? d->n - lo : chunk;
    if ((e = qat_net_forward(n, d->x + lo * d->dim, m, fake_quant, lg))) break;
    for (size_t r = 0; r < m; r++) {
      const float *z = lg + r * K;
      uint32_t arg = 0;
      for (uint32_t c = 1; c < K; c++)
        if (z[c] > z[arg]) arg = c;
      ok += arg == d->y[lo + r];
      double s = 0.0;
      for (uint32_t c = 0; c < K; c++) s += exp((double)z[c] - z[arg]);
      ls += log(s) - ((double)z[d->y[lo + r]] - z[arg]);
    }
  }
  qat__free(lg);
  if (e) return e;
  if (acc) *acc = (double)ok / d->n;
  if (loss) *loss = ls / d->n;
  return QAT_OK;
}
