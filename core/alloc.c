/* alloc.c - one replaceable allocation hook for all of libqat, so tests can
 * fail the Nth allocation and check that every path cleans up. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static qat_malloc_fn hook_malloc = malloc;
static qat_free_fn hook_free = free;

void qat_set_allocator(qat_malloc_fn m, qat_free_fn f) {
  hook_malloc = m ? m : malloc;
  hook_free = f ? f : free;
}

void *qat__malloc(size_t n) { return hook_malloc(n ? n : 1); }

void *qat__calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  size_t bytes = n * size;
  void *p = qat__malloc(bytes);
  if (p) memset(p, 0, bytes > 0 ? bytes : 1);
  return p;
}

void qat__free(void *p) {
  if (p) hook_free(p);
}

/* Over-allocate through the hook and keep the original pointer just below
 * the aligned block, so aligned memory also passes the fault injector. */
void *qat__malloc_aligned(size_t n) {
  if (n > SIZE_MAX - 64 - sizeof(void *)) return NULL;
  unsigned char *raw = qat__malloc(n + 64 + sizeof(void *));
  if (!raw) return NULL;
  uintptr_t a = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
  ((void **)a)[-1] = raw;
  return (void *)a;
}

void qat__free_aligned(void *p) {
  if (p) qat__free(((void **)p)[-1]);
}

char *qat__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = qat__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
