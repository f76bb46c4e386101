/* fuzz_model.c - the model file loader must refuse any malformed input with an
 * error code and never crash, leak or read out of bounds; whatever it accepts
 * must be a usable model. The same bytes are also loaded from a file (a
 * memfd, through qat_model_load_file, which reads the header first and the
 * data only once the header holds up): both paths must give the same code
 * and, on success, the same checksum verdict. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qat.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int mfd = -1;
static char mpath[64];

static qat_err load_via_file(const unsigned char *data, size_t size, qat_model **m) {
  if (mfd < 0) {
    mfd = memfd_create("fuzz_model", MFD_CLOEXEC);
    assert(mfd >= 0);
    snprintf(mpath, sizeof mpath, "/proc/self/fd/%d", mfd);
  }
  assert(ftruncate(mfd, 0) == 0);
  assert(size == 0 || pwrite(mfd, data, size, 0) == (ssize_t)size);
  qat_file_info fi;
  qat_err e = qat_model_load_file(mpath, m, &fi);
  assert(fi.stat_ok && fi.size == size);
  return e;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  qat_model *m = NULL, *mf = NULL;
  qat_err e = qat_model_load_mem(data, size, &m);
  qat_err ef = load_via_file(data, size, &mf);
  assert(ef == e);
  if (mf) {
    assert(qat_model_checksummed(mf) == qat_model_checksummed(m));
    qat_model_destroy(mf);
  }
  if (e != QAT_OK) {
    assert(m == NULL);
    assert(qat_errmsg()[0] != '\0');
    return 0;
  }
  /* Accepted: dims chain, scales finite and positive, inference runs and
   * gives finite outputs for an in-range input. */
  uint32_t in = qat_model_in_dim(m), out = qat_model_out_dim(m);
  assert(in >= 1 && in <= QAT_MAX_DIM && out >= 1 && out <= QAT_MAX_DIM);
  uint32_t prev = in;
  for (uint32_t i = 0; i < qat_model_n_layers(m); i++) {
    qat_layer_info li;
    assert(qat_model_layer(m, i, &li) == QAT_OK);
    assert(li.in_dim == prev);
    prev = li.out_dim;
    assert(li.in.scale > 0.0f && isfinite(li.in.scale));
    assert(li.out.scale > 0.0f && isfinite(li.out.scale));
    for (uint32_t c = 0; c < li.out_dim; c++) assert(li.w_scale[c] > 0.0f && isfinite(li.w_scale[c]));
  }
  assert(prev == out);
  if ((size_t)in * out < (1u << 22)) {
    qat_ctx *c = NULL;
    float *x = calloc(in, sizeof *x), *y = calloc(out, sizeof *y);
    if (x && y && qat_ctx_create(m, 1, &c) == QAT_OK) {
      for (uint32_t k = 0; k < in; k++) x[k] = (float)(k % 7) * 0.25f;
      assert(qat_infer_int8(m, c, x, 1, y) == QAT_OK);
      for (uint32_t k = 0; k < out; k++) assert(!isnan(y[k]));
    }
    qat_ctx_destroy(c);
    free(x);
    free(y);
  }
  qat_model_destroy(m);
  return 0;
}
