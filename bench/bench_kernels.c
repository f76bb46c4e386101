/* bench_kernels.c - the int8 kernel tiers against OpenBLAS fp32 and oneDNN
 * int8, side by side in one run, single thread, medians over repeats.
 *
 *   build/bench_kernels [--out DIR] [--quick]
 *
 * Per layer shape (N outputs, K inputs) and batch M: microseconds per call
 * and GOP/s (2*M*N*K ops) of our chosen tier, the scalar reference, OpenBLAS
 * sgemv (M = 1) / sgemm, and oneDNN dnnl_gemm_u8s8s32 (when built with
 * HAVE_DNNL; fed activations 0..127, since it saturates above - this run
 * also counts its wrong answers on full-range inputs). Then the whole
 * 784-256-128-10 MLP, int8 (quantize, gemm + requant per layer, dequantize)
 * against fp32 OpenBLAS (gemv/gemm + bias + ReLU), and through the library
 * (qat_infer_int8 / qat_infer_fp32). Writes DIR/kernels.txt, DIR/kernels.csv
 * (the layer table) and DIR/kernels_mlp.csv (default DIR build/bench);
 * bench/plot_kernels.gp turns the CSV into DIR/kernels.png. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "internal.h"
#include "kernels.h"
#include "qat.h"

#ifdef HAVE_DNNL
#include <dnnl.h>
#endif

#define REPEATS 15
#define MIN_MS 2.0

static FILE *txt;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  if (txt) {
    va_start(ap, fmt);
    vfprintf(txt, fmt, ap);
    va_end(ap);
  }
  fflush(stdout);
}

/* This thread's CPU time by default: other processes share these two cores
 * and would otherwise add the time we sit descheduled to whatever runs then
 * (everything measured runs on this thread: OpenBLAS and oneDNN are held to
 * one thread). --wall measures wall-clock time instead. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static double now_s(void) {
  struct timespec t;
  clock_gettime(bench_clock, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) f(ctx);
    double ms = (now_s() - t0) * 1e3;
    if (ms >= min_ms || n > (1u << 24)) break;
    n = ms <= 0.01 ? n * 16 : (size_t)((double)n * min_ms / ms * 1.2) + 1;
  }
  double t[REPEATS];
  if (repeats > REPEATS) repeats = REPEATS;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) f(ctx);
    t[r] = (now_s() - t0) * 1e6 / (double)n;
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
      double t0 = now_s();
      for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
      double ms = (now_s() - t0) * 1e3;
      if (ms >= min_ms || n[i] > (1u << 24)) break;
      n[i] = ms <= 0.01 ? n[i] * 16 : (size_t)((double)n[i] * min_ms / ms * 1.2) + 1;
    }
  }
  for (int r = 0; r < repeats; r++)
    for (int i = 0; i < nc; i++) {
      double t0 = now_s();
      for (size_t k = 0; k < n[i]; k++) c[i].f(c[i].ctx);
      t[i][r] = (now_s() - t0) * 1e6 / (double)n[i];
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
  void *p = qat_malloc_aligned(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}

/* ---- one layer ----------------------------------------------------------- */

typedef struct layer_case {
  size_t M, N, K;
  const qat_kernels *kern;
  uint8_t *x, *x127;
  int8_t *w;
  void *wp;
  int32_t *acc;
  float *xf, *wf, *yf;
} layer_case;

static void run_ours(void *c) {
  layer_case *l = c;
  l->kern->gemm_u8s8(l->x, l->M, l->K, l->K, l->wp, l->N, l->acc);
}
static void run_ours127(void *c) {
  layer_case *l = c;
  l->kern->gemm_u8s8(l->x127, l->M, l->K, l->K, l->wp, l->N, l->acc);
}
static void run_ref(void *c) {
  layer_case *l = c;
  qat_kernels_ref.gemm_u8s8(l->x, l->M, l->K, l->K, l->w, l->N, l->acc);
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
  qat_free_aligned(l->x);
  qat_free_aligned(l->x127);
  qat_free_aligned(l->w);
  qat_free_aligned(l->wp);
  qat_free_aligned(l->acc);
  qat_free_aligned(l->xf);
  qat_free_aligned(l->wf);
  qat_free_aligned(l->yf);
}

/* oneDNN's time (x in 0..127) and its wrong outputs on full-range x. */
typedef struct dnnl_result {
  double us;
  long wrong;
} dnnl_result;

#ifdef HAVE_DNNL
static dnnl_result measure_dnnl(layer_case *l, const int32_t *truth, int reps) {
  dnnl_result r;
  r.us = time_us(run_dnnl, l, reps, MIN_MS);
  run_dnnl_on(l, l->x);
  r.wrong = 0;
  for (size_t i = 0; i < l->M * l->N; i++) r.wrong += l->acc[i] != truth[i];
  return r;
}
#endif

static void bench_layer(FILE *csv, const qat_kernels *kern, size_t N, size_t K, size_t M,
                        int quick, dnnl_result native) {
  layer_case l;
  layer_setup(&l, kern, N, K, M);

  /* Sanity, same data: ours equals the reference, on 0..127 (the 7-bit
   * path) and on 0..255; chk keeps the full-range truth for oneDNN. */
  int32_t *chk = xalloc(M * N * sizeof(int32_t));
  for (int pass = 0; pass < 2; pass++) {
    const uint8_t *xs = pass ? l.x : l.x127;
    l.kern->gemm_u8s8(xs, M, K, K, l.wp, N, chk);
    qat_kernels_ref.gemm_u8s8(xs, M, K, K, l.w, N, l.acc);
    if (memcmp(chk, l.acc, M * N * sizeof(int32_t)) != 0) {
      fprintf(stderr, "MISMATCH ours vs reference at N=%zu K=%zu M=%zu\n", N, K, M);
      exit(1);
    }
  }

  int reps = quick ? 5 : REPEATS;
  contender c[4] = {{run_ours, &l, 0}, {run_ours127, &l, 0}, {run_blas, &l, 0}};
  int nc = 3;
#ifdef HAVE_DNNL
  c[nc++] = (contender){run_dnnl, &l, 0};
#endif
  time_side_by_side(c, nc, reps, MIN_MS);
  double t_ours = c[0].us, t_o7 = c[1].us, t_blas = c[2].us;
  double ops = 2.0 * (double)M * (double)N * (double)K;
  /* The reference is slow: few repeats of a single call on big shapes. */
  double t_ref = ops > 5e7 ? time_us(run_ref, &l, 3, 0.0) : time_us(run_ref, &l, reps, MIN_MS);
  dnnl_result d2 = {NAN, -1};
#ifdef HAVE_DNNL
  d2.us = c[3].us;
  run_dnnl_on(&l, l.x); /* full range: count its wrong outputs */
  d2.wrong = 0;
  for (size_t i = 0; i < M * N; i++) d2.wrong += l.acc[i] != chk[i];
#endif
  double g = gops(M, N, K, t_ours);
  out("%5zu %5zu %4zu | %8.2f %6.1f | %8.2f %6.1f | %9.1f %5.1f | %8.2f %6.1f | %8.2f %6.1f | %8.2f %6.1f |"
      " %5.2fx %5.2fx %5.2fx | %6ld %6ld /%zu\n",
      N, K, M, t_ours, g, t_o7, gops(M, N, K, t_o7), t_ref, gops(M, N, K, t_ref), t_blas,
      gops(M, N, K, t_blas), d2.us, gops(M, N, K, d2.us), native.us, gops(M, N, K, native.us),
      t_blas / t_ours, d2.us / t_o7, native.us / t_o7, d2.wrong, native.wrong, M * N);
  if (csv)
    fprintf(csv, "%zu,%zu,%zu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%ld,%ld\n",
            N, K, M, t_ours, t_o7, t_ref, t_blas, d2.us, native.us, g, gops(M, N, K, t_o7),
            gops(M, N, K, t_ref), gops(M, N, K, t_blas), gops(M, N, K, d2.us),
            gops(M, N, K, native.us), d2.wrong, native.wrong);
  qat_free_aligned(chk);
  layer_free(&l);
}

static const size_t shapes[][2] = {{256, 784}, {128, 256}, {10, 128}, {1024, 1024}};
static const size_t batches[] = {1, 16, 64, 256};
#define NCASES 16

/* oneDNN with every ISA it finds (AVX-512 VNNI here), measured in a child
 * process before the parent limits its own oneDNN to AVX2 (the ISA limit is
 * process-wide and fixed at first use). Runs first, alone, then the parent
 * runs its table, so the two never share the cores. */
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
      layer_setup(&l, &qat_kernels_ref, shapes[i / 4][0], shapes[i / 4][1], batches[i % 4]);
      int32_t *truth = xalloc(l.M * l.N * sizeof(int32_t));
      l.kern->gemm_u8s8(l.x, l.M, l.K, l.K, l.wp, l.N, truth);
      dnnl_result r = measure_dnnl(&l, truth, quick ? 5 : REPEATS);
      if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
      qat_free_aligned(truth);
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

/* ---- the whole MLP ------------------------------------------------------- */

#define NL 3
static const size_t dims[NL + 1] = {784, 256, 128, 10};

typedef struct mlp {
  size_t rows;
  int32_t qmax; /* activation qmax: 255 (8-bit) or 127 (7-bit) */
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

static void bench_mlp(FILE *csv, const qat_kernels *kern, size_t rows, int bits, int quick) {
  mlp m = {.rows = rows, .kern = kern, .qmax = (1 << bits) - 1};
  rng = 0xfeedull + rows;
  m.in_q = (qat_qparams){.scale = 1.0f / (float)m.qmax, .zero_point = 0, .qmin = 0, .qmax = m.qmax};
  m.x = xalloc(rows * dims[0] * sizeof(float));
  for (size_t i = 0; i < rows * dims[0]; i++) m.x[i] = (float)(rnd() % 1000) / 1000.0f;
  m.acc = xalloc(rows * 256 * sizeof(int32_t));
  m.y = xalloc(rows * dims[NL] * sizeof(float));
  float in_s = m.in_q.scale;
  for (int i = 0; i < NL; i++) {
    size_t N = dims[i + 1], K = dims[i];
    int8_t *w = xalloc(N * K);
    m.wf[i] = xalloc(N * K * sizeof(float));
    m.bf[i] = xalloc(N * sizeof(float));
    m.bias[i] = xalloc(N * sizeof(int32_t));
    m.mult[i] = xalloc(N * sizeof(float));
    m.deq[i] = xalloc(N * sizeof(float));
    m.a[i] = xalloc(rows * K);
    m.h[i] = xalloc(rows * N * sizeof(float));
    m.wp[i] = xalloc(kern->packed_size(N, K));
    float w_s = 0.5f / (127.0f * sqrtf((float)K)), out_s = 4.0f / (float)m.qmax;
    m.zp[i + 1] = (m.qmax + 1) / 4;
    for (size_t k = 0; k < N * K; k++) {
      w[k] = (int8_t)((int)(rnd() % 255) - 127);
      m.wf[i][k] = (float)w[k] * w_s;
    }
    for (size_t c = 0; c < N; c++) {
      int32_t rowsum = 0;
      for (size_t k = 0; k < K; k++) rowsum += w[c * K + k];
      m.bf[i][c] = (float)((int)(rnd() % 200) - 100) * 1e-3f;
      int32_t bq = (int32_t)rintf(m.bf[i][c] * (1.0f / (w_s * in_s)));
      m.bias[i][c] = bq - m.zp[i] * rowsum;
      m.mult[i][c] = (w_s * in_s) * (1.0f / out_s);
      m.deq[i][c] = in_s * w_s;
    }
    kern->pack(w, N, K, m.wp[i]);
    qat_free_aligned(w);
    in_s = out_s;
  }
  int reps = quick ? 5 : REPEATS;
  contender c[2] = {{mlp_int8, &m, 0}, {mlp_fp32, &m, 0}};
  time_side_by_side(c, 2, reps, MIN_MS);
  double t8 = c[0].us, t32 = c[1].us;
  size_t macs = 0;
  for (int i = 0; i < NL; i++) macs += dims[i] * dims[i + 1];
  double g8 = 2.0 * (double)(macs * rows) / (t8 * 1e3),
         g32 = 2.0 * (double)(macs * rows) / (t32 * 1e3);
  out("MLP 784-256-128-10 %d-bit act. batch %3zu | int8 %8.2f us (%5.2f us/row, %5.1f GOP/s) | fp32 %8.2f us "
      "(%5.2f us/row, %5.1f GOP/s) | int8 speedup %5.2fx\n",
      bits, rows, t8, t8 / (double)rows, g8, t32, t32 / (double)rows, g32, t32 / t8);
  if (csv) fprintf(csv, "mlp%d,%zu,%.3f,%.3f,%.2f,%.2f\n", bits, rows, t8, t32, g8, g32);
  qat_free_aligned(m.x);
  qat_free_aligned(m.acc);
  qat_free_aligned(m.y);
  for (int i = 0; i < NL; i++) {
    qat_free_aligned(m.wf[i]);
    qat_free_aligned(m.bf[i]);
    qat_free_aligned(m.bias[i]);
    qat_free_aligned(m.mult[i]);
    qat_free_aligned(m.deq[i]);
    qat_free_aligned(m.a[i]);
    qat_free_aligned(m.h[i]);
    qat_free_aligned(m.wp[i]);
  }
}

/* ---- the same MLP through the library (qat_model_create, qat_infer_*) ---- */

typedef struct model_case {
  qat_model *m;
  qat_ctx *c;
  size_t rows;
  float *x, *y;
} model_case;

static void model_int8(void *p) {
  model_case *mc = p;
  if (qat_infer_int8(mc->m, mc->c, mc->x, mc->rows, mc->y) != QAT_OK) exit(1);
}
static void model_fp32(void *p) {
  model_case *mc = p;
  if (qat_infer_fp32(mc->m, mc->c, mc->x, mc->rows, mc->y) != QAT_OK) exit(1);
}

static void bench_model(FILE *csv, size_t rows, int quick) {
  qat_layer_spec L[NL];
  int8_t *wq[NL];
  float *ws[NL], *bias[NL];
  memset(L, 0, sizeof L);
  rng = 0xabcdefull;
  for (int i = 0; i < NL; i++) {
    size_t N = dims[i + 1], K = dims[i];
    wq[i] = xalloc(N * K);
    ws[i] = xalloc(N * sizeof(float));
    bias[i] = xalloc(N * sizeof(float));
    for (size_t k = 0; k < N * K; k++) wq[i][k] = (int8_t)((int)(rnd() % 255) - 127);
    for (size_t c = 0; c < N; c++) {
      ws[i][c] = 0.5f / (127.0f * sqrtf((float)K));
      bias[i][c] = (float)((int)(rnd() % 200) - 100) * 1e-3f;
    }
    L[i] = (qat_layer_spec){.in_dim = (uint32_t)K, .out_dim = (uint32_t)N,
                            .act = i + 1 < NL ? QAT_ACT_RELU : QAT_ACT_NONE, .wq = wq[i],
                            .w_scale = ws[i], .bias = bias[i], .w_bits = 8};
    if (qat_qparams_from_range(0.0f, 4.0f, 8, false, &L[i].out) != QAT_OK) exit(1);
  }
  qat_model_spec spec = {.n_layers = NL, .layers = L, .out_mode = QAT_OUT_DEQUANT_ACC};
  if (qat_qparams_from_range(0.0f, 1.0f, 8, false, &spec.input) != QAT_OK) exit(1);
  model_case mc = {.rows = rows};
  if (qat_model_create(&spec, &mc.m) != QAT_OK || qat_ctx_create(mc.m, rows, &mc.c) != QAT_OK) {
    out("model: %s\n", qat_errmsg());
    return;
  }
  mc.x = xalloc(rows * dims[0] * sizeof(float));
  mc.y = xalloc(rows * dims[NL] * sizeof(float));
  for (size_t i = 0; i < rows * dims[0]; i++) mc.x[i] = (float)(rnd() % 1000) / 1000.0f;
  contender c[2] = {{model_int8, &mc, 0}, {model_fp32, &mc, 0}};
  time_side_by_side(c, 2, quick ? 5 : REPEATS, MIN_MS);
  out("qat_infer_int8 vs qat_infer_fp32  batch %3zu | int8 %8.2f us (%5.2f us/row) | fp32 %8.2f us "
      "(%5.2f us/row) | int8 speedup %5.2fx\n",
      rows, c[0].us, c[0].us / (double)rows, c[1].us, c[1].us / (double)rows, c[1].us / c[0].us);
  if (csv) fprintf(csv, "model,%zu,%.3f,%.3f,,\n", rows, c[0].us, c[1].us);
  qat_ctx_destroy(mc.c);
  qat_model_destroy(mc.m);
  qat_free_aligned(mc.x);
  qat_free_aligned(mc.y);
  for (int i = 0; i < NL; i++) {
    qat_free_aligned(wq[i]);
    qat_free_aligned(ws[i]);
    qat_free_aligned(bias[i]);
  }
}

int main(int argc, char **argv) {
  const char *dir = "build/bench";
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--wall") == 0)
      bench_clock = CLOCK_MONOTONIC;
    else {
      fprintf(stderr, "usage: %s [--out DIR] [--quick] [--wall]\n", argv[0]);
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
  qat_blas_single_thread();
  mkdir(dir, 0755);
  char path[512];
  snprintf(path, sizeof path, "%s/kernels.txt", dir);
  txt = fopen(path, "w");
  snprintf(path, sizeof path, "%s/kernels.csv", dir);
  FILE *csv = fopen(path, "w");

  const qat_kernels *kern = qat_kernels_get();
  time_t t = time(NULL);
  char host[64] = "?";
  gethostname(host, sizeof host);
  out("# reproduce: make bench-kernels   (or: OMP_NUM_THREADS=1 build/bench_kernels%s)\n",
      quick ? " --quick" : "");
  out("# %s on %s, %s", "bench_kernels", host, ctime(&t));
  out("# kernel: %s   cpu: %s\n", kern->name, qat_cpu_features());
  /* Other processes share these cores; say how busy the machine was. */
  FILE *la = fopen("/proc/loadavg", "r");
  char load[64] = "?";
  if (la) {
    if (!fgets(load, sizeof load, la)) strcpy(load, "?\n");
    fclose(la);
  }
  out("# load average at start (1/5/15 min ...): %s", load);
  out("# single thread (OpenBLAS 1 thread, OMP_NUM_THREADS=1); median of %d repeats, each "
      ">= %.0f ms of calls, contenders interleaved repeat by repeat;\n# clock: %s\n",
      quick ? 5 : REPEATS, MIN_MS,
      bench_clock == CLOCK_MONOTONIC ? "wall (CLOCK_MONOTONIC)"
                                     : "this thread's CPU time (CLOCK_THREAD_CPUTIME_ID; --wall for wall-clock)");
  dnnl_result native[NCASES];
  dnnl_native_all(native, quick);
#ifdef HAVE_DNNL
  const dnnl_version_t *v = dnnl_version();
  int isa_ok = dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) == dnnl_success;
  out("# oneDNN %d.%d.%d dnnl_gemm_u8s8s32, fed x in 0..127 (it saturates above on AVX2):\n"
      "#   dnnl-avx2: limited to AVX2 (dnnl_set_max_cpu_isa%s), the same ISA as ours;\n"
      "#   dnnl-native: every ISA oneDNN finds here (AVX-512 VNNI when present), separate process.\n"
      "#   'wrong' columns: its outputs that differ from the exact product on full-range x (0..255).\n",
      v->major, v->minor, v->patch, isa_ok ? "" : " FAILED");
#else
  out("# oneDNN: not built (no <dnnl.h>)\n");
#endif
  out("# ours: x in 0..255 (exact widened path); ours7: the same kernel fed x in 0..127, as oneDNN is\n"
      "#   (it then takes its exact 7-bit vpmaddubsw path). ref: scalar reference. fp32: OpenBLAS\n"
      "#   sgemv (M = 1) / sgemm. GOP/s = 2*M*N*K / time.\n"
      "# speedups, their time / ours (>1 = ours faster): fp32 vs ours; dnnl2 and dnnlN vs ours7 (same inputs)\n");
  out("#    N     K    M |  ours us  GOP/s | ours7 us  GOP/s |    ref us GOP/s |  fp32 us  GOP/s | dnnl2 us  GOP/s | dnnlN us  GOP/s |"
      "  fp32 dnnl2 dnnlN | wrong: dnnl2 dnnlN /outputs\n");
  if (csv)
    fprintf(csv, "N,K,M,ours_us,ours_x127_us,ref_us,blas_us,dnnl_avx2_us,dnnl_native_us,ours_gops,"
                 "ours_x127_gops,ref_gops,blas_gops,dnnl_avx2_gops,dnnl_native_gops,"
                 "dnnl_avx2_wrong_fullrange,"
                 "dnnl_native_wrong_fullrange\n");
  for (int i = 0; i < NCASES; i++)
    bench_layer(csv, kern, shapes[i / 4][0], shapes[i / 4][1], batches[i % 4], quick, native[i]);
  /* MLP rows go to their own CSV so kernels.csv stays one table. */
  if (csv) fclose(csv);
  snprintf(path, sizeof path, "%s/kernels_mlp.csv", dir);
  csv = fopen(path, "w");
  if (csv) fprintf(csv, "kind,batch,int8_us,fp32_us,int8_gops,fp32_gops\n");
  out("# MLP: input quantized (quantize_u8), per layer gemm_u8s8 + requant_u8 (ReLU), last layer\n"
      "#   dequantized from int32; vs fp32 OpenBLAS gemv/gemm + bias + ReLU. Random weights; the\n"
      "#   7-bit rows use activations in 0..127 (a model trained with 7-bit activations).\n");
  bench_mlp(csv, kern, 1, 8, quick);
  bench_mlp(csv, kern, 64, 8, quick);
  bench_mlp(csv, kern, 1, 7, quick);
  bench_mlp(csv, kern, 64, 7, quick);
  out("# The library's own path (core/model.c: quantize, layers, dequantize; fp32 through OpenBLAS),\n"
      "#   random 784-256-128-10 model, 8-bit activations:\n");
  bench_model(csv, 1, quick);
  bench_model(csv, 64, quick);
  if (txt) fclose(txt);
  if (csv) fclose(csv);
  return 0;
}
