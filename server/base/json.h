/* json.h - the cheap half of request JSON: parsing number arrays exactly
 * into float, skipping a value by its brackets, and writing floats back so
 * that a client recovers the very same float.
 *
 * Why: jansson builds one json_t per number; a 784-number row costs hundreds
 * of microseconds, while the int8 model needs ~10. The envelope around the
 * numbers ("model", "mode", "id", ...) is read by json_walk.h, strictly and
 * without a tree. */
#ifndef QS_JSON_H
#define QS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting the structural walker accepts (jansson's own limit is
 * larger; a million '[' must fail fast, not recurse). */
#define QS_JSON_MAX_DEPTH 64

typedef enum qs_jerr {
  QS_JOK = 0,
  QS_JSYNTAX,     /* not JSON (400) */
  QS_JTYPE,       /* a string/null/bool/object where a number belongs (400) */
  QS_JNONFINITE,  /* NaN, Infinity, or a number beyond float's range (422) */
  QS_JWIDTH,      /* a row of the wrong width, ragged rows (422) */
  QS_JEMPTY,      /* no rows (422) */
  QS_JROWS,       /* more rows than allowed (413) */
  QS_JDEPTH,      /* nested deeper than allowed (400) */
} qs_jerr;

/* HTTP status for a parse error (400, 413 or 422). */
int qs_jerr_status(qs_jerr e);
const char *qs_jerr_str(qs_jerr e);

/* A byte range [off, off+len) of the body. */
typedef struct qs_span {
  size_t off, len;
} qs_span;

/* Finds where the JSON value starting at s[*pos] (after whitespace) ends,
 * leaving *pos just after it. Checks only strings and bracket nesting (at
 * most QS_JSON_MAX_DEPTH deep): the caller judges the bytes inside (the v2
 * decoder hands them to the number-array parser). */
qs_jerr qs_json_skip_value(const char *s, size_t n, size_t *pos);

/* Parses a matrix of numbers from s[0..n):
 *   [x, x, ...]            one row (flat)
 *   [[x, ...], [x, ...]]   rows
 * Every row must have exactly `width` numbers; at most max_rows rows;
 * out holds cap floats (the caller sizes it with qs_json_numbers_bound). With
 * width == 0 the flat form is taken as one row of any length up to cap
 * (used for KServe data whose shape is given separately); nested rows are
 * then flattened and must all have the first row's width.
 * *rows and *cols receive the shape; *errpos the byte offset of a failure. */
qs_jerr qs_json_parse_matrix(const char *s, size_t n, size_t width, size_t max_rows,
                             float *out, size_t cap, size_t *rows, size_t *cols,
                             size_t *errpos);

/* The same, for an array at the start of s[0..n) followed by anything:
 * *end receives the offset just past its closing bracket. */
qs_jerr qs_json_parse_matrix_prefix(const char *s, size_t n, size_t width, size_t max_rows,
                                    float *out, size_t cap, size_t *rows, size_t *cols,
                                    size_t *errpos, size_t *end);

/* The most numbers an array text of n bytes can hold: each number needs a
 * digit and a separator. Sizing a buffer with it never trusts a count sent
 * by the client. */
size_t qs_json_numbers_bound(size_t n);

/* One JSON number token (strict JSON grammar, or NaN/Infinity/-Infinity,
 * which are reported as QS_JNONFINITE) at s[*pos..n) to the nearest float,
 * exactly as strtof rounds (qs_num_parse). Leaves *pos after the token on
 * success, at its start on an error. */
qs_jerr qs_json_number(const char *s, size_t n, size_t *pos, float *out);

/* ---- output buffer --------------------------------------------------- */

/* A growable byte buffer with a hard cap: appending past the cap or failing
 * to grow sets .failed and further appends do nothing. The owner frees .data
 * (or takes it). */
typedef struct qs_buf {
  char *data;
  size_t len, size, cap;
  bool failed;
} qs_buf;

void qs_buf_init(qs_buf *b, size_t initial, size_t cap);
void qs_buf_free(qs_buf *b);
void qs_buf_put(qs_buf *b, const char *s, size_t n);
void qs_buf_puts(qs_buf *b, const char *s);
void qs_buf_printf(qs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with escapes (control chars as \u00XX). */
void qs_buf_json_str(qs_buf *b, const char *s);
/* An unsigned integer in decimal (what "%llu" writes, without printf). */
void qs_buf_uint(qs_buf *b, uint64_t v);
/* A non-negative time or ratio with 3 decimals, exactly as "%.3f" writes
 * it, without printf (a reply has four of them; vsnprintf cost ~0.2 us
 * each). Negative, huge or non-finite values go through printf. */
void qs_buf_fixed3(qs_buf *b, double v);
/* The shortest decimal that parses back to the same float (qs_num_format:
 * "0.1", "1e-05"); non-finite as null. */
void qs_buf_float(qs_buf *b, float v);
/* [v0, v1, ...] */
void qs_buf_float_array(qs_buf *b, const float *v, size_t n);

#endif
