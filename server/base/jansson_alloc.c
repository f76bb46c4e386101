/* jansson_alloc.c - jansson's allocations, with failures noted per thread.
 * jansson parses no request body any more (the decoders walk them without a
 * tree, api/); it still reads model files' headers (model/registry.c), where
 * an allocation failure must not count as a corrupt file. */
#include "base/jansson_alloc.h"

#include <jansson.h>
#include <stdlib.h>

static _Thread_local bool json_alloc_fail;

static void *json_alloc(size_t n) {
  void *p = malloc(n);
  if (!p) json_alloc_fail = true;
  return p;
}

void qs_json_alloc_init(void) { json_set_alloc_funcs(json_alloc, free); }

bool qs_json_alloc_failed(void) {
  bool f = json_alloc_fail;
  json_alloc_fail = false;
  return f;
}
