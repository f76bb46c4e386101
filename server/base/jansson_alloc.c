/* jansson_alloc.c - jansson's allocations, with failures noted per thread
 * and, while a request's JSON is parsed, its memory counted against a limit.
 *
 * A tree parser spends ~100 bytes per value: a 4 MB body of empty arrays
 * ("[],[],...") built a 140 MB tree, and eight at once took the process to
 * 1 GB. Counting through the hook bounds that whatever the JSON holds: past
 * the limit an allocation fails, the parse stops, and the request is
 * answered 413. Sizes are malloc_usable_size, so frees subtract exactly what
 * allocations added. */
#include "base/jansson_alloc.h"

#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

static _Thread_local bool json_alloc_fail;
static _Thread_local bool json_over;
static _Thread_local int64_t json_bytes, json_limit; /* limit 0: not counting */

static void *json_alloc(size_t n) {
  if (json_limit && json_bytes + (int64_t)n > json_limit) {
    json_over = true;
    json_alloc_fail = true;
    return NULL;
  }
  void *p = malloc(n);
  if (!p) json_alloc_fail = true;
  else if (json_limit) json_bytes += (int64_t)malloc_usable_size(p);
  return p;
}

static void json_free(void *p) {
  if (p && json_limit) json_bytes -= (int64_t)malloc_usable_size(p);
  free(p);
}

void qs_json_alloc_init(void) { json_set_alloc_funcs(json_alloc, json_free); }

bool qs_json_alloc_failed(void) {
  bool f = json_alloc_fail;
  json_alloc_fail = false;
  return f;
}

void qs_json_limit_begin(size_t limit) {
  json_bytes = 0;
  json_over = false;
  json_limit = limit ? (int64_t)limit : 1;
}

bool qs_json_limit_end(void) {
  json_limit = 0;
  json_bytes = 0;
  return json_over;
}
