/* model_fixture.h - the one maker of random models for the C tests: the
 * unit suites, the fuzz targets (tests/fuzz/fuzz_server.h) and qstool
 * (tests/integration/qstool.c: `qstool mkmodel` for the shell tests).
 *
 * fixture_create builds a spec the way training would: fp32 weights,
 * per-channel symmetric int8 quantization, activation qparams calibrated by
 * running fp32 math on random inputs in [0, 1). Everything is derived from
 * the seed, so a failing test reproduces. Memory is plain malloc (not the
 * libqat hook), so allocation-failure walks see only libqat's allocations. */
#ifndef QAT_MODEL_FIXTURE_H
#define QAT_MODEL_FIXTURE_H

#include "qat.h"

typedef struct qat_fixture {
  qat_model_spec spec;
  qat_layer_spec layers[QAT_MAX_LAYERS];
  int8_t *wq[QAT_MAX_LAYERS];
  float *w_scale[QAT_MAX_LAYERS], *bias[QAT_MAX_LAYERS];
  float *w_fp32[QAT_MAX_LAYERS], *b_fp32[QAT_MAX_LAYERS];
  char **labels;
  const char *meta_keys[4], *meta_values[4];
  char seed_str[16];
} qat_fixture;

/* What differs between users: the class labels and the provenance meta. */
typedef struct fixture_opts {
  const char *label_prefix; /* labels PREFIX0..PREFIXn; NULL: no labels */
  uint32_t n_meta;          /* 0: trained_with=fixture and seed; else up to 4 */
  const char *const *meta_keys, *const *meta_values; /* must outlive the fixture */
} fixture_opts;

/* dims[0..n_layers]: 784, 256, 10 makes a 2-layer 784-256-10 model. ReLU
 * on every layer but the last; labels "c0".."cN"; meta trained_with and
 * seed. Returns NULL only when malloc fails. */
qat_fixture *fixture_create(const uint32_t *dims, uint32_t n_layers, uint32_t seed);
/* The same with other labels/meta (o == NULL: fixture_create's). */
qat_fixture *fixture_create_opts(const uint32_t *dims, uint32_t n_layers, uint32_t seed,
                                 const fixture_opts *o);
/* Builds the model (qat_model_create) and writes it to path. */
qat_err fixture_save(const qat_fixture *f, const char *path);
void fixture_destroy(qat_fixture *f);

/* Deterministic xorshift32 generator: uniform [0, 1) and integers. */
float fixture_uniform(uint32_t *state);
uint32_t fixture_next(uint32_t *state);
/* n values uniform in [lo, hi). */
void fixture_fill(uint32_t *state, float *x, size_t n, float lo, float hi);

#endif
