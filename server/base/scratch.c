/* scratch.c - see scratch.h. */
#include "base/scratch.h"

#include <pthread.h>
#include <stdlib.h>

void *qs_scratch_get(qs_scratch *s, size_t bytes) {
  if (bytes <= s->cap && s->p) return s->p;
  size_t ncap = s->cap ? s->cap : 256;
  while (ncap < bytes) ncap = ncap > ((size_t)-1) / 2 ? bytes : ncap * 2;
  void *np = malloc(ncap);
  if (!np) return NULL;
  free(s->p);
  s->p = np;
  s->cap = ncap;
  return np;
}

void qs_scratch_trim(qs_scratch *s, size_t keep) {
  if (s->cap > keep) qs_scratch_free(s);
}

void qs_scratch_free(qs_scratch *s) {
  free(s->p);
  s->p = NULL;
  s->cap = 0;
}

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;

void *qs_tls_get(qs_tls *t, size_t size) {
  if (!__atomic_load_n(&t->once, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&tls_lock);
    if (!t->once) {
      pthread_key_t k;
      if (pthread_key_create(&k, t->free_fn) != 0) {
        pthread_mutex_unlock(&tls_lock);
        return NULL;
      }
      t->key = (unsigned)k;
      __atomic_store_n(&t->once, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&tls_lock);
  }
  void *c = pthread_getspecific((pthread_key_t)t->key);
  if (c) return c;
  c = calloc(1, size);
  if (c && pthread_setspecific((pthread_key_t)t->key, c) != 0) {
    free(c);
    c = NULL;
  }
  return c;
}

void qs_tls_drop(qs_tls *t) {
  if (!__atomic_load_n(&t->once, __ATOMIC_ACQUIRE)) return;
  void *c = pthread_getspecific((pthread_key_t)t->key);
  if (!c) return;
  pthread_setspecific((pthread_key_t)t->key, NULL);
  t->free_fn(c);
}

void *qs_tls_peek(qs_tls *t) {
  if (!__atomic_load_n(&t->once, __ATOMIC_ACQUIRE)) return NULL;
  return pthread_getspecific((pthread_key_t)t->key);
}
