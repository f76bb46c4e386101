/* fuzz_idx.c - the IDX (MNIST format) reader, plain and gzip, from memory.
 *
 * Input: byte 0 picks n_classes (0 = from the labels, else 1..255), bytes
 * 1-2 the length of the images file (little-endian, capped by what is
 * there); then the images file's bytes, then the labels file's. Each file
 * gets its own exact-size allocation so ASan sees any over-read. Checks on
 * success: n >= 1 and n * dim floats present, every pixel finite in [0, 1]
 * and a multiple of 1/255 (it came from a byte), every label below
 * n_classes, n_classes within the cap and as asked. On failure: no output,
 * a message. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qat.h"
#include "qat_train.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 3) return 0;
  uint32_t classes = data[0];
  size_t ilen = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3;
  size -= 3;
  if (ilen > size) ilen = size;
  size_t llen = size - ilen;
  unsigned char *img = malloc(ilen ? ilen : 1), *lab = malloc(llen ? llen : 1);
  assert(img && lab);
  memcpy(img, data, ilen);
  memcpy(lab, data + ilen, llen);
  qat_dataset *d = NULL;
  qat_err e = qat_dataset_load_idx_mem(img, ilen, lab, llen, classes, &d);
  if (e != QAT_OK) {
    assert(d == NULL);
    assert(qat_errmsg()[0] != '\0');
  } else {
    assert(d && d->n >= 1 && d->dim >= 1);
    assert(d->n_classes >= 1 && d->n_classes <= QAT_DATA_MAX_CLASSES);
    if (classes) assert(d->n_classes == classes);
    /* dim pixels per image, each from one byte of the (inflated) file */
    for (size_t i = 0; i < d->n * (size_t)d->dim; i++) {
      float v = d->x[i];
      assert(isfinite(v) && v >= 0.0f && v <= 1.0f);
      float k = rintf(v * 255.0f);
      assert(fabsf(v * 255.0f - k) < 1e-3f);
    }
    for (size_t i = 0; i < d->n; i++) assert(d->y[i] < d->n_classes);
    qat_dataset_destroy(d);
  }
  free(img);
  free(lab);
  return 0;
}
