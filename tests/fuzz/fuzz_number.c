/* fuzz_number.c - server/base/num.c against strtof, bit for bit.
 *
 * Input: byte 0 picks the mode; the rest is the data.
 *   even: the data is text; qs_num_parse reads one token at its start.
 *     - a token accepted must be valid JSON number grammar (checked here by
 *       an independent matcher) ending at the end of the text or at a
 *       delimiter, and strtof on a copy of exactly that token must consume
 *       all of it and return the same float bits (finite);
 *     - QS_NUM_NONFINITE: the token is NaN/Infinity/-Infinity, or strtof
 *       overflows to infinity on it;
 *     - QS_NUM_SYNTAX: the matcher refuses the text too, or the token is
 *       longer than QS_NUM_MAX_CHARS (and then it is never accepted);
 *     - on an error the position is unchanged.
 *   odd: the first 4 data bytes are a float's bits; qs_num_format's text
 *     must be at most 15 bytes and parse back (ours and strtof) to the
 *     same bits. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool dig(char c) { return c >= '0' && c <= '9'; }

/* Length of the JSON number at s[0..n), or 0 if there is none followed by
 * the end of the text or a delimiter. */
static size_t json_number_len(const char *s, size_t n) {
  size_t p = 0;
  if (p < n && s[p] == '-') p++;
  if (p >= n) return 0;
  if (s[p] == '0') {
    p++;
  } else if (dig(s[p])) {
    while (p < n && dig(s[p])) p++;
  } else {
    return 0;
  }
  if (p < n && s[p] == '.') {
    p++;
    if (p >= n || !dig(s[p])) return 0;
    while (p < n && dig(s[p])) p++;
  }
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    if (p >= n || !dig(s[p])) return 0;
    while (p < n && dig(s[p])) p++;
  }
  if (p < n && !strchr(" \t\n\r,]}", s[p])) return 0;
  if (p < n && s[p] == '\0') return 0;
  return p;
}

static void fail(const char *what, const char *s, size_t n) {
  fprintf(stderr, "number mismatch: %s: \"%.*s\"\n", what, (int)(n > 200 ? 200 : n), s);
  abort();
}

static void check_format(const uint8_t *d, size_t n) {
  uint32_t u = 0;
  memcpy(&u, d, n < 4 ? n : 4);
  float f;
  memcpy(&f, &u, 4);
  if (!isfinite(f)) return;
  char buf[QS_NUM_FORMAT_MAX + 1];
  size_t k = qs_num_format(buf, f);
  if (k > 15) fail("format too long", buf, k);
  buf[k] = '\0';
  float a = 0, b = strtof(buf, NULL);
  size_t pos = 0;
  if (qs_num_parse(buf, k, &pos, &a) != QS_NUM_OK || pos != k) fail("format refused", buf, k);
  if (memcmp(&a, &f, 4) || memcmp(&b, &f, 4)) fail("format does not round-trip", buf, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) {
    check_format(data + 1, size - 1);
    return 0;
  }
  size_t n = size - 1;
  /* the text in its own allocation of exactly n bytes (ASan sees overreads) */
  char *s = malloc(n ? n : 1);
  if (!s) return 0;
  memcpy(s, data + 1, n);
  size_t pos = 0;
  float f = 0;
  qs_num_status st = qs_num_parse(s, n, &pos, &f);
  size_t len = json_number_len(s, n);
  if (st != QS_NUM_OK && pos != 0) fail("position moved on an error", s, n);
  if (st == QS_NUM_OK) {
    if (!len || pos != len) fail("accepted what JSON refuses", s, n);
    if (len > QS_NUM_MAX_CHARS) fail("accepted a token over the length cap", s, n);
    char *t = malloc(len + 1);
    if (!t) abort();
    memcpy(t, s, len);
    t[len] = '\0';
    char *end;
    float want = strtof(t, &end);
    if (end != t + len) fail("strtof reads another token", s, n);
    if (!isfinite(want)) fail("accepted an overflow", s, n);
    if (memcmp(&f, &want, 4)) {
      fprintf(stderr, "got %a want %a\n", (double)f, (double)want);
      fail("value differs from strtof", s, n);
    }
    free(t);
  } else if (st == QS_NUM_NONFINITE) {
    const char *p = s;
    size_t m = n;
    if (m && *p == '-') p++, m--;
    bool named = (m >= 3 && !memcmp(p, "NaN", 3) && p == s) || (m >= 8 && !memcmp(p, "Infinity", 8));
    if (!named) {
      if (!len) fail("non-finite for a non-number", s, n);
      if (len > QS_NUM_MAX_CHARS) fail("non-finite for a token over the length cap", s, n);
      char *t = malloc(len + 1);
      if (!t) abort();
      memcpy(t, s, len);
      t[len] = '\0';
      float want = strtof(t, NULL);
      free(t);
      if (isfinite(want)) fail("non-finite but strtof is finite", s, n);
    }
  } else {
    if (len && len <= QS_NUM_MAX_CHARS) fail("refused a valid number", s, n);
  }
  free(s);
  return 0;
}
