/* json_walk.c - a strict, allocation-free JSON validator and member reader.
 * The rules follow jansson 2.14's decoder (load.c, utf8.c) so that a body
 * jansson refuses is refused here too; fuzz_predict checks that. */
#include "base/json_walk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct qs_jkey {
  uint32_t obj; /* 0: empty slot */
  uint32_t hash;
  uint32_t off, len; /* raw key bytes in the text */
} qs_jkey;

#define MAX_NUMBER_CHARS 511
#define KEEP_SLOTS 4096 /* a table larger than this is freed after the walk */

static inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

static inline void ws(qs_jwalk *w) {
  while (w->p < w->n && is_ws(w->s[w->p])) w->p++;
}

static qs_jerr fail(qs_jwalk *w, qs_jerr e, const char *msg) {
  w->errpos = w->p;
  w->msg = msg;
  return e;
}

void qs_jkeys_free(qs_jkeys *k) {
  free(k->slot);
  free(k->order);
  *k = (qs_jkeys){0};
}

/* ---- strings ------------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool hex4(const char *s, size_t n, size_t p, uint32_t *v) {
  if (p + 4 > n) return false;
  uint32_t x = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s[p + (size_t)i]);
    if (h < 0) return false;
    x = x * 16 + (uint32_t)h;
  }
  *v = x;
  return true;
}

/* Length of the valid UTF-8 sequence at s[p] (jansson's utf8_check_first
 * and utf8_check_full), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t p) {
  unsigned char c = s[p];
  size_t len;
  uint32_t v;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0)
    len = 2, v = c & 0x1F;
  else if (c < 0xF0)
    len = 3, v = c & 0x0F;
  else if (c < 0xF5)
    len = 4, v = c & 0x07;
  else
    return 0;
  if (p + len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    unsigned char d = s[p + i];
    if (d < 0x80 || d > 0xBF) return 0;
    v = (v << 6) | (d & 0x3F);
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000)) return 0;
  return len;
}

/* Reads one escape at s[p] (just after the backslash); the code point in
 * *cp, the position after it in *end. */
static bool escape(const char *s, size_t n, size_t p, uint32_t *cp, size_t *end, const char **msg) {
  if (p >= n) return *msg = "unexpected end of a string", false;
  switch (s[p]) {
    case '"': *cp = '"'; break;
    case '\\': *cp = '\\'; break;
    case '/': *cp = '/'; break;
    case 'b': *cp = '\b'; break;
    case 'f': *cp = '\f'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case 't': *cp = '\t'; break;
    case 'u': {
      uint32_t v, lo;
      if (!hex4(s, n, p + 1, &v)) return *msg = "invalid \\u escape", false;
      p += 5;
      if (v >= 0xD800 && v <= 0xDBFF) {
        if (!(p + 1 < n && s[p] == '\\' && s[p + 1] == 'u' && hex4(s, n, p + 2, &lo) && lo >= 0xDC00 &&
              lo <= 0xDFFF))
          return *msg = "invalid Unicode: unpaired surrogate", false;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      } else if (v >= 0xDC00 && v <= 0xDFFF) {
        return *msg = "invalid Unicode: unpaired surrogate", false;
      }
      if (v == 0) return *msg = "\\u0000 is not allowed in a string", false;
      *cp = v;
      *end = p;
      return true;
    }
    default: return *msg = "invalid escape", false;
  }
  *end = p + 1;
  return true;
}

/* Validates the string at w->p (an opening quote); leaves w->p after the
 * closing quote. *escaped: whether it holds a backslash. */
static qs_jerr string(qs_jwalk *w, bool *escaped) {
  const unsigned char *s = (const unsigned char *)w->s;
  size_t p = w->p + 1, n = w->n;
  bool esc = false;
  while (p < n) {
    unsigned char c = s[p];
    if (c == '"') {
      w->p = p + 1;
      if (escaped) *escaped = esc;
      return QS_JOK;
    }
    if (c < 0x20) {
      w->p = p;
      return fail(w, QS_JSYNTAX, "control character in a string");
    }
    if (c == '\\') {
      uint32_t cp;
      const char *msg = NULL;
      if (!escape(w->s, n, p + 1, &cp, &p, &msg)) {
        w->p = p;
        return fail(w, QS_JSYNTAX, msg);
      }
      esc = true;
      continue;
    }
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t k = utf8_seq(s, n, p);
    if (!k) {
      w->p = p;
      return fail(w, QS_JSYNTAX, "invalid UTF-8 in a string");
    }
    p += k;
  }
  w->p = p;
  return fail(w, QS_JSYNTAX, "unterminated string");
}

/* Decodes the validated string body s[0..n) (between the quotes) one byte
 * at a time: *i the position, buf/bl/bi the bytes of an escape pending. */
typedef struct dec {
  const char *s;
  size_t n, i;
  unsigned char buf[4];
  int bl, bi;
} dec;

static int dec_next(dec *d) {
  if (d->bi < d->bl) return d->buf[d->bi++];
  if (d->i >= d->n) return -1;
  char c = d->s[d->i];
  if (c != '\\') {
    d->i++;
    return (unsigned char)c;
  }
  uint32_t cp;
  const char *msg;
  size_t end;
  if (!escape(d->s, d->n, d->i + 1, &cp, &end, &msg)) return -1; /* validated before */
  d->i = end;
  d->bl = d->bi = 0;
  if (cp < 0x80) {
    d->buf[d->bl++] = (unsigned char)cp;
  } else if (cp < 0x800) {
    d->buf[d->bl++] = (unsigned char)(0xC0 | (cp >> 6));
    d->buf[d->bl++] = (unsigned char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    d->buf[d->bl++] = (unsigned char)(0xE0 | (cp >> 12));
    d->buf[d->bl++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    d->buf[d->bl++] = (unsigned char)(0x80 | (cp & 0x3F));
  } else {
    d->buf[d->bl++] = (unsigned char)(0xF0 | (cp >> 18));
    d->buf[d->bl++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    d->buf[d->bl++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    d->buf[d->bl++] = (unsigned char)(0x80 | (cp & 0x3F));
  }
  return d->buf[d->bi++];
}

bool qs_jw_key_equal(const char *a, size_t na, const char *b, size_t nb) {
  if (na == nb && memcmp(a, b, na) == 0) return true;
  if (!memchr(a, '\\', na) && !memchr(b, '\\', nb)) return false;
  dec x = {.s = a, .n = na}, y = {.s = b, .n = nb};
  for (;;) {
    int c = dec_next(&x), d = dec_next(&y);
    if (c != d) return false;
    if (c < 0) return true;
  }
}

static uint32_t key_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  dec d = {.s = s, .n = n};
  for (int c; (c = dec_next(&d)) >= 0;) h = (h ^ (uint32_t)c) * 16777619u;
  return h;
}

/* ---- duplicate keys ---------------------------------------------------- */

static void keys_pop_to(qs_jkeys *k, size_t mark) {
  while (k->live > mark) k->slot[k->order[--k->live]].obj = 0;
}

static bool keys_insert_slot(qs_jkeys *k, const qs_jkey *e, const char *s, bool *dup) {
  size_t mask = k->cap - 1, i = (e->hash ^ (e->obj * 0x9E3779B9u)) & mask;
  while (k->slot[i].obj) {
    const qs_jkey *o = &k->slot[i];
    if (o->obj == e->obj && o->hash == e->hash &&
        qs_jw_key_equal(s + o->off, o->len, s + e->off, e->len)) {
      *dup = true;
      return true;
    }
    i = (i + 1) & mask;
  }
  k->slot[i] = *e;
  k->order[k->live++] = (uint32_t)i;
  return true;
}

/* Grows the table, reinserting in insertion order (so that removing in
 * reverse order stays exact). False on out of memory. */
static bool keys_grow(qs_jkeys *k, const char *s) {
  size_t ncap = k->cap ? k->cap * 2 : 64;
  qs_jkey *ns = calloc(ncap, sizeof *ns);
  uint32_t *no = malloc(ncap / 2 * sizeof *no);
  if (!ns || !no) {
    free(ns);
    free(no);
    return false;
  }
  qs_jkeys old = *k;
  k->slot = ns;
  k->order = no;
  k->cap = ncap;
  k->live = 0;
  for (size_t j = 0; j < old.live; j++) {
    bool dup = false;
    keys_insert_slot(k, &old.slot[old.order[j]], s, &dup);
  }
  free(old.slot);
  free(old.order);
  return true;
}

static qs_jerr key_add(qs_jwalk *w, size_t off, size_t len) {
  qs_jkeys *k = w->keys;
  if (k->live + 1 > k->cap / 2 && !keys_grow(k, w->s)) return w->oom = true, fail(w, QS_JSYNTAX, "out of memory");
  qs_jkey e = {.obj = w->obj, .hash = key_hash(w->s + off, len), .off = (uint32_t)off, .len = (uint32_t)len};
  bool dup = false;
  keys_insert_slot(k, &e, w->s, &dup);
  if (dup) {
    w->p = off - 1;
    return fail(w, QS_JSYNTAX, "duplicate object key");
  }
  return QS_JOK;
}

/* Reads "key" and the colon at w->p, checking for a duplicate in the object
 * w->obj. */
static qs_jerr member_key(qs_jwalk *w, qs_span *key, bool *escaped) {
  ws(w);
  if (w->p >= w->n || w->s[w->p] != '"') return fail(w, QS_JSYNTAX, "string or '}' expected");
  size_t start = w->p + 1;
  qs_jerr e = string(w, escaped);
  if (e) return e;
  key->off = start;
  key->len = w->p - 1 - start;
  if ((e = key_add(w, key->off, key->len))) return e;
  ws(w);
  if (w->p >= w->n || w->s[w->p] != ':') return fail(w, QS_JSYNTAX, "':' expected");
  w->p++;
  ws(w);
  return QS_JOK;
}

/* ---- scalars ------------------------------------------------------------ */

static qs_jerr number(qs_jwalk *w) {
  const char *s = w->s;
  size_t p = w->p, n = w->n, start = p;
  bool real = false;
  if (p < n && s[p] == '-') p++;
  if (p < n && s[p] == '0') {
    p++;
  } else if (p < n && s[p] >= '1' && s[p] <= '9') {
    while (p < n && is_digit(s[p])) p++;
  } else {
    return fail(w, QS_JSYNTAX, "invalid number");
  }
  if (p < n && s[p] == '.') {
    p++;
    real = true;
    if (!(p < n && is_digit(s[p]))) return w->p = p, fail(w, QS_JSYNTAX, "invalid number");
    while (p < n && is_digit(s[p])) p++;
  }
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    real = true;
    if (p < n && (s[p] == '+' || s[p] == '-')) p++;
    if (!(p < n && is_digit(s[p]))) return w->p = p, fail(w, QS_JSYNTAX, "invalid number");
    while (p < n && is_digit(s[p])) p++;
  }
  size_t len = p - start;
  if (len > MAX_NUMBER_CHARS) return fail(w, QS_JSYNTAX, "number token too long");
  char tmp[MAX_NUMBER_CHARS + 1];
  memcpy(tmp, s + start, len);
  tmp[len] = '\0';
  errno = 0;
  if (!real) {
    long long v = strtoll(tmp, NULL, 10);
    (void)v;
    if (errno == ERANGE) return fail(w, QS_JSYNTAX, "too big integer");
  } else {
    double v = strtod(tmp, NULL);
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL)) return fail(w, QS_JSYNTAX, "real number overflow");
  }
  w->p = p;
  return QS_JOK;
}

static qs_jerr literal(qs_jwalk *w) {
  static const char *const lits[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t k = strlen(lits[i]);
    if (w->n - w->p >= k && memcmp(w->s + w->p, lits[i], k) == 0) {
      w->p += k;
      return QS_JOK;
    }
  }
  return fail(w, QS_JSYNTAX, "invalid token");
}

/* ---- values ------------------------------------------------------------- */

typedef struct frame {
  char close;      /* ']' or '}' */
  size_t mark;     /* keys.live when the object opened */
  uint32_t parent; /* the enclosing object's id */
} frame;

qs_jerr qs_jw_skip(qs_jwalk *w) {
  /* w->depth containers are open around the value (the root object is
   * depth 1): the value's own may bring the total to MAX_DEPTH. */
  frame st[QS_JSON_MAX_DEPTH];
  int top = 0;
  qs_jerr e;
  qs_span key;
value:
  ws(w);
  if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
  switch (w->s[w->p]) {
    case '"':
      if ((e = string(w, NULL))) return e;
      break;
    case '[':
    case '{': {
      char open = w->s[w->p];
      if (w->depth + top + 1 > QS_JSON_MAX_DEPTH) return fail(w, QS_JDEPTH, "JSON nested too deeply");
      st[top++] = (frame){.close = open == '[' ? ']' : '}', .mark = w->keys->live, .parent = w->obj};
      w->p++;
      ws(w);
      if (w->p < w->n && w->s[w->p] == st[top - 1].close) {
        w->p++;
        top--;
        break;
      }
      if (open == '{') {
        w->obj = ++w->next_obj;
        if ((e = member_key(w, &key, NULL))) return e;
      }
      goto value;
    }
    case 't':
    case 'f':
    case 'n':
      if ((e = literal(w))) return e;
      break;
    default:
      if ((e = number(w))) return e;
      break;
  }
  /* After a value: the next element, or closing brackets. */
  for (;;) {
    if (top == 0) return QS_JOK;
    frame *f = &st[top - 1];
    ws(w);
    if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
    char c = w->s[w->p];
    if (c == ',') {
      w->p++;
      if (f->close == '}' && (e = member_key(w, &key, NULL))) return e;
      goto value;
    }
    if (c != f->close) return fail(w, QS_JSYNTAX, f->close == '}' ? "',' or '}' expected" : "',' or ']' expected");
    w->p++;
    if (f->close == '}') {
      keys_pop_to(w->keys, f->mark);
      w->obj = f->parent;
    }
    top--;
  }
}

qs_jerr qs_jw_begin(qs_jwalk *w, const char *s, size_t n, qs_jkeys *keys) {
  *w = (qs_jwalk){.s = s, .n = n, .keys = keys, .obj = 1, .next_obj = 1, .depth = 1};
  keys_pop_to(keys, 0); /* what an earlier walk that failed left */
  if (keys->cap > KEEP_SLOTS) qs_jkeys_free(keys);
  if (n > UINT32_MAX) return fail(w, QS_JSYNTAX, "body too large to walk");
  ws(w);
  if (w->p >= w->n || s[w->p] != '{') return fail(w, QS_JTYPE, "the body must be a JSON object");
  w->p++;
  return QS_JOK;
}

qs_jerr qs_jw_key(qs_jwalk *w, qs_span *key, bool *escaped, bool *done) {
  *done = false;
  ws(w);
  if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
  char c = w->s[w->p];
  if (c == '}') {
    w->p++;
    ws(w);
    if (w->p != w->n) return fail(w, QS_JSYNTAX, "end of input expected after the object");
    keys_pop_to(w->keys, 0);
    *done = true;
    return QS_JOK;
  }
  if (w->members) {
    if (c != ',') return fail(w, QS_JSYNTAX, "',' or '}' expected");
    w->p++;
  }
  w->members++;
  w->obj = 1;
  return member_key(w, key, escaped);
}

char qs_jw_peek(qs_jwalk *w) {
  ws(w);
  return w->p < w->n ? w->s[w->p] : '\0';
}

qs_jerr qs_jw_bool(qs_jwalk *w, bool *v) {
  ws(w);
  if (w->n - w->p >= 4 && memcmp(w->s + w->p, "true", 4) == 0) {
    w->p += 4;
    *v = true;
    return QS_JOK;
  }
  if (w->n - w->p >= 5 && memcmp(w->s + w->p, "false", 5) == 0) {
    w->p += 5;
    *v = false;
    return QS_JOK;
  }
  return QS_JTYPE;
}

qs_jerr qs_jw_string(qs_jwalk *w, char *out, size_t cap, size_t *len) {
  ws(w);
  if (w->p >= w->n || w->s[w->p] != '"') return QS_JTYPE;
  size_t start = w->p + 1;
  qs_jerr e = string(w, NULL);
  if (e) return e;
  dec d = {.s = w->s + start, .n = w->p - 1 - start};
  size_t k = 0;
  for (int c; (c = dec_next(&d)) >= 0; k++)
    if (k + 1 < cap) out[k] = (char)c;
  if (cap) out[k < cap ? k : cap - 1] = '\0';
  *len = k;
  return QS_JOK;
}

/* ---- nested values ------------------------------------------------------ */

/* Opens the container at the position if its first byte is open. */
static qs_jerr open_container(qs_jwalk *w, char open) {
  ws(w);
  if (w->p >= w->n || w->s[w->p] != open) return QS_JTYPE;
  if (w->depth + 1 > QS_JSON_MAX_DEPTH) return fail(w, QS_JDEPTH, "JSON nested too deeply");
  w->depth++;
  w->p++;
  return QS_JOK;
}

qs_jerr qs_jw_obj_begin(qs_jwalk *w, qs_jw_obj *o) {
  qs_jerr e = open_container(w, '{');
  if (e) return e;
  *o = (qs_jw_obj){.id = ++w->next_obj, .parent = w->obj, .mark = w->keys->live};
  return QS_JOK;
}

qs_jerr qs_jw_obj_key(qs_jwalk *w, qs_jw_obj *o, qs_span *key, bool *escaped, bool *done) {
  *done = false;
  ws(w);
  if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
  char c = w->s[w->p];
  if (c == '}') {
    w->p++;
    keys_pop_to(w->keys, o->mark);
    w->obj = o->parent;
    w->depth--;
    *done = true;
    return QS_JOK;
  }
  if (o->members) {
    if (c != ',') return fail(w, QS_JSYNTAX, "',' or '}' expected");
    w->p++;
  }
  o->members++;
  w->obj = o->id;
  return member_key(w, key, escaped);
}

qs_jerr qs_jw_arr_begin(qs_jwalk *w, qs_jw_arr *a) {
  qs_jerr e = open_container(w, '[');
  if (e) return e;
  a->count = 0;
  return QS_JOK;
}

qs_jerr qs_jw_arr_next(qs_jwalk *w, qs_jw_arr *a, bool *done) {
  *done = false;
  ws(w);
  if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
  char c = w->s[w->p];
  if (c == ']') {
    w->p++;
    w->depth--;
    *done = true;
    return QS_JOK;
  }
  if (a->count) {
    if (c != ',') return fail(w, QS_JSYNTAX, "',' or ']' expected");
    w->p++;
    ws(w);
    if (w->p >= w->n) return fail(w, QS_JSYNTAX, "unexpected end of input");
    if (w->s[w->p] == ']') return fail(w, QS_JSYNTAX, "value expected");
  }
  a->count++;
  return QS_JOK;
}

qs_jerr qs_jw_int(qs_jwalk *w, int64_t *v) {
  ws(w);
  if (w->p >= w->n || !(w->s[w->p] == '-' || is_digit(w->s[w->p]))) return QS_JTYPE;
  size_t start = w->p;
  qs_jerr e = number(w); /* validates the token and its range */
  if (e) return e;
  size_t len = w->p - start;
  if (memchr(w->s + start, '.', len) || memchr(w->s + start, 'e', len) || memchr(w->s + start, 'E', len)) {
    w->p = start;
    return QS_JTYPE;
  }
  char tmp[MAX_NUMBER_CHARS + 1];
  memcpy(tmp, w->s + start, len);
  tmp[len] = '\0';
  *v = strtoll(tmp, NULL, 10);
  return QS_JOK;
}

qs_jerr qs_jw_str(qs_jwalk *w, qs_span *raw, bool *escaped) {
  ws(w);
  if (w->p >= w->n || w->s[w->p] != '"') return QS_JTYPE;
  size_t start = w->p + 1;
  qs_jerr e = string(w, escaped);
  if (e) return e;
  raw->off = start;
  raw->len = w->p - 1 - start;
  return QS_JOK;
}

size_t qs_jw_unescape(const char *raw, size_t n, char *out) {
  dec d = {.s = raw, .n = n};
  size_t k = 0;
  for (int c; (c = dec_next(&d)) >= 0;) out[k++] = (char)c;
  out[k] = '\0';
  return k;
}
