/* num.h - one JSON number token to float32 and back, exactly.
 *
 * qs_num_parse reads a strict JSON number to the float strtof would give
 * (correctly rounded, round-half-even), mostly without calling strtof;
 * qs_num_format writes the shortest decimal that reads back as the same
 * float. A leaf: it depends on nothing else in the server. */
#ifndef QS_NUM_H
#define QS_NUM_H

#include <stddef.h>

typedef enum qs_num_status {
  QS_NUM_OK = 0,
  QS_NUM_SYNTAX,    /* not a JSON number (or a token over QS_NUM_MAX_CHARS) */
  QS_NUM_NONFINITE, /* NaN, Infinity, -Infinity, or beyond float's range */
} qs_num_status;

/* Longer tokens are refused as syntax errors (documented in docs/api.md;
 * the strtof fallback copies a token to the stack). */
#define QS_NUM_MAX_CHARS 511

/* One JSON number token at s[*pos..n) (strict grammar; NaN/Infinity/
 * -Infinity are recognised and reported as QS_NUM_NONFINITE). The token
 * must be followed by the end of the text, whitespace, ',', ']' or '}'.
 * On QS_NUM_OK *out is the float nearest the decimal (ties to even, as
 * strtof) and *pos is just past the token; on an error *pos is unchanged
 * (the token's start), so error offsets point at the token. */
qs_num_status qs_num_parse(const char *s, size_t n, size_t *pos, float *out);

/* Longest text qs_num_format writes, e.g. "-1.17549435e-38" (15 bytes),
 * plus room to spare. */
#define QS_NUM_FORMAT_MAX 24

/* Writes the finite float v into dst (no NUL) and returns its length: the
 * shortest decimal that parses back to v (of those, the nearest to v), in
 * printf "%g" layout with precision 9: fixed notation for decimal exponents
 * -5 < X < 9 ("0.1", "-2.5", "123456790", "0.00012"), otherwise scientific
 * with a signed exponent of at least two digits ("1e-05", "3.4028235e+38").
 * Zero is "0" or "-0". Non-finite values are the caller's business. */
size_t qs_num_format(char *dst, float v);

#endif
