/* jansson_alloc.h - jansson's allocator hook. jansson reports its own
 * allocation failures as whatever parse error it was in the middle of
 * ("string expected", or no message at all), so its allocator records them
 * per thread and callers ask. A leaf. */
#ifndef QS_JANSSON_ALLOC_H
#define QS_JANSSON_ALLOC_H

#include <stdbool.h>

/* Routes jansson's allocations through the hook (once, at start-up). */
void qs_json_alloc_init(void);
/* Whether an allocation failed on this thread since the last call; clears
 * the note. */
bool qs_json_alloc_failed(void);

#endif
