/* bench_fp32.c - the fp32 baseline of one row (what every /predict of one
 * image pays by default), side by side in one run, single thread, medians
 * of interleaved repeats, thread CPU time:
 *
 *   build/bench_fp32 [--out DIR] [--model FILE] [--images IDX] [--quick]
 *
 * Contenders: OpenBLAS cblas_sgemv per layer (what qatserve used before,
 * and still uses on the avx2 and avxvnni tiers) and every kernel tier's
 * gemv_f32 this machine runs (core/gemv_f32.h: weights transposed, a
 * zero input skips its row of weights). Inputs, 1000 rows cycled so each
 * call sees another one: the Fashion-MNIST test images (about half their
 * pixels are exact zeros), the same images with no zero (every pixel
 * + 1/255: the dense case), and uniform random numbers in [0, 1). Every
 * tier's outputs are checked equal to the reference tier's bit for bit,
 * and OpenBLAS's to them within 1e-5 relative. Writes DIR/fp32.txt
 * (default DIR build/bench). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_util.h"
#include "internal.h"
#include "model.h"
#include "qat.h"
#include "qat_train.h"

enum { ROWS = 1000, MAXW = 4096 };

/* Each layer's weights transposed for gemv_f32 (the model keeps them only
 * when its own tier has one). */
static float *wt[16];

typedef struct run {
  const qat_model *m;
  const qat_kernels *k; /* NULL: OpenBLAS sgemv */
  const float *x;       /* ROWS x in_dim */
  size_t in;
  float *y;             /* ROWS x out_dim */
} run;

static void forward(const run *r, const float *x, float *y) {
  static float h[2][MAXW];
  const float *in = x;
  for (uint32_t i = 0; i < r->m->n_layers; i++) {
    const qat_mlayer *L = &r->m->layers[i];
    float *o = i + 1 == r->m->n_layers ? y : h[i & 1];
    if (r->k) {
      r->k->gemv_f32(in, L->in_dim, wt[i], qat__gemv_f32_ld(L->out_dim), L->b_fp32, L->out_dim, o);
    } else {
      memcpy(o, L->b_fp32, L->out_dim * sizeof(float));
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)L->out_dim, (int)L->in_dim, 1.0f, L->w_fp32,
                  (int)L->in_dim, in, 1, 1.0f, o, 1);
    }
    if (L->act == QAT_ACT_RELU)
      for (uint32_t j = 0; j < L->out_dim; j++)
        if (!(o[j] > 0.0f)) o[j] = 0.0f;
    in = o;
  }
}

/* Microseconds per row over all ROWS rows. */
static double time_rows(const run *r) {
  size_t out = qat_model_out_dim(r->m);
  double t0 = bench_now_s();
  for (size_t i = 0; i < ROWS; i++) forward(r, r->x + i * r->in, r->y + i * out);
  return (bench_now_s() - t0) * 1e6 / ROWS;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *dir = "build/bench", *model = "models/fashion-mnist.safetensors";
  const char *images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  const char *labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  int reps = 21;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(argv[i], "--images") && i + 1 < argc) images = argv[++i];
    else if (!strcmp(argv[i], "--quick")) reps = 3;
    else {
      fprintf(stderr, "usage: bench_fp32 [--out DIR] [--model FILE] [--images IDX] [--quick]\n");
      return 2;
    }
  }
  qat_model *m;
  qat_dataset *ds;
  if (qat_model_load(model, &m) != QAT_OK) {
    fprintf(stderr, "bench_fp32: %s: %s\n", model, qat_errmsg());
    return 1;
  }
  size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m);
  for (uint32_t i = 0; i < m->n_layers; i++)
    if (m->layers[i].out_dim > MAXW || i >= 16) {
      fprintf(stderr, "bench_fp32: layers wider than %d are not benched\n", MAXW);
      return 1;
    }
  for (uint32_t i = 0; i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    wt[i] = qat__malloc_aligned(L->in_dim * qat__gemv_f32_ld(L->out_dim) * sizeof(float));
    if (!wt[i]) return 1;
    qat__gemv_f32_transpose(L->w_fp32, L->out_dim, L->in_dim, wt[i]);
  }
  if (qat_dataset_load_idx(images, labels, 0, &ds) != QAT_OK || ds->dim != in || ds->n < ROWS) {
    fprintf(stderr, "bench_fp32: need %d images of %zu pixels in %s (dataset-fashion-mnist)\n", ROWS, in,
            images);
    return 1;
  }
  static const char *kinds[] = {"Fashion-MNIST test images", "the same images, no zero pixel",
                                "uniform random in [0, 1)"};
  float *x[3];
  uint64_t s = 88172645463325252ull;
  for (int k = 0; k < 3; k++) {
    x[k] = malloc(ROWS * in * sizeof(float));
    if (!x[k]) return 1;
    for (size_t i = 0; i < ROWS * in; i++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      x[k][i] = k == 0 ? ds->x[i] : k == 1 ? ds->x[i] + 1.0f / 255 : (float)(s >> 40) / 16777216.0f;
    }
  }
  const qat_kernels *tiers[8];
  size_t nt = 0, na = qat__kernels_available(tiers, 8, false);
  for (size_t i = 0; i < na; i++)
    if (tiers[i]->gemv_f32) tiers[nt++] = tiers[i]; /* the others use sgemv */
  char path[4096];
  if (!bench_report_open(dir, "fp32.txt", path, sizeof path)) {
    fprintf(stderr, "bench_fp32: cannot write %s\n", path);
    return 1;
  }
  int bad = 0;
  for (int k = 0; k < 3; k++) {
    run r[9];
    double t[9][64];
    size_t nc = 0;
    r[nc++] = (run){m, NULL, x[k], in, NULL};
    for (size_t i = 0; i < nt; i++) r[nc++] = (run){m, tiers[i], x[k], in, NULL};
    for (size_t c = 0; c < nc; c++) r[c].y = malloc(ROWS * out * sizeof(float));
    for (int rep = 0; rep < reps; rep++)
      for (size_t c = 0; c < nc; c++) t[c][rep] = time_rows(&r[c]);
    bench_out("fp32, one row, %s (%u layers, %zu -> %zu), us per row (median of %d):\n", kinds[k],
              m->n_layers, in, out, reps);
    double blas = 0;
    for (size_t c = 0; c < nc; c++) {
      qsort(t[c], (size_t)reps, sizeof(double), cmp_d);
      double med = t[c][reps / 2];
      if (!c) blas = med;
      /* Tiers against the reference tier (the last), bit for bit; OpenBLAS
       * within rounding. */
      const float *ref = r[nc - 1].y;
      float worst = 0;
      for (size_t i = 0; i < ROWS * out; i++)
        worst = fmaxf(worst, fabsf(r[c].y[i] - ref[i]) / fmaxf(1.0f, fabsf(ref[i])));
      bool same = memcmp(r[c].y, ref, ROWS * out * sizeof(float)) == 0;
      if ((c && !same) || worst > 1e-5f) bad = 1;
      bench_out("  %-22s %8.2f us  %5.2fx OpenBLAS  %s\n",
               c ? tiers[c - 1]->name : "OpenBLAS sgemv", med, blas / med,
               c ? (same ? "= ref bit for bit" : "DIFFERS from ref")
                 : (worst <= 1e-5f ? "within 1e-5 of ref" : "FAR from ref"));
    }
    for (size_t c = 0; c < nc; c++) free(r[c].y);
  }
  bench_report_close();
  printf("wrote %s\n", path);
  for (int k = 0; k < 3; k++) free(x[k]);
  qat_dataset_destroy(ds);
  for (uint32_t i = 0; i < m->n_layers; i++) qat__free_aligned(wt[i]);
  qat_model_destroy(m);
  return bad;
}
