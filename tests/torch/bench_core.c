/* bench_core.c - qatserve's side of `make bench-torch`: per-call latency of
 * the int8 path and the fp32 baseline at batch 1 and 64, and accuracy, for
 * one model file, printed as JSON for bench_torch.py to put next to PyTorch.
 *
 *   bench_core MODEL INPUTS.f32 ROWS LABELS.u8 [CALLS]
 *
 * Single thread (OpenBLAS forced to one). Each call takes the next rows of
 * the input set, so the input is not always hot in cache; the time of each
 * call is taken separately and the median reported, after a warm-up. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qat.h"

typedef qat_err (*infer_fn)(const qat_model *, qat_ctx *, const float *, size_t, float *);

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median per-call microseconds of f on batches of `batch` rows. */
static int time_calls(const qat_model *m, qat_ctx *c, infer_fn f, const float *x,
                      size_t rows, size_t batch, size_t calls, float *y, double *median) {
  size_t in = qat_model_in_dim(m), warm = calls / 10 + 10;
  double *t = malloc(calls * sizeof *t);
  if (!t) return -1;
  size_t r = 0;
  for (size_t i = 0; i < warm + calls; i++) {
    if (r + batch > rows) r = 0;
    double t0 = now_us();
    qat_err e = f(m, c, x + r * in, batch, y);
    double t1 = now_us();
    if (e != QAT_OK) {
      fprintf(stderr, "bench_core: %s: %s\n", qat_err_name(e), qat_errmsg());
      free(t);
      return -1;
    }
    if (i >= warm) t[i - warm] = t1 - t0;
    r += batch;
  }
  qsort(t, calls, sizeof *t, cmp_double);
  *median = calls % 2 ? t[calls / 2] : 0.5 * (t[calls / 2 - 1] + t[calls / 2]);
  free(t);
  return 0;
}

static double accuracy(const qat_model *m, qat_ctx *c, infer_fn f, const float *x,
                       const uint8_t *labels, size_t rows, float *y) {
  size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m), hit = 0;
  for (size_t r = 0; r < rows; r += 64) {
    size_t n = rows - r < 64 ? rows - r : 64;
    if (f(m, c, x + r * in, n, y) != QAT_OK) return -1;
    for (size_t i = 0; i < n; i++) {
      size_t best = 0;
      for (size_t j = 1; j < out; j++)
        if (y[i * out + j] > y[i * out + best]) best = j;
      hit += best == labels[r + i];
    }
  }
  return (double)hit / (double)rows;
}

static void *read_file(const char *path, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "bench_core: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *p = malloc(n ? n : 1);
  size_t got = p ? fread(p, 1, n, f) : 0;
  fclose(f);
  if (!p || got != n) {
    fprintf(stderr, "bench_core: %s: expected %zu bytes\n", path, n);
    free(p);
    return NULL;
  }
  return p;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6) {
    fprintf(stderr, "usage: bench_core MODEL INPUTS.f32 ROWS LABELS.u8 [CALLS]\n");
    return 1;
  }
  char *end;
  unsigned long rows = strtoul(argv[3], &end, 10);
  unsigned long calls = argc == 6 ? strtoul(argv[5], NULL, 10) : 2000;
  if (*end || rows < 64 || rows > 1000000 || calls < 10 || calls > 10000000) {
    fprintf(stderr, "bench_core: bad ROWS (>= 64) or CALLS\n");
    return 1;
  }
  qat_blas_single_thread();
  qat_model *m = NULL;
  if (qat_model_load(argv[1], &m) != QAT_OK) {
    fprintf(stderr, "bench_core: %s: %s\n", argv[1], qat_errmsg());
    return 1;
  }
  int rc = 1;
  qat_ctx *c = NULL;
  size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m);
  float *x = read_file(argv[2], rows * in * sizeof(float));
  uint8_t *labels = read_file(argv[4], rows);
  float *y = malloc(64 * out * sizeof *y);
  if (!x || !labels || !y || qat_ctx_create(m, 64, &c) != QAT_OK) goto done;

  double t[2][2]; /* [int8, fp32][batch 1, 64] */
  infer_fn fns[2] = {qat_infer_int8, qat_infer_fp32};
  size_t batches[2] = {1, 64};
  for (int i = 0; i < 2; i++)
    for (int b = 0; b < 2; b++)
      if (time_calls(m, c, fns[i], x, rows, batches[b], b ? calls / 8 + 10 : calls, y,
                     &t[i][b]))
        goto done;
  double acc8 = accuracy(m, c, qat_infer_int8, x, labels, rows, y);
  double acc32 = accuracy(m, c, qat_infer_fp32, x, labels, rows, y);
  printf("{\"kernel\": \"%s\", \"int8_b1_us\": %.3f, \"int8_b64_us\": %.3f, "
         "\"fp32_b1_us\": %.3f, \"fp32_b64_us\": %.3f, \"int8_accuracy\": %.6f, "
         "\"fp32_accuracy\": %.6f}\n",
         qat_kernel_name(), t[0][0], t[0][1], t[1][0], t[1][1], acc8, acc32);
  rc = 0;
done:
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  free(x);
  free(labels);
  free(y);
  return rc;
}
