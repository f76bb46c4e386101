/* qstool.c - test-only helper for the integration tests: makes small random
 * models through core's public API and computes, through core, the outputs
 * the server must return for given inputs (the bit-for-bit reference).
 *
 *   qstool mkmodel OUT.safetensors 784,32,10 SEED [LABELPREFIX]
 *   qstool rows N K SEED            N rows of K numbers in [0, 1), one row a line
 *   qstool expect MODEL ROWSFILE [static|dynamic]
 *                                   int8 outputs (the server's own shortest
 *                                   round-trip text, server/base/num.c; one row a line),
 *                                   then the argmax and its label on the next
 *   qstool tiers                    the int8 kernel tiers this machine runs,
 *                                   fastest first, one a line (QAT_KERNEL values)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h" /* tests may list the tiers; not a public header */
#include "qat.h"
#include "../lib/model_fixture.h"
#include "../../server/base/num.h"

static uint64_t rs;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static float unif(void) { return (float)(rnd() >> 40) / (float)(1 << 24); }

static int die(const char *what, qat_err e) {
  fprintf(stderr, "qstool: %s: %s (%s)\n", what, qat_errmsg(), qat_err_name(e));
  return 1;
}

static int mkmodel(const char *out, const char *dims_s, unsigned long seed, const char *lp) {
  uint32_t dims[QAT_MAX_LAYERS + 1];
  size_t nd = 0;
  char *copy = strdup(dims_s), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t && nd <= QAT_MAX_LAYERS; t = strtok_r(NULL, ",", &save))
    dims[nd++] = (uint32_t)strtoul(t, NULL, 10);
  free(copy);
  if (nd < 2) {
    fprintf(stderr, "qstool: dims like 784,32,10\n");
    return 2;
  }
  /* The one test model maker (tests/lib/model_fixture.c). */
  static const char *const mk[] = {"accuracy_int8", "trained_by"};
  static const char *const mv[] = {"0.5", "qstool (random weights, tests only)"};
  fixture_opts o = {.label_prefix = lp, .n_meta = 2, .meta_keys = mk, .meta_values = mv};
  qat_fixture *f = fixture_create_opts(dims, (uint32_t)nd - 1, (uint32_t)seed, &o);
  if (!f) {
    fprintf(stderr, "qstool: out of memory\n");
    return 1;
  }
  qat_err e = fixture_save(f, out);
  fixture_destroy(f);
  if (e) return die("save", e);
  return 0;
}

static int rows(unsigned long n, unsigned long k, unsigned long seed) {
  rs = seed * 40503u + 7;
  for (unsigned long i = 0; i < n; i++) {
    for (unsigned long j = 0; j < k; j++) {
      float v = unif();
      /* Mix short decimals (the fast path) and full-precision ones. */
      if (j % 3 == 0)
        printf(j ? " %.3f" : "%.3f", (double)v);
      else
        printf(j ? " %.9g" : "%.9g", (double)v);
    }
    printf("\n");
  }
  return 0;
}

static int expect(const char *model, const char *rowsfile, bool dynamic) {
  qat_model *m;
  qat_err e = qat_model_load(model, &m);
  if (e) return die("load", e);
  size_t K = qat_model_in_dim(m), N = qat_model_out_dim(m), cap = 1024 * K, n = 0;
  float *x = malloc(cap * sizeof *x);
  FILE *f = fopen(rowsfile, "r");
  if (!f) {
    perror(rowsfile);
    return 1;
  }
  char tok[128];
  while (n < cap && fscanf(f, "%127s", tok) == 1) x[n++] = strtof(tok, NULL);
  fclose(f);
  if (n % K) {
    fprintf(stderr, "qstool: %zu numbers is not a multiple of %zu\n", n, K);
    return 1;
  }
  size_t R = n / K;
  float *y = malloc(R * N * sizeof *y);
  qat_ctx *c;
  if ((e = qat_ctx_create(m, 16, &c))) return die("ctx", e);
  e = dynamic ? qat_infer_dynamic(m, c, x, R, y) : qat_infer_int8(m, c, x, R, y);
  if (e) return die("infer", e);
  for (size_t i = 0; i < R; i++) {
    size_t best = 0;
    for (size_t j = 0; j < N; j++) {
      char t[QS_NUM_FORMAT_MAX];
      printf(j ? " %.*s" : "%.*s", (int)qs_num_format(t, y[i * N + j]), t);
      if (y[i * N + j] > y[i * N + best]) best = j;
    }
    const char *l = qat_model_label(m, (uint32_t)best);
    printf("\n%zu %s\n", best, l ? l : "-");
  }
  qat_ctx_destroy(c);
  qat_model_destroy(m);
  free(x);
  free(y);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5 && strcmp(argv[1], "mkmodel") == 0)
    return mkmodel(argv[2], argv[3], strtoul(argv[4], NULL, 10), argc > 5 ? argv[5] : NULL);
  if (argc == 5 && strcmp(argv[1], "rows") == 0)
    return rows(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
  if (argc == 2 && strcmp(argv[1], "tiers") == 0) {
    const qat_kernels *t[8];
    size_t n = qat__kernels_available(t, 8, false);
    for (size_t i = 0; i < n; i++) printf("%s\n", t[i]->name);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "expect") == 0)
    return expect(argv[2], argv[3], argc > 4 && strcmp(argv[4], "dynamic") == 0);
  fprintf(stderr, "usage: qstool mkmodel OUT DIMS SEED [LABELPREFIX] | rows N K SEED | expect MODEL ROWSFILE [dynamic] | tiers\n");
  return 2;
}
