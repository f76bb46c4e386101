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

/* A JSON text's string token: whether raw bytes [a, a+na) and [b, b+nb)
 * (between quotes, validated) decode to the same string. */
bool qs_jw_key_equal(const char *a, size_t na, const char *b, size_t nb);

#endif
