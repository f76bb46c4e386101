/* context.c - each thread's decoding scratch (see api.h). */
#include <stdlib.h>

#include "api/api.h"

static void ctx_free(void *p) {
  qs_api_ctx *c = p;
  qs_scratch_free(&c->x);
  qs_jkeys_free(&c->keys);
  qs_scratch_free(&c->str);
  free(c);
}

static qs_tls api_tls = {.free_fn = ctx_free};

qs_api_ctx *qs_api_ctx_get(void) { return qs_tls_get(&api_tls, sizeof(qs_api_ctx)); }

float *qs_api_floats(qs_api_ctx *c, size_t n) {
  return qs_scratch_get(&c->x, (n ? n : 1) * sizeof(float));
}

const char *qs_api_string(qs_api_ctx *c, const char *raw, size_t n) {
  char *out = qs_scratch_get(&c->str, n + 1); /* decoding never lengthens */
  if (out) qs_jw_unescape(raw, n, out);
  return out;
}

void qs_api_ctx_done(qs_api_ctx *c) {
  /* A rare large batch (or id) does not pin megabytes to every thread for
   * good. */
  qs_scratch_trim(&c->x, QS_API_KEEP_BYTES);
  qs_scratch_trim(&c->str, QS_API_KEEP_BYTES);
}

void qs_api_ctx_drop(void) { qs_tls_drop(&api_tls); }
