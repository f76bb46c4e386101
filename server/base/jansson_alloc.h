/* jansson_alloc.h - jansson's allocator hook. jansson reports its own
 * allocation failures as whatever parse error it was in the middle of
 * ("string expected", or no message at all), so its allocator records them
 * per thread and callers ask. A leaf. */
#ifndef QS_JANSSON_ALLOC_H
#define QS_JANSSON_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Routes jansson's allocations through the hook (once, at start-up). */
void qs_json_alloc_init(void);
/* Whether an allocation failed on this thread since the last call; clears
 * the note. */
bool qs_json_alloc_failed(void);

/* Counts this thread's jansson allocations (live bytes) from now on and
 * fails any that would take them past limit (so the parse fails), until
 * qs_json_limit_end, which says whether the limit was hit. Memory the
 * parse built and still holds is freed after the end without being
 * counted. */
void qs_json_limit_begin(size_t limit);
/* What a request's JSON parse may use beyond twice its text. */
#define QS_JSON_TREE_SLACK ((size_t)256 * 1024)
bool qs_json_limit_end(void);

#endif
