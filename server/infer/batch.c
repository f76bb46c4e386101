/* batch.c - dynamic batching (--batch-window-us N, off by default).
 *
 * Concurrent static-mode requests for the same model run as one batched
 * product: a batch-N kernel streams the weights once for N rows, where N
 * batch-1 runs stream them N times. Each request still gets its own rows of
 * the result, bit for bit what it would get alone (int8 static mode is row
 * independent: exact integer accumulators, per-row requantization), and its
 * own timings: the batch's int8/fp32 compute time plus the time it queued.
 *
 * Design: one gathering group per model. The first request that finds no
 * open group becomes the leader: it opens one and waits on the model's
 * condition variable until the window ends or the group holds --max-batch
 * rows, then closes it, runs the whole batch and wakes the followers, whose
 * outputs it wrote straight into their own buffers. Followers append
 * themselves under the lock and sleep until their entry is done. A request
 * that does not fit closes the gathering group (its leader runs it at once)
 * and opens the next. A request never waits longer than the window plus one
 * batch's compute.
 *
 * The leader blocks its libmicrohttpd thread for up to the window, so
 * followers come from the other pool threads: batching needs --threads well
 * above the core count (e.g. 16-64) to gather more than a few requests.
 * The leader stops waiting as soon as every /predict or infer request the
 * server holds (qs_g.pending: received, not yet past its handler) is in the
 * batch: under a closed loop of N clients the batch closes when all N have
 * joined, not at the end of the window; alone, a request runs at once.
 *
 * If the batched run fails (it should not: inputs were checked finite),
 * every request is rerun alone, so one request cannot fail another. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/config.h"
#include "base/log.h"
#include "infer/infer.h"

typedef struct qs_batch_entry {
  /* in */
  const float *x;
  size_t rows;
  bool baseline;
  float *y8, *y32; /* the request's own output buffers */
  uint64_t t_enter;
  struct qs_batch_entry *next;
  /* out, written by the leader before done */
  bool done;
  qat_err err;
  char errmsg[200];
  uint64_t ns_int8, ns_fp32, ns_queue;
  size_t batch_rows;
} qs_batch_entry;

typedef struct qs_batch_group {
  qs_batch_entry *head, *tail;
  size_t rows;
  size_t n;
} qs_batch_group;

static void run_alone(qs_model *m, qs_batch_entry *e, uint64_t t_start) {
  e->err = qs_compute(m, e->x, e->rows, e->baseline, false, e->y8, e->y32, &e->ns_int8, &e->ns_fp32);
  if (e->err != QAT_OK) snprintf(e->errmsg, sizeof e->errmsg, "%s", qat_errmsg());
  e->ns_queue = t_start - e->t_enter;
  e->batch_rows = e->rows;
}

/* The leader's work, outside the lock: one product over every entry. */
static void run_group(qs_model *m, qs_batch_group *g) {
  uint64_t t_start = qs_now_ns();
  if (g->n == 1) {
    run_alone(m, g->head, t_start);
    return;
  }
  size_t in = qat_model_in_dim(m->model), out = qat_model_out_dim(m->model);
  bool baseline = false;
  for (qs_batch_entry *e = g->head; e; e = e->next) baseline |= e->baseline;
  float *x = malloc(g->rows * in * sizeof *x);
  float *y8 = malloc(g->rows * out * sizeof *y8);
  float *y32 = baseline ? malloc(g->rows * out * sizeof *y32) : NULL;
  qat_err err = QAT_ENOMEM;
  uint64_t ns8 = 0, ns32 = 0;
  if (x && y8 && (!baseline || y32)) {
    size_t r = 0;
    for (qs_batch_entry *e = g->head; e; e = e->next) {
      memcpy(x + r * in, e->x, e->rows * in * sizeof *x);
      r += e->rows;
    }
    err = qs_compute(m, x, g->rows, baseline, false, y8, y32, &ns8, &ns32);
  }
  if (err == QAT_OK) {
    size_t r = 0;
    for (qs_batch_entry *e = g->head; e; e = e->next) {
      memcpy(e->y8, y8 + r * out, e->rows * out * sizeof *y8);
      if (e->baseline) memcpy(e->y32, y32 + r * out, e->rows * out * sizeof *y32);
      r += e->rows;
      e->err = QAT_OK;
      e->ns_int8 = ns8;
      e->ns_fp32 = e->baseline ? ns32 : 0;
      e->ns_queue = t_start - e->t_enter;
      e->batch_rows = g->rows;
    }
  } else {
    /* Whatever failed, each request gets the answer it would get alone. */
    for (qs_batch_entry *e = g->head; e; e = e->next) run_alone(m, e, qs_now_ns());
  }
  free(x);
  free(y8);
  free(y32);
}

bool qs_batch_compute(qs_model *m, const float *x, qs_infer_res *run, qs_err *err) {
  size_t max = qs_g.cfg.max_batch;
  qs_batch_entry e = {.x = x, .rows = run->rows, .baseline = run->baseline,
                      .y8 = run->buf8, .y32 = run->buf32, .t_enter = qs_now_ns()};
  pthread_mutex_lock(&m->batch_lock);
  qs_batch_group *open = m->batch_open;
  if (open && open->rows + e.rows <= max) {
    /* Follower: join the gathering group and sleep until the leader is done. */
    open->tail->next = &e;
    open->tail = &e;
    open->rows += e.rows;
    open->n++;
    /* Full, or every request that could still join has: wake the leader. */
    if (open->rows == max || (long)open->n >= atomic_load(&qs_g.pending))
      pthread_cond_broadcast(&m->batch_cond);
    while (!e.done) pthread_cond_wait(&m->batch_cond, &m->batch_lock);
    pthread_mutex_unlock(&m->batch_lock);
  } else {
    /* Leader. If a group is gathering but has no room for these rows, it
     * is closed now (its leader is woken to run it) and a new one opens. */
    qs_batch_group g = {.head = &e, .tail = &e, .rows = e.rows, .n = 1};
    if (open) pthread_cond_broadcast(&m->batch_cond);
    m->batch_open = &g;
    if (atomic_load(&qs_g.pending) > 1) {
      uint64_t deadline = e.t_enter + (uint64_t)qs_g.cfg.batch_window_us * 1000u;
      struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
      while (m->batch_open == &g && g.rows < max && (long)g.n < atomic_load(&qs_g.pending)) {
        int rc = pthread_cond_timedwait(&m->batch_cond, &m->batch_lock, &ts);
        if (rc == ETIMEDOUT) break;
      }
    }
    if (m->batch_open == &g) m->batch_open = NULL; /* closed: no one joins now */
    pthread_mutex_unlock(&m->batch_lock);
    run_group(m, &g);
    pthread_mutex_lock(&m->batch_lock);
    for (qs_batch_entry *p = g.head; p; p = p->next) p->done = true;
    pthread_cond_broadcast(&m->batch_cond);
    pthread_mutex_unlock(&m->batch_lock);
  }
  if (e.err != QAT_OK) {
    qs_infer_error(err, e.err, e.errmsg);
    return false;
  }
  run->ns_int8 = e.ns_int8;
  run->ns_fp32 = e.ns_fp32;
  run->ns_queue = e.ns_queue;
  run->batch_rows = e.batch_rows;
  return true;
}
