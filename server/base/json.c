/* json.c - parsing number arrays without a tree.
 * Each number token goes to server/base/num.c (exact, strtof-identical parsing;
 * shortest round-trip printing). */
#include "json.h"

#include "num.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qs_jerr_status(qs_jerr e) {
  switch (e) {
    case QS_JOK: return 200;
    case QS_JNONFINITE:
    case QS_JWIDTH:
    case QS_JEMPTY: return 422;
    case QS_JROWS: return 413;
    default: return 400;
  }
}

const char *qs_jerr_str(qs_jerr e) {
  switch (e) {
    case QS_JOK: return "ok";
    case QS_JSYNTAX: return "malformed JSON";
    case QS_JTYPE: return "expected a number";
    case QS_JNONFINITE: return "non-finite or out-of-range number";
    case QS_JWIDTH: return "wrong input width";
    case QS_JEMPTY: return "no input rows";
    case QS_JROWS: return "too many input rows";
    case QS_JDEPTH: return "JSON nested too deeply";
  }
  return "?";
}

static inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

static inline size_t skip_ws(const char *s, size_t n, size_t p) {
  while (p < n && is_ws(s[p])) p++;
  return p;
}

/* ---- structure --------------------------------------------------------- */

/* Leaves *pos after the closing quote. Escapes are checked only for shape:
 * what is skipped is judged by the caller. */
static qs_jerr skip_string(const char *s, size_t n, size_t *pos) {
  size_t p = *pos + 1; /* past the opening quote */
  while (p < n) {
    unsigned char c = (unsigned char)s[p];
    if (c == '"') {
      *pos = p + 1;
      return QS_JOK;
    }
    if (c < 0x20) return QS_JSYNTAX;
    if (c == '\\') {
      if (p + 1 >= n) return QS_JSYNTAX;
      p += 2;
      continue;
    }
    p++;
  }
  return QS_JSYNTAX;
}

static const bool structural[256] = {['"'] = true, ['['] = true, [']'] = true,
                                     ['{'] = true, ['}'] = true};

/* Finds where the value starting at s[*pos] ends. Deliberately lenient
 * inside the value: it tracks strings (with escapes) and bracket nesting
 * (matched, depth-limited) and nothing else, so it runs at memory speed.
 * That is safe because every byte it skips is judged later: the v2 decoder
 * skips a "data" value the number-array parser refused, to parse it again
 * once the shape is known. */
static qs_jerr skip_value_depth(const char *s, size_t n, size_t *pos, int depth) {
  size_t p = skip_ws(s, n, *pos);
  if (p >= n) return QS_JSYNTAX;
  char c = s[p];
  qs_jerr e;
  if (c == '"') {
    if ((e = skip_string(s, n, &p))) return e;
    *pos = p;
    return QS_JOK;
  }
  if (c != '[' && c != '{') {
    /* A scalar: runs to the next delimiter. */
    size_t q = p;
    while (q < n && !is_ws(s[q]) && s[q] != ',' && s[q] != ']' && s[q] != '}' && s[q] != ':' &&
           s[q] != '"' && s[q] != '[' && s[q] != '{')
      q++;
    if (q == p) return QS_JSYNTAX;
    *pos = q;
    return QS_JOK;
  }
  char stack[QS_JSON_MAX_DEPTH];
  int top = 0;
  if (depth >= QS_JSON_MAX_DEPTH) return QS_JDEPTH;
  int room = QS_JSON_MAX_DEPTH - depth;
  stack[top++] = c == '[' ? ']' : '}';
  p++;
  while (p < n) {
    /* Most bytes are digits, commas and spaces: skip them a table lookup
     * at a time. */
    while (p < n && !structural[(unsigned char)s[p]]) p++;
    if (p >= n) break;
    c = s[p];
    if (c == '"') {
      if ((e = skip_string(s, n, &p))) return e;
      continue;
    }
    if (c == '[' || c == '{') {
      if (top >= room) return QS_JDEPTH;
      stack[top++] = c == '[' ? ']' : '}';
    } else if (c == ']' || c == '}') {
      if (stack[--top] != c) return QS_JSYNTAX;
      if (top == 0) {
        *pos = p + 1;
        return QS_JOK;
      }
    }
    p++;
  }
  return QS_JSYNTAX;
}

qs_jerr qs_json_skip_value(const char *s, size_t n, size_t *pos) {
  return skip_value_depth(s, n, pos, 0);
}

/* ---- numbers ----------------------------------------------------------- */

qs_jerr qs_json_number(const char *s, size_t n, size_t *pos, float *out) {
  switch (qs_num_parse(s, n, pos, out)) {
    case QS_NUM_OK: return QS_JOK;
    case QS_NUM_NONFINITE: return QS_JNONFINITE;
    default: return QS_JSYNTAX;
  }
}

size_t qs_json_numbers_bound(size_t n) { return n / 2 + 1; }

static const float pow10f[8] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f};

/* The common short token ("0", "1", "0.466667", "-0.25"), inline in the
 * row loop (a call into num.c costs as much again): an integer part of at
 * most 7 digits, a fraction of at most 7, no exponent, and the digits read
 * as one integer m <= 2^24. m and 10^k (k <= 7) are exact floats, so one
 * float division rounds correctly (step 1 of num.c).
 * Anything else - including every malformed token - returns false and
 * takes the general path, which also reports the error.
 *
 * The fraction is read 8 bytes at a time when the buffer allows: x = bytes
 * ^ '0' holds digit values 0..9 in digit bytes; ((x + 0x76) | x) & 0x80 per
 * byte flags the non-digits. A carry out of a byte only comes from a flagged
 * byte, so the lowest flag - the end of the digits - is always right. */
static const uint32_t pow10u[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

static inline uint32_t swar8_value(uint64_t x) {
  /* x: 8 digit values, first digit in the lowest byte. */
  x = (x * 10) + (x >> 8);
  x = (((x & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((x >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >> 32;
  return (uint32_t)x;
}

static inline bool number_short(const char *s, size_t n, size_t *pos, float *out) {
  size_t p = *pos;
  bool neg = false;
  if (p < n && s[p] == '-') {
    neg = true;
    p++;
  }
  uint32_t ip = 0;
  int idig = 0;
  if (p < n && s[p] == '0') {
    p++;
  } else {
    while (p < n && is_digit(s[p])) {
      ip = ip * 10 + (uint32_t)(s[p++] - '0');
      if (++idig > 7) return false;
    }
    if (idig == 0) return false;
  }
  uint32_t m = ip;
  int frac = 0;
  if (p < n && s[p] == '.') {
    p++;
    if (n - p >= 8) {
      uint64_t v;
      memcpy(&v, s + p, 8);
      uint64_t x = v ^ 0x3030303030303030ull;
      uint64_t flags = ((x + 0x7676767676767676ull) | x) & 0x8080808080808080ull;
      if (!flags) return false; /* 8 or more fraction digits */
      frac = __builtin_ctzll(flags) >> 3;
      if (frac == 0) return false;
      uint64_t y = x << (8 * (8 - frac)); /* leading zero digits */
      uint64_t mm = (uint64_t)ip * pow10u[frac] + swar8_value(y);
      if (mm > (1u << 24)) return false;
      m = (uint32_t)mm;
      p += (size_t)frac;
    } else {
      size_t f0 = p;
      uint64_t mm = ip;
      while (p < n && is_digit(s[p])) {
        mm = mm * 10 + (uint64_t)(s[p++] - '0');
        if (++frac > 7) return false;
      }
      if (p == f0 || mm > (1u << 24)) return false;
      m = (uint32_t)mm;
    }
  } else if (m > (1u << 24)) {
    return false;
  }
  if (p >= n || !(s[p] == ',' || s[p] == ']' || is_ws(s[p]))) return false;
  float f = (float)m;
  if (frac) f /= pow10f[frac];
  *out = neg ? -f : f;
  *pos = p;
  return true;
}

/* An element that is not a number: say whether it is a wrong type (400 with
 * a clear message) or plain garbage. */
static qs_jerr classify_non_number(char c) {
  if (c == '"' || c == 't' || c == 'f' || c == 'n' || c == '{' || c == '[') return QS_JTYPE;
  return QS_JSYNTAX;
}

/* Parses the numbers of one row, from its first element through its closing
 * ']', appending to out[*count...]: at most cap numbers in all and at most
 * limit in this row (0 = no limit). *rc = numbers in this row; *pos ends
 * after the ']', or where the error is. */
static qs_jerr parse_row(const char *s, size_t n, size_t *pos, size_t limit, float *out,
                         size_t cap, size_t *count, size_t *rc) {
  size_t p = *pos;
  qs_jerr e = QS_JOK;
  *rc = 0;
  for (;;) {
    p = skip_ws(s, n, p);
    if (p >= n) {
      e = QS_JSYNTAX;
      break;
    }
    if (!(s[p] == '-' || is_digit(s[p]) || s[p] == 'N' || s[p] == 'I')) {
      e = classify_non_number(s[p]);
      break;
    }
    if (limit && *rc >= limit) {
      e = QS_JWIDTH;
      break;
    }
    if (*count >= cap) {
      e = QS_JROWS;
      break;
    }
    /* On an error p stays at the token's start: error offsets point at
     * the start of the offending number (NaN and 1e999 alike). */
    if (!number_short(s, n, &p, &out[*count]) && (e = qs_json_number(s, n, &p, &out[*count])))
      break;
    (*count)++;
    (*rc)++;
    p = skip_ws(s, n, p);
    if (p >= n) {
      e = QS_JSYNTAX;
      break;
    }
    if (s[p] == ',') {
      p++;
      continue;
    }
    if (s[p] == ']') {
      p++;
      break;
    }
    e = QS_JSYNTAX;
    break;
  }
  *pos = p;
  return e;
}

/* Rows of a nested matrix, from just past its '[' to just past its ']':
 * each a non-empty row of the same width (*w, 0 = set by the first row),
 * at most max_rows. *pos ends where parsing stopped (the error's place). */
static qs_jerr parse_rows(const char *s, size_t n, size_t *pos, size_t max_rows, float *out,
                          size_t cap, size_t *count, size_t *nrows, size_t *w) {
  size_t p = *pos;
  qs_jerr e = QS_JOK;
  for (;;) {
    p = skip_ws(s, n, p);
    if (p >= n) {
      e = QS_JSYNTAX;
      break;
    }
    if (s[p] != '[') {
      e = s[p] == '-' || is_digit(s[p]) ? QS_JTYPE : classify_non_number(s[p]);
      break;
    }
    if (*nrows >= max_rows) {
      e = QS_JROWS;
      break;
    }
    p = skip_ws(s, n, p + 1);
    size_t rc = 0;
    if (p < n && s[p] == ']') {
      p++;
    } else if ((e = parse_row(s, n, &p, *w, out, cap, count, &rc))) {
      break;
    }
    if (rc == 0 || (*w && rc != *w)) {
      e = QS_JWIDTH;
      break;
    }
    if (!*w) *w = rc;
    (*nrows)++;
    p = skip_ws(s, n, p);
    if (p < n && s[p] == ',') {
      p++;
      continue;
    }
    if (p < n && s[p] == ']') {
      p++;
      break;
    }
    e = QS_JSYNTAX;
    break;
  }
  *pos = p;
  return e;
}

static qs_jerr parse_matrix(const char *s, size_t n, size_t width, size_t max_rows, float *out,
                            size_t cap, size_t *rows, size_t *cols, size_t *errpos, bool whole,
                            size_t *end) {
  size_t p = skip_ws(s, n, 0), count = 0, nrows = 0, w = width;
  qs_jerr e;
#define FAIL(code)  \
  do {              \
    *errpos = p;    \
    return (code);  \
  } while (0)
  if (p >= n) FAIL(QS_JSYNTAX);
  if (s[p] != '[') FAIL(s[p] == '-' || is_digit(s[p]) ? QS_JTYPE : classify_non_number(s[p]));
  p = skip_ws(s, n, p + 1);
  if (p >= n) FAIL(QS_JSYNTAX);
  if (s[p] == ']') FAIL(QS_JEMPTY);
  bool nested = s[p] == '[';
  if (!nested) {
    /* One flat row. */
    if (max_rows < 1) FAIL(QS_JROWS);
    size_t rc;
    if ((e = parse_row(s, n, &p, width, out, cap, &count, &rc))) FAIL(e);
    if (width && count != width) FAIL(QS_JWIDTH);
    nrows = 1;
    w = count;
  } else {
    if ((e = parse_rows(s, n, &p, max_rows, out, cap, &count, &nrows, &w))) FAIL(e);
  }
  if (whole) {
    p = skip_ws(s, n, p);
    if (p != n) FAIL(QS_JSYNTAX);
  }
#undef FAIL
  *rows = nrows;
  *cols = w;
  if (end) *end = p;
  return QS_JOK;
}

qs_jerr qs_json_parse_matrix(const char *s, size_t n, size_t width, size_t max_rows,
                             float *out, size_t cap, size_t *rows, size_t *cols,
                             size_t *errpos) {
  return parse_matrix(s, n, width, max_rows, out, cap, rows, cols, errpos, true, NULL);
}

qs_jerr qs_json_parse_matrix_prefix(const char *s, size_t n, size_t width, size_t max_rows,
                                    float *out, size_t cap, size_t *rows, size_t *cols,
                                    size_t *errpos, size_t *end) {
  return parse_matrix(s, n, width, max_rows, out, cap, rows, cols, errpos, false, end);
}

/* ---- output ------------------------------------------------------------ */

void qs_buf_init(qs_buf *b, size_t initial, size_t cap) {
  b->len = 0;
  b->cap = cap;
  b->failed = false;
  b->size = initial < cap ? initial : cap;
  b->data = malloc(b->size + 1);
  if (!b->data) {
    b->size = 0;
    b->failed = true;
  } else {
    b->data[0] = '\0';
  }
}

void qs_buf_free(qs_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->size = 0;
}

static bool buf_reserve(qs_buf *b, size_t extra) {
  if (b->failed) return false;
  if (extra > b->cap - b->len) {
    b->failed = true;
    return false;
  }
  size_t need = b->len + extra;
  if (need <= b->size) return true;
  size_t ns = b->size ? b->size : 64;
  while (ns < need) ns = ns > b->cap / 2 ? b->cap : ns * 2;
  char *nd = realloc(b->data, ns + 1);
  if (!nd) {
    b->failed = true;
    return false;
  }
  b->data = nd;
  b->size = ns;
  return true;
}

void qs_buf_put(qs_buf *b, const char *s, size_t n) {
  if (!buf_reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void qs_buf_puts(qs_buf *b, const char *s) { qs_buf_put(b, s, strlen(s)); }

void qs_buf_printf(qs_buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0) {
    b->failed = true;
    return;
  }
  if ((size_t)k < sizeof tmp) {
    qs_buf_put(b, tmp, (size_t)k);
    return;
  }
  if (!buf_reserve(b, (size_t)k)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)k;
}

void qs_buf_uint(qs_buf *b, uint64_t v) {
  char t[20];
  size_t n = 0;
  do {
    t[sizeof t - ++n] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  qs_buf_put(b, t + sizeof t - n, n);
}

void qs_buf_fixed3(qs_buf *b, double v) {
  /* Out of the timings' range (or not finite): printf itself. */
  if (!(v >= 0.0 && v < 1e12)) {
    qs_buf_printf(b, "%.3f", v);
    return;
  }
  /* 1000 v exactly, as hi + lo (fma gives the product's rounding error),
   * then rounded to the nearest integer the way glibc's printf rounds the
   * exact value: the sign of (frac - 0.5) + lo decides (frac - 0.5 is exact,
   * and a sum of two doubles is 0 only when they cancel exactly); an exact
   * tie (v = k + 0.0005 with k's decimals a multiple of 1/16, such as
   * 0.4375) goes to the even neighbour. */
  double hi = v * 1000.0, lo = fma(v, 1000.0, -hi);
  uint64_t m = (uint64_t)hi; /* hi < 2^50: its fraction is exact */
  double frac = hi - (double)m;
  if (frac + lo < 0.0) { /* hi rounded up onto an integer */
    m--;
    frac += 1.0;
  }
  double above = (frac - 0.5) + lo;
  if (above > 0.0 || (above == 0.0 && (m & 1))) m++;
  qs_buf_uint(b, m / 1000);
  char f[4] = {'.', (char)('0' + m / 100 % 10), (char)('0' + m / 10 % 10), (char)('0' + m % 10)};
  qs_buf_put(b, f, 4);
}

void qs_buf_json_str(qs_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  qs_buf_put(b, "\"", 1);
  const char *run = s;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    qs_buf_put(b, run, (size_t)(s - run));
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\') {
      esc[1] = (char)c;
      qs_buf_put(b, esc, 2);
    } else {
      qs_buf_put(b, esc, 6);
    }
    run = s + 1;
  }
  qs_buf_put(b, run, (size_t)(s - run));
  qs_buf_put(b, "\"", 1);
}

void qs_buf_float(qs_buf *b, float v) {
  if (!isfinite(v)) {
    qs_buf_put(b, "null", 4);
    return;
  }
  char tmp[QS_NUM_FORMAT_MAX];
  qs_buf_put(b, tmp, qs_num_format(tmp, v));
}

void qs_buf_float_array(qs_buf *b, const float *v, size_t n) {
  qs_buf_put(b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) qs_buf_put(b, ",", 1);
    qs_buf_float(b, v[i]);
  }
  qs_buf_put(b, "]", 1);
}
