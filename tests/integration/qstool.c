/* qstool.c - test-only helper for the integration tests: makes small random
 * models through core's public API and computes, through core, the outputs
 * the server must return for given inputs (the bit-for-bit reference).
 *
 *   qstool mkmodel OUT.safetensors 784,32,10 SEED [LABELPREFIX]
 *   qstool rows N K SEED            N rows of K numbers in [0, 1), one row a line
 *   qstool expect MODEL ROWSFILE [static|dynamic]
 *                                   int8 outputs ("%.9g", one row a line),
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
  rs = seed * 2654435761u + 1;
  uint32_t nl = (uint32_t)nd - 1;
  qat_layer_spec L[QAT_MAX_LAYERS];
  memset(L, 0, sizeof L);
  qat_model_spec s = {0};
  if (qat_qparams_from_range(0.0f, 1.0f, 8, false, &s.input)) return 1;
  for (uint32_t i = 0; i < nl; i++) {
    uint32_t K = dims[i], N = dims[i + 1];
    int8_t *wq = malloc((size_t)N * K);
    float *ws = malloc(N * sizeof *ws), *b = malloc(N * sizeof *b);
    for (size_t j = 0; j < (size_t)N * K; j++) wq[j] = (int8_t)((int)(rnd() % 255) - 127);
    for (uint32_t c = 0; c < N; c++) {
      ws[c] = (0.5f + unif()) / (127.0f * 8.0f);
      b[c] = (unif() - 0.5f) * 0.2f;
    }
    L[i] = (qat_layer_spec){.in_dim = K, .out_dim = N, .act = i + 1 < nl ? QAT_ACT_RELU : QAT_ACT_NONE,
                            .wq = wq, .w_scale = ws, .bias = b, .w_bits = 8};
    if (qat_qparams_from_range(i + 1 < nl ? 0.0f : -4.0f, 4.0f, 8, false, &L[i].out)) return 1;
  }
  s.n_layers = nl;
  s.layers = L;
  s.out_mode = QAT_OUT_DEQUANT_ACC;
  char **labels = NULL;
  if (lp) {
    labels = calloc(dims[nl], sizeof *labels);
    for (uint32_t c = 0; c < dims[nl]; c++) {
      labels[c] = malloc(strlen(lp) + 16);
      sprintf(labels[c], "%s%u", lp, c);
    }
    s.n_labels = dims[nl];
    s.labels = (const char *const *)labels;
  }
  const char *mk[] = {"accuracy_int8", "trained_by"};
  const char *mv[] = {"0.5", "qstool (random weights, tests only)"};
  s.n_meta = 2;
  s.meta_keys = mk;
  s.meta_values = mv;
  qat_model *m;
  qat_err e = qat_model_create(&s, &m);
  if (e) return die("create", e);
  e = qat_model_save(m, out);
  if (e) return die("save", e);
  qat_model_destroy(m);
  for (uint32_t i = 0; i < nl; i++) {
    free((void *)L[i].wq);
    free((void *)L[i].w_scale);
    free((void *)L[i].bias);
  }
  if (labels) {
    for (uint32_t c = 0; c < dims[nl]; c++) free(labels[c]);
    free(labels);
  }
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
      printf(j ? " %.9g" : "%.9g", (double)y[i * N + j]);
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
    size_t n = qat_kernels_available(t, 8, false);
    for (size_t i = 0; i < n; i++) printf("%s\n", t[i]->name);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "expect") == 0)
    return expect(argv[2], argv[3], argc > 4 && strcmp(argv[4], "dynamic") == 0);
  fprintf(stderr, "usage: qstool mkmodel OUT DIMS SEED [LABELPREFIX] | rows N K SEED | expect MODEL ROWSFILE [dynamic] | tiers\n");
  return 2;
}
