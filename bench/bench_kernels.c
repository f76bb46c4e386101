/* bench_kernels.c - the int8 kernel tiers side by side in one run, single
 * thread, medians of interleaved repeats:
 *
 *   build/bench_kernels [--out DIR] [--quick] [--wall] [--model FILE]
 *                       [--blas-only] [--no-ort]
 *
 * 1. One core's int8 peak: independent chains of vpdpbusd (zmm, ymm) and of
 *    the AVX2 triple (bench_peak_*.c), GOP/s (a multiply-add = 2 ops).
 * 2. Layers (N outputs, K inputs, batch M): microseconds per call and GOP/s
 *    (2*M*N*K ops) of every tier this machine runs (and the avxvnni tier's
 *    EVEX twin, the ymm estimate where AVX-VNNI is absent), the scalar
 *    reference, OpenBLAS sgemv/sgemm, and oneDNN dnnl_gemm_u8s8s32 with
 *    every ISA it finds (HAVE_DNNL; fed x in 0..127, since its AVX2 path
 *    saturates; its wrong outputs on full-range x are counted).
 * 3. The 784-256-128-10 MLP int8 (quantize, gemm + requant per layer,
 *    dequantize) per tier against fp32 OpenBLAS, batch 1 and 64.
 * 4. The shipped model through the library (qat_infer_int8 / _fp32) against
 *    ONNX Runtime (onnxruntime-node from tests/ort, one intra-op thread;
 *    bench/ort_model.py writes the graphs, bench/ort_peer.js runs them and
 *    times inside node) at batch 1 and 64; ORT's int8 outputs are first
 *    checked equal to ours, float for float, on the bench input.
 * --blas-only: only the fp32 OpenBLAS figures (for a run with a different
 * OPENBLAS_CORETYPE); --shipped-only: only section 4. Writes DIR/kernels.txt, kernels.csv (layers),
 * kernels_mlp.csv (default DIR build/bench); bench/plot_kernels.gp plots. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "bench_peak.h"
#include "bench_util.h"
#include "internal.h"
#include "kernels.h"
#include "layer.h"
#include "qat.h"

#ifdef HAVE_DNNL
#include <dnnl.h>
#endif

#define REPEATS 15
#define MIN_MS 2.0

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *ctx);

/* Median microseconds per call over `repeats` repeats, each of enough
 * calls to take at least min_ms (calibrated once, after a warm-up). */
static double time_us(bench_fn f, void *ctx, int repeats, double min_ms) {
  f(ctx);
  size_t n = 1;
  for (;;) {
    double t0 = bench_now_s();
    for (size_t i = 0; i < n; i++) f(ctx);
    double ms = (bench_now_s() - t0) * 1e3;
    if (ms >= min_ms || n > (1u << 24)) break;
    n = ms <= 0.01 ? n * 16 : (size_t)((double)n * min_ms / ms * 1.2) + 1;
  }
  double t[REPEATS];
  if (repeats > REPEATS) repeats = REPEATS;
  for (int r = 0; r < repeats; r++) {
    double t0 = bench_now_s();
    for (size_t i = 0; i < n; i++) f(ctx);
    t[r] = (bench_now_s() - t0) * 1e6 / (double)n;
  }
  qsort(t, (size_t)repeats, sizeof *t, cmp_double);
  return t[repeats / 2];
}

/* Side by side: each contender's calls per repeat are calibrated alone,
 * then the repeats run round-robin (A B C A B C ...), so load from other
 * processes on this shared machine hits every contender alike and the
 * ratios stay honest; each contender's median is reported. */
typedef struct contender {
  bench_fn f;
  void *ctx;
  double us; /* out: median microseconds per call */
} contender;

static void time_side_by_side(contender *c, int nc, int repeats, double min_ms) {
  size_t n[8];
  double t[8][REPEATS];
  if (repeats > REPEATS) repeats = REPEATS;
  for (int i = 0; i < nc; i++) {
    c[i].f(c[i].ctx);
    n[i] = 1;
    for (;;) {
      double t0 = bench_now_s();
      for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
      double ms = (bench_now_s() - t0) * 1e3;
      if (ms >= min_ms || n[i] > (1u << 24)) break;
      n[i] = ms <= 0.01 ? n[i] * 16 : (size_t)((double)n[i] * min_ms / ms * 1.2) + 1;
    }
  }
  for (int r = 0; r < repeats; r++)
    for (int i = 0; i < nc; i++) {
      double t0 = bench_now_s();
      for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
      t[i][r] = (bench_now_s() - t0) * 1e6 / (double)n[i];
    }
  for (int i = 0; i < nc; i++) {
    qsort(t[i], (size_t)repeats, sizeof(double), cmp_double);
    c[i].us = t[i][repeats / 2];
  }
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

static void *xalloc(size_t n) {
  void *p = qat__malloc_aligned(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

/* The tiers measured: every one this machine runs but the reference, then
 * the avxvnni EVEX twin (labelled as such) where it runs. */
static const qat_kernels *tiers[8];
static size_t ntiers;

static void pick_tiers(void) {
  const qat_kernels *all[8];
  size_t n = qat__kernels_available(all, 8, true);
  for (size_t i = 0; i < n; i++)
    if (all[i] != &qat__kernels_ref) tiers[ntiers++] = all[i];
}

/* ---- 1. peak ------------------------------------------------------------- */

typedef int32_t (*peak_fn)(long, int32_t);
static volatile int32_t sink;

/* GOP/s of one peak loop: median of 7 runs of ~20 ms each. */
static double peak_gops(peak_fn f, double ops_per_iter, int quick) {
  long iters = 1000;
  for (;;) {
    double t0 = bench_now_s();
    sink += f(iters, (int32_t)iters);
    double ms = (bench_now_s() - t0) * 1e3;
    if (ms >= 20.0 || iters > (1L << 34)) break;
    iters = ms < 0.5 ? iters * 16 : (long)((double)iters * 22.0 / ms);
  }
  double t[7];
  int reps = quick ? 3 : 7;
  for (int r = 0; r < reps; r++) {
    double t0 = bench_now_s();
    sink += f(iters, r);
    t[r] = bench_now_s() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  return ops_per_iter * (double)iters / t[reps / 2] / 1e9;
}

static double peak_zmm = NAN, peak_ymm = NAN, peak_avx2 = NAN;

static void bench_peaks(int quick) {
  bench_out("# 1. one core's int8 peak: independent chains of one instruction (a multiply-add = 2 ops)\n");
  if (qat__kernels_runnable(&qat__kernels_avx512vnni)) {
    peak_zmm = peak_gops(bench_peak_zmm, PEAK_ZMM_OPS, quick);
    bench_out("peak vpdpbusd zmm (AVX512-VNNI), 16 chains        %7.1f GOP/s\n", peak_zmm);
    peak_ymm = peak_gops(bench_peak_ymm_evex, PEAK_YMM_OPS, quick);
    bench_out("peak vpdpbusd ymm, EVEX (AVX512-VNNI + VL)        %7.1f GOP/s\n", peak_ymm);
  }
  if (qat__kernels_runnable(&qat__kernels_avxvnni)) {
    peak_ymm = peak_gops(bench_peak_ymm_vex, PEAK_YMM_VEX_OPS, quick);
    bench_out("peak vpdpbusd ymm, VEX (AVX-VNNI), 14 chains      %7.1f GOP/s\n", peak_ymm);
  } else {
    bench_out("peak vpdpbusd ymm, VEX (AVX-VNNI)                 not run: this CPU has no AVX-VNNI\n");
  }
  if (qat__cpu_has_avx2()) {
    peak_avx2 = peak_gops(bench_peak_avx2, PEAK_AVX2_OPS, quick);
    bench_out("peak vpmaddubsw+vpmaddwd+vpaddd (AVX2), 12 chains %7.1f GOP/s\n", peak_avx2);
  }
}

/* The peak a tier's instruction reaches here (NAN when not measured). */
static double tier_peak(const qat_kernels *k) {
  if (k == &qat__kernels_avx512vnni) return peak_zmm;
  if (k == &qat__kernels_avxvnni || k == &qat__kernels_avxvnni_evex) return peak_ymm;
  if (k == &qat__kernels_avx2) return peak_avx2;
  return NAN;
}

/* ---- 2. one layer ---------------------------------------------------------- */

typedef struct layer_case {
  size_t M, N, K;
  const qat_kernels *kern;
  uint8_t *x, *x127;
  int8_t *w;
  void *wp;
  int32_t *acc;
  float *xf, *wf, *yf;
} layer_case;

static void run_kern(void *c) {
  layer_case *l = c;
  l->kern->gemm_u8s8(l->x, l->M, l->K, l->K, l->wp, l->N, l->acc);
}
static void run_ref(void *c) {
  layer_case *l = c;
  qat__kernels_ref.gemm_u8s8(l->x, l->M, l->K, l->K, l->w, l->N, l->acc);
}
static void run_blas(void *c) {
  layer_case *l = c;
  int M = (int)l->M, N = (int)l->N, K = (int)l->K;
  if (M == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, l->wf, K, l->xf, 1, 0.0f, l->yf, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, l->xf, K, l->wf,
                K, 0.0f, l->yf, N);
}
#ifdef HAVE_DNNL
static void run_dnnl_on(layer_case *l, const uint8_t *x) {
  const int32_t co = 0;
  /* C[M][N] = A[M][K] * B^T with B = w [N][K] row-major ('T'). */
  dnnl_gemm_u8s8s32('N', 'T', 'F', (dnnl_dim_t)l->M, (dnnl_dim_t)l->N,
                    (dnnl_dim_t)l->K, 1.0f, x, (dnnl_dim_t)l->K, 0, l->w,
                    (dnnl_dim_t)l->K, 0, 0.0f, l->acc, (dnnl_dim_t)l->N, &co);
}
static void run_dnnl(void *c) {
  layer_case *l = c;
  run_dnnl_on(l, l->x127);
}
#endif

static double gops(size_t M, size_t N, size_t K, double us) {
  return 2.0 * (double)M * (double)N * (double)K / (us * 1e3);
}

static void layer_setup(layer_case *l, const qat_kernels *kern, size_t N, size_t K, size_t M) {
  *l = (layer_case){.M = M, .N = N, .K = K, .kern = kern};
  rng = 0x1234567ull * (N * 131 + K * 7 + M) + 1; /* same data in every process */
  l->x = xalloc(M * K);
  l->x127 = xalloc(M * K);
  l->w = xalloc(N * K);
  l->wp = xalloc(kern->packed_size(N, K));
  l->acc = xalloc(M * N * sizeof(int32_t));
  l->xf = xalloc(M * K * sizeof(float));
  l->wf = xalloc(N * K * sizeof(float));
  l->yf = xalloc(M * N * sizeof(float));
  for (size_t i = 0; i < M * K; i++) {
    l->x[i] = (uint8_t)rnd();
    l->x127[i] = l->x[i] & 127;
    l->xf[i] = (float)l->x[i] / 255.0f;
  }
  for (size_t i = 0; i < N * K; i++) {
    l->w[i] = (int8_t)rnd();
    l->wf[i] = (float)l->w[i] / 127.0f;
  }
  kern->pack(l->w, N, K, l->wp);
}

static void layer_free(layer_case *l) {
  qat__free_aligned(l->x);
  qat__free_aligned(l->x127);
  qat__free_aligned(l->w);
  qat__free_aligned(l->wp);
  qat__free_aligned(l->acc);
  qat__free_aligned(l->xf);
  qat__free_aligned(l->wf);
  qat__free_aligned(l->yf);
}

/* oneDNN's time (x in 0..127) and its wrong outputs on full-range x. */
typedef struct dnnl_result {
  double us;
  long wrong;
} dnnl_result;

static const size_t shapes[][2] = {{256, 784}, {128, 256}, {10, 128}, {1024, 1024}};
static const size_t batches[] = {1, 16, 64, 256};
#define NCASES 16

/* oneDNN with every ISA it finds (AVX-512 VNNI here), measured in a child
 * process, alone, before the parent's table (the two never share cores). */
static void dnnl_native_all(dnnl_result *res, int quick) {
  for (int i = 0; i < NCASES; i++) res[i] = (dnnl_result){NAN, -1};
#ifdef HAVE_DNNL
  int fd[2];
  if (pipe(fd) != 0) return;
  pid_t pid = fork();
  if (pid < 0) return;
  if (pid == 0) {
    close(fd[0]);
    for (int i = 0; i < NCASES; i++) {
      layer_case l;
      layer_setup(&l, &qat__kernels_ref, shapes[i / 4][0], shapes[i / 4][1], batches[i % 4]);
      int32_t *truth = xalloc(l.M * l.N * sizeof(int32_t));
      l.kern->gemm_u8s8(l.x, l.M, l.K, l.K, l.wp, l.N, truth);
      dnnl_result r;
      r.us = time_us(run_dnnl, &l, quick ? 5 : REPEATS, MIN_MS);
      run_dnnl_on(&l, l.x);
      r.wrong = 0;
      for (size_t k = 0; k < l.M * l.N; k++) r.wrong += l.acc[k] != truth[k];
      if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
      qat__free_aligned(truth);
      layer_free(&l);
    }
    _exit(0);
  }
  close(fd[1]);
  for (int i = 0; i < NCASES; i++)
    if (read(fd[0], &res[i], sizeof res[i]) != (ssize_t)sizeof res[i]) break;
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
#else
  (void)quick;
#endif
}

static void bench_layer(FILE *csv, size_t N, size_t K, size_t M, int quick, dnnl_result native) {
  layer_case l[8];
  contender c[8];
  int nc = 0;
  for (size_t t = 0; t < ntiers; t++) {
    layer_setup(&l[t], tiers[t], N, K, M);
    c[nc++] = (contender){run_kern, &l[t], 0};
  }
  /* Sanity, same data: each tier equals the reference, on 0..255. */
  int32_t *truth = xalloc(M * N * sizeof(int32_t));
  qat__kernels_ref.gemm_u8s8(l[0].x, M, K, K, l[0].w, N, truth);
  for (size_t t = 0; t < ntiers; t++) {
    run_kern(&l[t]);
    if (memcmp(truth, l[t].acc, M * N * sizeof(int32_t)) != 0) {
      fprintf(stderr, "MISMATCH %s vs reference at N=%zu K=%zu M=%zu\n", tiers[t]->name, N, K, M);
      exit(1);
    }
  }
  c[nc++] = (contender){run_blas, &l[0], 0};
  time_side_by_side(c, nc, quick ? 5 : REPEATS, MIN_MS);
  double ops = 2.0 * (double)M * (double)N * (double)K;
  /* The reference is slow: few repeats of a single call on big shapes. */
  double t_ref = ops > 5e7 ? time_us(run_ref, &l[0], 3, 0.0) : time_us(run_ref, &l[0], quick ? 5 : REPEATS, MIN_MS);
  double t_blas = c[ntiers].us;
  bench_out("%5zu %5zu %4zu |", N, K, M);
  for (size_t t = 0; t < ntiers; t++) bench_out(" %8.2f %6.1f |", c[t].us, gops(M, N, K, c[t].us));
  bench_out(" %9.1f %5.1f | %8.2f %6.1f | %8.2f %6.1f | %5.2fx %5.2fx | %6ld /%zu\n", t_ref,
      gops(M, N, K, t_ref), t_blas, gops(M, N, K, t_blas), native.us, gops(M, N, K, native.us),
      t_blas / c[0].us, native.us / c[0].us, native.wrong, M * N);
  if (csv) {
    fprintf(csv, "%zu,%zu,%zu", N, K, M);
    for (size_t t = 0; t < ntiers; t++) fprintf(csv, ",%.3f,%.2f", c[t].us, gops(M, N, K, c[t].us));
    fprintf(csv, ",%.3f,%.3f,%.2f,%.3f,%.2f,%ld\n", t_ref, t_blas, gops(M, N, K, t_blas), native.us,
            gops(M, N, K, native.us), native.wrong);
  }
  if (N == 1024 && K == 1024 && M == 256)
    for (size_t t = 0; t < ntiers; t++) {
      double p = tier_peak(tiers[t]), g = gops(M, N, K, c[t].us);
      if (!isnan(p))
        bench_out("#   layer 1024x1024 batch 256, %-12s %6.1f GOP/s = %5.1f%% of its instruction's peak (%.1f GOP/s)\n",
            tiers[t]->name, g, 100.0 * g / p, p);
    }
  qat__free_aligned(truth);
  for (size_t t = 0; t < ntiers; t++) layer_free(&l[t]);
}

/* ---- 3. the whole MLP, per tier ---------------------------------------------- */

#define NL 3
static const size_t dims[NL + 1] = {784, 256, 128, 10};

typedef struct mlp {
  size_t rows;
  int32_t qmax;
  const qat_kernels *kern;
  qat_qparams in_q;
  void *wp[NL];
  int32_t *bias[NL];  /* bq - in_zp * rowsum, folded */
  float *mult[NL];    /* requant multiplier (layers 0..NL-2) */
  float *deq[NL];     /* last layer: in_s * w_s[c] */
  int32_t zp[NL + 1]; /* activation zero points, [0] = input */
  float *wf[NL], *bf[NL];
  float *x;           /* [rows][784] input */
  uint8_t *a[NL];     /* uint8 activations, [0] = quantized input */
  int32_t *acc;
  float *h[NL];       /* fp32 activations */
  float *y;
} mlp;

static void mlp_int8(void *c) {
  mlp *m = c;
  size_t r = m->rows;
  m->kern->quantize_u8(m->x, r * dims[0], &m->in_q, m->a[0]);
  for (int i = 0; i < NL; i++) {
    m->kern->gemm_u8s8(m->a[i], r, dims[i], dims[i], m->wp[i], dims[i + 1], m->acc);
    if (i + 1 < NL) {
      m->kern->requant_u8(m->acc, r, dims[i + 1], m->bias[i], m->mult[i], m->zp[i + 1],
                          m->zp[i + 1], m->qmax, m->a[i + 1], dims[i + 1]);
    } else {
      size_t n = dims[i + 1];
      for (size_t k = 0; k < r * n; k++)
        m->y[k] = (float)(m->acc[k] + m->bias[i][k % n]) * m->deq[i][k % n];
    }
  }
}

static void mlp_fp32(void *c) {
  mlp *m = c;
  int r = (int)m->rows;
  const float *in = m->x;
  for (int i = 0; i < NL; i++) {
    int N = (int)dims[i + 1], K = (int)dims[i];
    float *o = i + 1 < NL ? m->h[i] : m->y;
    if (r == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, m->wf[i], K, in, 1, 0.0f, o, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r, N, K, 1.0f, in, K, m->wf[i],
                  K, 0.0f, o, N);
    for (int k = 0; k < r * N; k++) {
      float v = o[k] + m->bf[i][k % N];
      o[k] = i + 1 < NL && v < 0.0f ? 0.0f : v;
    }
    in = o;
  }
}

/* Random weights (the same for every tier: the generator is reseeded). */
static mlp *mlp_create(const qat_kernels *kern, size_t rows) {
  mlp *m = xalloc(sizeof *m);
  *m = (mlp){.rows = rows, .kern = kern, .qmax = 255};
  rng = 0xfeedull + rows;
  m->in_q = (qat_qparams){.scale = 1.0f / 255.0f, .zero_point = 0, .qmin = 0, .qmax = 255};
  m->x = xalloc(rows * dims[0] * sizeof(float));
  for (size_t i = 0; i < rows * dims[0]; i++) m->x[i] = (float)(rnd() % 1000) / 1000.0f;
  m->acc = xalloc(rows * 256 * sizeof(int32_t));
  m->y = xalloc(rows * dims[NL] * sizeof(float));
  float in_s = m->in_q.scale;
  for (int i = 0; i < NL; i++) {
    size_t N = dims[i + 1], K = dims[i];
    int8_t *w = xalloc(N * K);
    m->wf[i] = xalloc(N * K * sizeof(float));
    m->bf[i] = xalloc(N * sizeof(float));
    m->bias[i] = xalloc(N * sizeof(int32_t));
    m->mult[i] = xalloc(N * sizeof(float));
    m->deq[i] = xalloc(N * sizeof(float));
    m->a[i] = xalloc(rows * K + 64);
    m->h[i] = xalloc(rows * N * sizeof(float));
    m->wp[i] = xalloc(kern->packed_size(N, K));
    float w_s = 0.5f / (127.0f * sqrtf((float)K)), out_s = 4.0f / 255.0f;
    m->zp[i + 1] = 64;
    for (size_t k = 0; k < N * K; k++) {
      w[k] = (int8_t)((int)(rnd() % 255) - 127);
      m->wf[i][k] = (float)w[k] * w_s;
    }
    for (size_t c = 0; c < N; c++) {
      int32_t rowsum = 0;
      for (size_t k = 0; k < K; k++) rowsum += w[c * K + k];
      m->bf[i][c] = (float)((int)(rnd() % 200) - 100) * 1e-3f;
      int32_t bq = (int32_t)rintf(m->bf[i][c] * (1.0f / (w_s * in_s)));
      m->bias[i][c] = bq - m->zp[i] * rowsum;
      m->mult[i][c] = (w_s * in_s) * (1.0f / out_s);
      m->deq[i][c] = in_s * w_s;
    }
    kern->pack(w, N, K, m->wp[i]);
    qat__free_aligned(w);
    in_s = out_s;
  }
  return m;
}

static void mlp_destroy(mlp *m) {
  qat__free_aligned(m->x);
  qat__free_aligned(m->acc);
  qat__free_aligned(m->y);
  for (int i = 0; i < NL; i++) {
    qat__free_aligned(m->wf[i]);
    qat__free_aligned(m->bf[i]);
    qat__free_aligned(m->bias[i]);
    qat__free_aligned(m->mult[i]);
    qat__free_aligned(m->deq[i]);
    qat__free_aligned(m->a[i]);
    qat__free_aligned(m->h[i]);
    qat__free_aligned(m->wp[i]);
  }
  qat__free_aligned(m);
}

static double mlp_ops(size_t rows) {
  size_t macs = 0;
  for (int i = 0; i < NL; i++) macs += dims[i] * dims[i + 1];
  return 2.0 * (double)(macs * rows);
}

static void bench_mlp(FILE *csv, size_t rows, int quick, int blas_only) {
  mlp *m[8];
  contender c[8];
  size_t nt = blas_only ? 0 : ntiers;
  mlp *ref = mlp_create(&qat__kernels_ref, rows);
  mlp_int8(ref);
  for (size_t t = 0; t < nt; t++) {
    m[t] = mlp_create(tiers[t], rows);
    mlp_int8(m[t]);
    if (memcmp(m[t]->y, ref->y, rows * dims[NL] * sizeof(float)) != 0) {
      fprintf(stderr, "MISMATCH: MLP outputs of %s differ from the reference tier's\n", tiers[t]->name);
      exit(1);
    }
    c[t] = (contender){mlp_int8, m[t], 0};
  }
  c[nt] = (contender){mlp_fp32, ref, 0};
  time_side_by_side(c, (int)nt + 1, quick ? 5 : REPEATS, MIN_MS);
  double ops = mlp_ops(rows);
  bench_out("MLP 784-256-128-10 batch %3zu |", rows);
  for (size_t t = 0; t < nt; t++)
    bench_out(" %s %7.2f us (%5.1f GOP/s) |", tiers[t]->name, c[t].us, ops / (c[t].us * 1e3));
  bench_out(" fp32 OpenBLAS %7.2f us (%5.1f GOP/s)", c[nt].us, ops / (c[nt].us * 1e3));
  if (nt) bench_out(" | %s vs fp32 %5.2fx", tiers[0]->name, c[nt].us / c[0].us);
  bench_out("\n");
  if (csv) {
    for (size_t t = 0; t < nt; t++) fprintf(csv, "mlp,%s,%zu,%.3f,%.2f\n", tiers[t]->name, rows, c[t].us, ops / (c[t].us * 1e3));
    fprintf(csv, "mlp,fp32-openblas,%zu,%.3f,%.2f\n", rows, c[nt].us, ops / (c[nt].us * 1e3));
  }
  for (size_t t = 0; t < nt; t++) mlp_destroy(m[t]);
  mlp_destroy(ref);
}

/* ---- 4. the shipped model: the library vs ONNX Runtime ----------------------- */

typedef struct model_case {
  qat_model *m;
  qat_ctx *c;
  size_t rows;
  const float *x;
  float *y;
} model_case;

static void model_int8(void *p) {
  model_case *mc = p;
  if (qat_infer_int8(mc->m, mc->c, mc->x, mc->rows, mc->y) != QAT_OK) exit(1);
}
static void model_fp32(void *p) {
  model_case *mc = p;
  if (qat_infer_fp32(mc->m, mc->c, mc->x, mc->rows, mc->y) != QAT_OK) exit(1);
}

/* The integer parameters of model m, computed by libqat's own functions,
 * as JSON for bench/ort_model.py. */
static int write_spec(const qat_model *m, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  qat_qparams in = qat_model_input_qparams(m);
  fprintf(f, "{\"in_inv\": %.9g, \"in_zp\": %d, \"layers\": [", (double)(1.0f / in.scale), in.zero_point);
  for (uint32_t i = 0; i < qat_model_n_layers(m); i++) {
    qat_layer_info L;
    if (qat_model_layer(m, i, &L) != QAT_OK) return -1;
    size_t N = L.out_dim, K = L.in_dim;
    fprintf(f, "%s{\"in_dim\": %zu, \"out_dim\": %zu, \"relu\": %s, \"in_zp\": %d, \"out_zp\": %d,",
            i ? ", " : "", K, N, L.act == QAT_ACT_RELU ? "true" : "false", L.in.zero_point,
            L.out.zero_point);
#define ARR(name, n, fmt, expr)                                        \
  do {                                                                 \
    fprintf(f, " \"" name "\": [");                                    \
    for (size_t j = 0; j < (n); j++) fprintf(f, j ? "," fmt : fmt, expr); \
    fprintf(f, "],");                                                  \
  } while (0)
    ARR("wq", N * K, "%d", (int)L.wq[j]);
    ARR("mult", N, "%.9g", (double)qat__layer_multiplier(L.w_scale[j], L.in.scale, L.out.scale));
    ARR("deq", N, "%.9g", (double)(L.in.scale * L.w_scale[j]));
    ARR("bias_q", N, "%d", L.bias_q[j]);
    ARR("w_fp32", N * K, "%.9g", (double)L.w_fp32[j]);
    fprintf(f, " \"b_fp32\": [");
    for (size_t j = 0; j < N; j++) fprintf(f, j ? ",%.9g" : "%.9g", (double)L.b_fp32[j]);
    fprintf(f, "]}");
#undef ARR
  }
  fprintf(f, "]}\n");
  return fclose(f);
}

typedef struct ort_peer {
  pid_t pid;
  FILE *to, *from;
} ort_peer;

/* One command, one reply line (without the newline); false on EOF/error. */
static bool ort_cmd(ort_peer *p, char *reply, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool ort_cmd(ort_peer *p, char *reply, size_t cap, const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->to, fmt, ap);
    va_end(ap);
    fputc('\n', p->to);
    fflush(p->to);
  }
  if (!fgets(reply, (int)cap, p->from)) return false;
  reply[strcspn(reply, "\n")] = 0;
  return strncmp(reply, "error", 5) != 0;
}

static bool ort_start(ort_peer *p, char *const argv[], char *reply, size_t cap) {
  int in[2], outp[2];
  if (pipe(in) || pipe(outp)) return false;
  p->pid = fork();
  if (p->pid < 0) return false;
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(outp[1], 1);
    close(in[0]);
    close(in[1]);
    close(outp[0]);
    close(outp[1]);
    execvp(argv[0], argv);
    printf("error cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(outp[1]);
  p->to = fdopen(in[1], "w");
  p->from = fdopen(outp[0], "r");
  return p->to && p->from && ort_cmd(p, reply, cap, NULL);
}

static void ort_stop(ort_peer *p) {
  if (p->to) {
    fprintf(p->to, "quit\n");
    fclose(p->to);
  }
  if (p->from) fclose(p->from);
  if (p->pid > 0) waitpid(p->pid, NULL, 0);
}

/* ORT's per-call wall and CPU microseconds over n calls. */
static bool ort_time(ort_peer *p, const char *kind, size_t B, size_t n, double *wall, double *cpu) {
  char r[256];
  return ort_cmd(p, r, sizeof r, "time %s %zu %zu", kind, B, n) && sscanf(r, "%lf %lf", wall, cpu) == 2;
}

static void bench_shipped(FILE *csv, const char *path, const char *dir, int quick, int use_ort,
                          int blas_only) {
  qat_model *m = NULL;
  if (qat_model_load(path, &m) != QAT_OK) {
    bench_out("# 4. shipped model: not run (%s: %s)\n", path, qat_errmsg());
    return;
  }
  const size_t R = 64, K = qat_model_in_dim(m), O = qat_model_out_dim(m);
  float *x = xalloc(R * K * sizeof(float)), *y = xalloc(R * O * sizeof(float));
  float *yo = xalloc(R * O * sizeof(float));
  rng = 0x5eedull;
  for (size_t i = 0; i < R * K; i++) x[i] = (float)(rnd() >> 8) / (float)(1 << 24); /* [0, 1) like pixels */
  qat_ctx *ctx = NULL;
  if (qat_ctx_create(m, R, &ctx) != QAT_OK) exit(1);
  bench_out("# 4. the shipped model (%s, %zu-...-%zu) through the library: qat_infer_int8 (%s) and\n"
      "#    qat_infer_fp32 (OpenBLAS %s), vs ONNX Runtime (one intra-op thread) on the same input.\n",
      path, K, O, qat_kernel_name(), qat_blas_corename());

  ort_peer peer = {0};
  bool ort = false;
  char reply[256] = "";
  char spec[600], f8[600], f32[600], fnoop[600], fin[600], fout[600], f8t[600], f32t[600];
  const char *graphs = "bench/ort_model.py (int8: Mul + QuantizeLinear, QGemm, MatMulInteger; fp32: Gemm + Relu)";
  snprintf(spec, sizeof spec, "%s/ort-spec.json", dir);
  snprintf(f8, sizeof f8, "%s/ort-int8.onnx", dir);
  snprintf(f32, sizeof f32, "%s/ort-fp32.onnx", dir);
  snprintf(fnoop, sizeof fnoop, "%s/ort-noop.onnx", dir);
  snprintf(fin, sizeof fin, "%s/ort-input.f32", dir);
  snprintf(fout, sizeof fout, "%s/ort-output.f32", dir);
  snprintf(f8t, sizeof f8t, "%s/ort-int8-qat2onnx.onnx", dir);
  snprintf(f32t, sizeof f32t, "%s/ort-fp32-qat2onnx.onnx", dir);
  if (use_ort && !blas_only && qat_model_out_mode(m) == QAT_OUT_DEQUANT_ACC) {
    if (access("tests/ort/node_modules/onnxruntime-node/package.json", R_OK) != 0) {
      bench_out("#    ONNX Runtime: not run (install it: cd tests/ort && npm ci --ignore-scripts)\n");
    } else if (write_spec(m, spec) != 0) {
      bench_out("#    ONNX Runtime: not run (cannot write %s)\n", spec);
    } else {
      char cmd[6000];
      snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/ort_model.py '%s' '%s' '%s' '%s'", spec, f8, f32,
               fnoop);
      FILE *fi = fopen(fin, "wb");
      bool okw = fi && fwrite(x, sizeof(float), R * K, fi) == R * K;
      if (fi) fclose(fi);
      if (!okw || system(cmd) != 0) {
        bench_out("#    ONNX Runtime: not run (bench/ort_model.py failed: needs python3-onnx)\n");
      } else {
        char rows_s[32], k_s[32];
        snprintf(rows_s, sizeof rows_s, "%zu", R);
        snprintf(k_s, sizeof k_s, "%zu", K);
        /* The project's converter when present (its qoperator form: QGemm
         * per layer); the bench's own graphs otherwise. Either way the
         * outputs are checked against ours below before any timing. */
        bool t = false;
        if (access("tools/qat2onnx.py", R_OK) == 0) {
          snprintf(cmd, sizeof cmd,
                   "/usr/bin/python3 tools/qat2onnx.py '%s' '%s' --form qoperator --fp32 '%s' >/dev/null",
                   path, f8t, f32t);
          t = system(cmd) == 0;
          if (t) graphs = "tools/qat2onnx.py --form qoperator (QGemm per layer; fp32 graph from --fp32)";
        }
        char *const argv[] = {"node", "bench/ort_peer.js", t ? f8t : f8, t ? f32t : f32, fnoop, fin,
                              rows_s, k_s, NULL};
        ort = ort_start(&peer, argv, reply, sizeof reply);
        if (!ort) bench_out("#    ONNX Runtime: not run (%s)\n", reply[0] ? reply : "node failed");
      }
    }
  }
  if (ort) {
    bench_out("#    ONNX Runtime: %s; graphs by %s;\n"
        "#    times taken inside node (bench/ort_peer.js): its process CPU time per call (the run happens\n"
        "#    on an ORT worker thread) and wall; ours: this thread's CPU time.\n",
        reply + 6, graphs);
    /* Sanity: ORT's int8 outputs are ours, float for float, at each batch. */
    for (size_t B = 1; B <= R; B *= 64) {
      model_case mc = {m, ctx, B, x, y};
      model_int8(&mc);
      char r[256];
      if (!ort_cmd(&peer, r, sizeof r, "check int8 %zu %s", B, fout)) {
        bench_out("#    ONNX Runtime check failed: %s\n", r);
        ort = false;
        break;
      }
      FILE *fo = fopen(fout, "rb");
      size_t got = fo ? fread(yo, sizeof(float), B * O, fo) : 0;
      if (fo) fclose(fo);
      size_t diff = 0;
      for (size_t i = 0; i < B * O; i++) diff += memcmp(&y[i], &yo[i], sizeof(float)) != 0;
      bench_out("#    check: ORT int8 outputs vs ours at batch %zu: %zu of %zu floats differ%s\n", B,
          got == B * O ? diff : B * O, B * O, got == B * O && diff == 0 ? " (bit-identical)" : "");
    }
  }
  for (size_t B = 1; B <= R; B *= 64) {
    model_case mc = {m, ctx, B, x, y};
    contender c[2] = {{model_int8, &mc, 0}, {model_fp32, &mc, 0}};
    int nc = blas_only ? 1 : 2, reps = quick ? 5 : REPEATS;
    if (blas_only) c[0] = c[1];
    if (!ort) {
      time_side_by_side(c, nc, reps, MIN_MS);
    } else {
      /* Interleaved with ORT: our contenders' calls per repeat calibrated
       * alone, ORT's so its repeat also takes ~MIN_MS*4 of CPU; then
       * round-robin repeats, ours then ORT's int8 then ORT's fp32. */
      size_t n[2];
      double t[2][REPEATS], ow[3][REPEATS], oc[3][REPEATS];
      for (int i = 0; i < nc; i++) {
        n[i] = 1;
        for (;;) {
          double t0 = bench_now_s();
          for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
          double ms = (bench_now_s() - t0) * 1e3;
          if (ms >= MIN_MS) break;
          n[i] = ms <= 0.01 ? n[i] * 16 : (size_t)((double)n[i] * MIN_MS / ms * 1.2) + 1;
        }
      }
      size_t on[3];
      const char *kinds[3] = {"int8", "fp32", "noop"};
      for (int k = 0; k < 3; k++) {
        double w, cp;
        if (!ort_time(&peer, kinds[k], B, 20, &w, &cp)) exit(1); /* warm-up + calibration */
        on[k] = (size_t)(MIN_MS * 4e3 / (cp > 0.5 ? cp : 0.5)) + 1;
      }
      for (int r = 0; r < reps; r++) {
        for (int i = 0; i < nc; i++) {
          double t0 = bench_now_s();
          for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
          t[i][r] = (bench_now_s() - t0) * 1e6 / (double)n[i];
        }
        for (int k = 0; k < 3; k++)
          if (!ort_time(&peer, kinds[k], B, on[k], &ow[k][r], &oc[k][r])) exit(1);
      }
      for (int i = 0; i < nc; i++) {
        qsort(t[i], (size_t)reps, sizeof(double), cmp_double);
        c[i].us = t[i][reps / 2];
      }
      double med[3][2];
      for (int k = 0; k < 3; k++) {
        qsort(ow[k], (size_t)reps, sizeof(double), cmp_double);
        qsort(oc[k], (size_t)reps, sizeof(double), cmp_double);
        med[k][0] = ow[k][reps / 2];
        med[k][1] = oc[k][reps / 2];
      }
      /* ORT's own time per run (its profiler's model_run, wall clock):
       * what it costs without node's per-call overhead. */
      double in_run[2] = {NAN, NAN};
      char prefix[700], r[256];
      for (int k = 0; k < 2; k++) {
        snprintf(prefix, sizeof prefix, "%s/ort-prof-%s", dir, kinds[k]);
        if (ort_cmd(&peer, r, sizeof r, "prof %s %zu %d %s", kinds[k], B, quick ? 200 : 1000, prefix))
          in_run[k] = atof(r);
      }
      /* ORT's CPU per node call, and minus a no-op graph's (the binding's
       * own cost): the estimate of its time per run, load-robust. */
      double est8 = med[0][1] - med[2][1], est32 = med[1][1] - med[2][1];
      bench_out("shipped model batch %2zu | qatserve int8 (%s) %7.2f us | ORT int8 %7.2f us (= %7.2f CPU per node call"
          " - %5.2f no-op call; %7.2f in-session wall) | ORT/ours %5.2fx\n",
          B, qat_kernel_name(), c[0].us, est8, med[0][1], med[2][1], in_run[0], est8 / c[0].us);
      bench_out("shipped model batch %2zu | qatserve fp32 (OpenBLAS) %7.2f us | ORT fp32 %7.2f us (= %7.2f CPU per node call"
          " - %5.2f no-op call; %7.2f in-session wall) | ORT/ours %5.2fx\n",
          B, c[1].us, est32, med[1][1], med[2][1], in_run[1], est32 / c[1].us);
      if (csv)
        fprintf(csv, "shipped,%zu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", B, c[0].us, c[1].us, est8,
                med[0][1], in_run[0], est32, med[1][1], med[2][1]);
      continue;
    }
    if (blas_only)
      bench_out("shipped model batch %2zu | qatserve fp32 (OpenBLAS %s) %7.2f us\n", B, qat_blas_corename(), c[0].us);
    else
      bench_out("shipped model batch %2zu | qatserve int8 (%s) %7.2f us | qatserve fp32 %7.2f us\n", B,
          qat_kernel_name(), c[0].us, c[1].us);
  }
  if (ort) ort_stop(&peer);
  qat_ctx_destroy(ctx);
  qat_model_destroy(m);
  qat__free_aligned(x);
  qat__free_aligned(y);
  qat__free_aligned(yo);
}

int main(int argc, char **argv) {
  const char *dir = "build/bench", *model = "models/fashion-mnist.safetensors";
  int quick = 0, blas_only = 0, use_ort = 1, shipped_only = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
      model = argv[++i];
    else if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--blas-only") == 0)
      blas_only = 1;
    else if (strcmp(argv[i], "--no-ort") == 0)
      use_ort = 0;
    else if (strcmp(argv[i], "--shipped-only") == 0)
      shipped_only = 1;
    else if (strcmp(argv[i], "--wall") == 0) /* default: this thread's CPU time (bench_util.h); */
      bench_clock = CLOCK_MONOTONIC;          /* OpenBLAS and oneDNN are held to this thread */
    else {
      fprintf(stderr, "usage: %s [--out DIR] [--quick] [--wall] [--model FILE] [--blas-only] [--no-ort] "
              "[--shipped-only]\n", argv[0]);
      return 2;
    }
  }
  /* OpenMP (oneDNN) reads its thread count when the library loads, so
   * re-run ourselves with it set if the caller did not. */
  const char *omp = getenv("OMP_NUM_THREADS");
  if (!omp || strcmp(omp, "1") != 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
  }
  if (qat_kernel_check() != QAT_OK) {
    fprintf(stderr, "bench_kernels: %s\n", qat_errmsg());
    return 2;
  }
  qat_blas_single_thread();
  char path[512];
  bench_report_open(dir, blas_only ? "kernels-blas.txt" : "kernels.txt", path, sizeof path);
  FILE *csv = NULL;
  if (!blas_only) {
    snprintf(path, sizeof path, "%s/kernels.csv", dir);
    csv = fopen(path, "w");
  }
  pick_tiers();
  time_t t = time(NULL);
  char host[64] = "?";
  gethostname(host, sizeof host);
  const char *ct = getenv("OPENBLAS_CORETYPE");
  bench_out("# reproduce: make bench-kernels   (or: build/bench_kernels%s%s)\n", quick ? " --quick" : "",
      blas_only ? " --blas-only" : "");
  bench_out("# bench_kernels on %s, %s", host, ctime(&t));
  bench_out("# cpu: %s\n# int8 tiers measured:", qat_cpu_features());
  for (size_t i = 0; i < ntiers; i++) bench_out(" %s", tiers[i]->name);
  bench_out(" (+ ref); library default: %s\n", qat_kernel_name());
  bench_out("# fp32 baseline: OpenBLAS core %s (OPENBLAS_CORETYPE=%s)\n", qat_blas_corename(), ct ? ct : "unset");
  /* Other processes share these cores; say how busy the machine was. */
  FILE *la = fopen("/proc/loadavg", "r");
  char load[64] = "?";
  if (la) {
    if (!fgets(load, sizeof load, la)) strcpy(load, "?\n");
    fclose(la);
  }
  bench_out("# load average at start (1/5/15 min ...): %s", load);
  bench_out("# single thread (OpenBLAS 1 thread, OMP_NUM_THREADS=1); median of %d repeats, each "
      ">= %.0f ms of calls, contenders interleaved repeat by repeat;\n# clock: %s\n",
      quick ? 5 : REPEATS, MIN_MS,
      bench_clock == CLOCK_MONOTONIC ? "wall (CLOCK_MONOTONIC)"
                                     : "this thread's CPU time (CLOCK_THREAD_CPUTIME_ID; --wall for wall-clock)");
  if (blas_only) {
    bench_out("# fp32 OpenBLAS only (sgemv at M = 1, sgemm otherwise), us per call:\n");
    for (int i = 0; i < NCASES; i++) {
      layer_case l;
      layer_setup(&l, &qat__kernels_ref, shapes[i / 4][0], shapes[i / 4][1], batches[i % 4]);
      double us = time_us(run_blas, &l, quick ? 5 : REPEATS, MIN_MS);
      bench_out("%5zu %5zu %4zu | fp32 %9.2f us %6.1f GOP/s\n", l.N, l.K, l.M, us, gops(l.M, l.N, l.K, us));
      layer_free(&l);
    }
    bench_mlp(NULL, 1, quick, 1);
    bench_mlp(NULL, 64, quick, 1);
    bench_shipped(NULL, model, dir, quick, 0, 1);
    bench_report_close();
    return 0;
  }
  if (shipped_only) { /* section 4 alone */
    bench_shipped(NULL, model, dir, quick, use_ort, 0);
    bench_report_close();
    if (csv) fclose(csv);
    return 0;
  }
  bench_peaks(quick);
  dnnl_result native[NCASES];
  dnnl_native_all(native, quick);
#ifdef HAVE_DNNL
  const dnnl_version_t *v = dnnl_version();
  bench_out("# 2. layers. dnnlN: oneDNN %d.%d.%d dnnl_gemm_u8s8s32 with every ISA it finds (AVX-512 VNNI here), in a\n"
      "#    separate process, fed x in 0..127 (its AVX2 path saturates above); 'wrong': its outputs that differ\n"
      "#    from the exact product on full-range x. Our tiers: x in 0..255, each checked equal to the reference.\n",
      v->major, v->minor, v->patch);
#else
  bench_out("# 2. layers (oneDNN not built: no <dnnl.h>). Our tiers: x in 0..255, each checked equal to the reference.\n");
#endif
  bench_out("#    ref: scalar reference. fp32: OpenBLAS sgemv (M = 1) / sgemm. GOP/s = 2*M*N*K / time.\n"
      "#    speedups (their time / %s's): fp32, dnnlN\n#    N     K    M |", ntiers ? tiers[0]->name : "-");
  for (size_t i = 0; i < ntiers; i++) bench_out(" %15s |", tiers[i]->name);
  bench_out("    ref us GOP/s |  fp32 us  GOP/s | dnnlN us  GOP/s |  fp32 dnnlN | dnnlN wrong\n");
  if (csv) {
    fprintf(csv, "N,K,M");
    for (size_t i = 0; i < ntiers; i++) fprintf(csv, ",%s_us,%s_gops", tiers[i]->name, tiers[i]->name);
    fprintf(csv, ",ref_us,openblas_fp32_us,openblas_fp32_gops,onednn_vnni_us,onednn_vnni_gops,"
                 "onednn_wrong_fullrange\n");
  }
  for (int i = 0; i < NCASES; i++)
    bench_layer(csv, shapes[i / 4][0], shapes[i / 4][1], batches[i % 4], quick, native[i]);
  if (csv) fclose(csv);
  snprintf(path, sizeof path, "%s/kernels_mlp.csv", dir);
  csv = fopen(path, "w");
  if (csv) fprintf(csv, "kind,what,batch,us,gops_or_extra...\n");
  bench_out("# 3. MLP 784-256-128-10 (random weights, 8-bit activations): quantize_u8, per layer gemm_u8s8 +\n"
      "#    requant_u8 (ReLU), last layer dequantized from int32; each tier's outputs checked equal to\n"
      "#    the reference tier's first. vs fp32 OpenBLAS gemv/gemm + bias + ReLU.\n");
  bench_mlp(csv, 1, quick, 0);
  bench_mlp(csv, 64, quick, 0);
  bench_shipped(csv, model, dir, quick, use_ort, 0);
  bench_report_close();
  if (csv) fclose(csv);
  return 0;
}
