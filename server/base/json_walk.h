/* json_walk.h - reading a JSON object member by member, validating as
 * strictly as jansson (JSON_REJECT_DUPLICATES) and building nothing.
 *
 * Why: a request body's envelope ("model", "baseline", "mode", ...) is a few
 * members; building a jansson tree of it cost allocations on every request,
 * and a member the server does not know (say 1.3 million empty arrays in
 * 4 MB) cost a tree of that size. The walker validates such a value in one
 * pass with a fixed stack and remembers only the keys of the objects still
 * open (to refuse duplicates), in a table the caller keeps between requests.
 *
 * What it refuses, as jansson does: bad syntax, control characters and
 * invalid UTF-8 in strings, bad escapes, \u0000, unpaired surrogates,
 * integers beyond int64, reals beyond double, duplicate keys in any object,
 * and anything after the root. Stricter: nesting deeper than
 * QS_JSON_MAX_DEPTH, number tokens longer than 511 characters. A leaf. */
#ifndef QS_JSON_WALK_H
#define QS_JSON_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"

/* The keys of the objects still open, for refusing duplicates: a linear-
 * probing hash table whose entries are removed in the reverse order of
 * insertion when their object closes (which restores the table exactly).
 * Owned by the caller, reused across walks; grows (at most to what the body
 * can hold) only when a body has more open keys than any before it. */
typedef struct qs_jkeys {
  struct qs_jkey *slot; /* cap entries */
  uint32_t *order;      /* slot indices in insertion order (cap / 2) */
  size_t cap, live;
} qs_jkeys;

void qs_jkeys_free(qs_jkeys *k);

typedef struct qs_jwalk {
  const char *s;
  size_t n, p;          /* the text and the read position */
  qs_jkeys *keys;
  size_t members;       /* root members read so far */
  bool oom;             /* the key table could not grow (an error, 503) */
  size_t errpos;        /* where an error was found */
  const char *msg;      /* what it was (static text) */
  uint32_t obj;         /* id of the object whose keys are being read */
  uint32_t next_obj;
  int depth;            /* containers open: 1 in the root object */
} qs_jwalk;

/* Starts a walk of s[0..n): the root must be an object. */
qs_jerr qs_jw_begin(qs_jwalk *w, const char *s, size_t n, qs_jkeys *keys);
/* The next member's key of the root object: *key is the raw span between
 * the quotes, *escaped whether it holds escapes. *done at the closing '}'
 * (then the rest of the text must be whitespace). Leaves the position at
 * the member's value, which the caller must consume (qs_jw_skip or one of
 * the readers below, or by parsing it and setting w->p past it). */
qs_jerr qs_jw_key(qs_jwalk *w, qs_span *key, bool *escaped, bool *done);
/* Validates and skips one value of any type. */
qs_jerr qs_jw_skip(qs_jwalk *w);
/* The value is true or false (else QS_JTYPE with the position kept). */
qs_jerr qs_jw_bool(qs_jwalk *w, bool *v);
/* The value is a string: decoded into out[0..cap) (NUL-ended) when it fits;
 * *len gets its decoded length even when it does not (then out holds a
 * prefix). QS_JTYPE when it is not a string. */
qs_jerr qs_jw_string(qs_jwalk *w, char *out, size_t cap, size_t *len);
/* The first byte of the value ('"', '[', '{', 't', 'f', 'n', '-', digit). */
char qs_jw_peek(qs_jwalk *w);

/* ---- nested values --------------------------------------------------
 * For envelopes deeper than one object (the KServe v2 request): open an
 * object or array found at the position and read it member by member or
 * element by element, with the same checks (duplicate keys in every object,
 * the depth cap counting every container open). */

/* An object being read: opened by qs_jw_obj_begin. */
typedef struct qs_jw_obj {
  uint32_t id, parent; /* its id in the key table; the enclosing object's */
  size_t mark;         /* keys.live when it opened */
  size_t members;      /* members read so far */
} qs_jw_obj;

/* The value is an object: opens it (QS_JTYPE with the position kept when
 * it is not; QS_JDEPTH past QS_JSON_MAX_DEPTH). */
qs_jerr qs_jw_obj_begin(qs_jwalk *w, qs_jw_obj *o);
/* The next member of o, as qs_jw_key for the root: the caller consumes the
 * value. *done after o's closing '}' (its keys forgotten). */
qs_jerr qs_jw_obj_key(qs_jwalk *w, qs_jw_obj *o, qs_span *key, bool *escaped, bool *done);

/* An array being read: opened by qs_jw_arr_begin. */
typedef struct qs_jw_arr {
  size_t count; /* elements reached so far (the current one is count - 1) */
} qs_jw_arr;

/* The value is an array: opens it (QS_JTYPE, QS_JDEPTH as above). */
qs_jerr qs_jw_arr_begin(qs_jwalk *w, qs_jw_arr *a);
/* Moves to a's next element, which the caller consumes; *done after the
 * closing ']'. */
qs_jerr qs_jw_arr_next(qs_jwalk *w, qs_jw_arr *a, bool *done);

/* The value is a JSON integer (a number token without fraction or exponent,
 * as jansson's json_is_integer): *v. QS_JTYPE with the position kept for a
 * real or a non-number; QS_JSYNTAX beyond int64 ("too big integer", as
 * jansson refuses the whole text). */
qs_jerr qs_jw_int(qs_jwalk *w, int64_t *v);
/* The value is a string: validated, *raw its bytes between the quotes
 * (offsets in the text), *escaped whether it holds escapes. QS_JTYPE with
 * the position kept when it is not a string. */
qs_jerr qs_jw_str(qs_jwalk *w, qs_span *raw, bool *escaped);
/* Decodes the validated raw string bytes raw[0..n) into out (room for n + 1
 * bytes: decoding never lengthens), NUL-ended; returns the decoded length. */
size_t qs_jw_unescape(const char *raw, size_t n, char *out);

/* A JSON text's string token: whether raw bytes [a, a+na) and [b, b+nb)
 * (between quotes, validated) decode to the same string. */
bool qs_jw_key_equal(const char *a, size_t na, const char *b, size_t nb);

#endif
