/* scratch.h - a buffer that a thread keeps between requests: it grows when
 * a request needs more than any before it and is otherwise reused, so a
 * warm thread allocates nothing per request. A leaf. */
#ifndef QS_SCRATCH_H
#define QS_SCRATCH_H

#include <stddef.h>

typedef struct qs_scratch {
  void *p;
  size_t cap; /* bytes */
} qs_scratch;

/* At least bytes of room (contents not kept when it grows), or NULL when
 * out of memory (the old buffer stays). */
void *qs_scratch_get(qs_scratch *s, size_t bytes);
/* Frees the buffer if it is larger than keep bytes: one rare large request
 * does not pin its memory to the thread for good. */
void qs_scratch_trim(qs_scratch *s, size_t keep);
void qs_scratch_free(qs_scratch *s);

/* A per-thread context of size bytes (zeroed on first use) for the caller's
 * key; free_fn runs on it when the thread exits. NULL when out of memory. */
typedef struct qs_tls {
  int once;                 /* 0 before the key exists */
  unsigned key;             /* pthread_key_t */
  void (*free_fn)(void *);  /* frees what the context holds, then the context */
} qs_tls;
void *qs_tls_get(qs_tls *t, size_t size);
/* The calling thread's context if it has one (never creates it). */
void *qs_tls_peek(qs_tls *t);
/* Frees the calling thread's context now (tests; a thread that stops). */
void qs_tls_drop(qs_tls *t);

#endif
