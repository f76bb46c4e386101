/* fuzz_matrix.c - server/base/json.c's number-matrix scanner (the hot half of
 * both request parsers), called directly.
 *
 * Input: byte 0 picks the width (0 = shape from the text, else 1..7),
 * byte 1 the row cap (0..15), byte 2 the float capacity (0..63); the rest
 * is the array text, in its own allocation of exactly that size. Checks:
 *   - the scanner never reads past the text or writes past cap floats
 *     (ASan; the buffer is exactly cap floats);
 *   - on success: jansson accepts the same text as JSON, its shape is the
 *     reported rows x cols (flat = one row), rows <= cap, rows * cols <= cap
 *     floats, width respected, and each float is finite and is the double
 *     jansson read rounded to float (or its neighbour: jansson rounds the
 *     decimal to double first, which can move a float halfway case);
 *   - on failure: errpos lies inside the text. */
#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(json_t *v, float f) {
  assert(json_is_number(v));
  assert(isfinite(f));
  double d = json_number_value(v);
  float g = (float)d;
  if (f == g) return;
  /* a decimal within half a float ulp of a float halfway point */
  if (f == nextafterf(g, INFINITY) || f == nextafterf(g, -INFINITY)) return;
  /* zero's sign: "-0" and tiny negatives underflow to -0.0f */
  if (f == 0.0f && g == 0.0f) return;
  fprintf(stderr, "number mismatch: scanner %.9g, jansson %.17g\n", (double)f, d);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t width = data[0] % 8, max_rows = data[1] % 16, cap = data[2] % 64;
  size_t n = size - 3;
  char *s = malloc(n ? n : 1);
  float *out = malloc((cap ? cap : 1) * sizeof *out);
  assert(s && out);
  memcpy(s, data + 3, n);
  size_t rows = 0, cols = 0, errpos = 0;
  qs_jerr e = qs_json_parse_matrix(s, n, width, max_rows, out, cap, &rows, &cols, &errpos);
  if (e != QS_JOK) {
    assert(errpos <= n);
    assert(qs_jerr_status(e) == 400 || qs_jerr_status(e) == 413 || qs_jerr_status(e) == 422);
  } else {
    assert(rows >= 1 && rows <= max_rows && cols >= 1);
    assert(rows * cols <= cap);
    if (width) assert(cols == width);
    json_error_t je;
    json_t *root = json_loadb(s, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    if (!root) {
      fprintf(stderr, "scanner accepted what jansson refuses (%s): %.*s\n", je.text, (int)n, s);
      abort();
    }
    assert(json_is_array(root));
    if (!json_is_array(json_array_get(root, 0))) {
      assert(rows == 1 && json_array_size(root) == cols);
      for (size_t j = 0; j < cols; j++) check_value(json_array_get(root, j), out[j]);
    } else {
      assert(json_array_size(root) == rows);
      for (size_t i = 0; i < rows; i++) {
        json_t *row = json_array_get(root, i);
        assert(json_is_array(row) && json_array_size(row) == cols);
        for (size_t j = 0; j < cols; j++) check_value(json_array_get(row, j), out[i * cols + j]);
      }
    }
    json_decref(root);
  }
  free(s);
  free(out);
  return 0;
}
