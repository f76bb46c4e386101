/* budget.c - body bytes and requests in flight, process-wide (budget.h). */
#include "base/budget.h"

#include "base/config.h"

bool qs_budget_take(size_t *held, size_t n) {
  /* Add first, then check, without a lock: two threads racing for the
   * last bytes can never both get them (at worst both back out). */
  size_t prev = atomic_fetch_add(&qs_g.body_bytes, n);
  if (prev + n > qs_g.cfg.max_inflight) {
    atomic_fetch_sub(&qs_g.body_bytes, n);
    return false;
  }
  *held += n;
  return true;
}

void qs_budget_release(size_t *held) {
  if (*held) atomic_fetch_sub(&qs_g.body_bytes, *held);
  *held = 0;
}

void qs_inflight_begin(void) { atomic_fetch_add(&qs_g.inflight, 1); }

void qs_inflight_end(void) { atomic_fetch_sub(&qs_g.inflight, 1); }
