/* run_core.c - runs float rows through libqat and prints the outputs, so the
 * torch test can compare core with PyTorch number for number.
 *
 *   run_core MODEL INPUTS.f32 ROWS [int8|fp32]
 *
 * INPUTS.f32 holds ROWS x in_dim little-endian float32. Prints one line per
 * row: the outputs with %.9g (enough digits to round-trip a float exactly).
 * int8 rows go through twice - in one call (chunked by a 64-row context) and
 * one row per call - and the tool fails unless both give identical bits:
 * integer answers must not depend on how requests are batched. (fp32 may:
 * one row goes through the tier's gemv_f32, a batch through OpenBLAS sgemm,
 * which round differently.) Exit 0 on success, 1 on any error (message on stderr). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qat.h"

#define CTX_ROWS 64

static int run(const qat_model *m, qat_ctx *c, int fp32, const float *x,
               size_t rows, float *y) {
  qat_err e = fp32 ? qat_infer_fp32(m, c, x, rows, y) : qat_infer_int8(m, c, x, rows, y);
  if (e != QAT_OK) {
    fprintf(stderr, "run_core: inference: %s: %s\n", qat_err_name(e), qat_errmsg());
    return -1;
  }
  return 0;
}

static float *read_rows(const char *path, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "run_core: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  float *x = malloc(n * sizeof *x);
  size_t got = x ? fread(x, sizeof *x, n, f) : 0;
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (!x || got != n || extra) {
    fprintf(stderr, "run_core: %s: expected exactly %zu floats\n", path, n);
    free(x);
    return NULL;
  }
  return x; /* the files are written little-endian; so is x86-64 */
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: run_core MODEL INPUTS.f32 ROWS [int8|fp32]\n");
    return 1;
  }
  char *end;
  errno = 0;
  unsigned long long rows = strtoull(argv[3], &end, 10);
  if (errno || *end || rows == 0 || rows > 1000000) {
    fprintf(stderr, "run_core: bad row count '%s'\n", argv[3]);
    return 1;
  }
  int fp32 = argc == 5 && strcmp(argv[4], "fp32") == 0;
  if (argc == 5 && !fp32 && strcmp(argv[4], "int8") != 0) {
    fprintf(stderr, "run_core: mode must be int8 or fp32\n");
    return 1;
  }

  qat_blas_single_thread();
  qat_model *m = NULL;
  qat_err e = qat_model_load(argv[1], &m);
  if (e != QAT_OK) {
    fprintf(stderr, "run_core: %s: %s: %s\n", argv[1], qat_err_name(e), qat_errmsg());
    return 1;
  }
  int rc = 1;
  qat_ctx *c = NULL;
  size_t in = qat_model_in_dim(m), out = qat_model_out_dim(m), n = (size_t)rows;
  float *x = read_rows(argv[2], n * in);
  float *y = malloc(n * out * sizeof *y), *y1 = malloc(out * sizeof *y1);
  if (!x || !y || !y1) goto done;
  e = qat_ctx_create(m, CTX_ROWS, &c);
  if (e != QAT_OK) {
    fprintf(stderr, "run_core: context: %s: %s\n", qat_err_name(e), qat_errmsg());
    goto done;
  }
  if (run(m, c, fp32, x, n, y)) goto done;
  for (size_t r = 0; r < n && !fp32; r++) {
    if (run(m, c, fp32, x + r * in, 1, y1)) goto done;
    if (memcmp(y1, y + r * out, out * sizeof *y1) != 0) {
      fprintf(stderr, "run_core: row %zu differs between batch-1 and batched calls\n", r);
      goto done;
    }
  }
  for (size_t r = 0; r < n; r++)
    for (size_t j = 0; j < out; j++)
      printf("%.9g%c", (double)y[r * out + j], j + 1 < out ? ' ' : '\n');
  rc = fflush(stdout) == 0 ? 0 : 1;
done:
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  free(x);
  free(y);
  free(y1);
  return rc;
}
