/* fuzz_csv.c - the CSV data set reader, from memory.
 *
 * Input: byte 0 picks the label column (0..7), byte 1 the divisor (255, 1,
 * 0.5, 1e-30, or invalid: 0, -1, NaN, inf), byte 2 n_classes (0 = from the
 * labels, else 1..15); the rest is the CSV text in an exact-size
 * allocation. Checks on success: a valid divisor was given, n >= 1,
 * dim >= 1, every feature finite, every label below n_classes and
 * n_classes as asked. On failure: no output, a message. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qat.h"
#include "qat_train.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 3) return 0;
  static const float divisors[8] = {255.0f, 1.0f, 0.5f, 1e-30f, 0.0f, -1.0f, NAN, INFINITY};
  qat_csv_opts o = {.label_col = data[0] % 8, .divisor = divisors[data[1] % 8],
                    .n_classes = data[2] % 16};
  size_t n = size - 3;
  char *buf = malloc(n ? n : 1);
  assert(buf);
  memcpy(buf, data + 3, n);
  qat_dataset *d = NULL;
  qat_err e = qat_dataset_load_csv_mem(buf, n, &o, &d);
  if (e != QAT_OK) {
    assert(d == NULL);
    assert(qat_errmsg()[0] != '\0');
  } else {
    assert(isfinite(o.divisor) && o.divisor > 0.0f);
    assert(d && d->n >= 1 && d->dim >= 1);
    assert(d->n_classes >= 1 && d->n_classes <= QAT_DATA_MAX_CLASSES);
    if (o.n_classes) assert(d->n_classes == o.n_classes);
    for (size_t i = 0; i < d->n * (size_t)d->dim; i++) assert(isfinite(d->x[i]));
    for (size_t i = 0; i < d->n; i++) assert(d->y[i] < d->n_classes);
    qat_dataset_destroy(d);
  }
  free(buf);
  return 0;
}
