/* control.c - signals, directory watch, reload, drain on one libuv loop,
 * and one loader thread that runs every directory sync, so reading a file
 * (however large or hostile) never holds up a signal: only the loader thread
 * changes the registry once the server runs.
 *
 *   SIGHUP            reload now (on the loader thread)
 *   models dir event  reload after 200 ms of quiet, but never later than 1 s
 *                     after the first event (a copy or a rename fires several
 *                     events; one reload sees the finished file; a file
 *                     rewritten every 100 ms cannot postpone it forever)
 *   directory gone    checked every second and on every event: a directory
 *                     missing at start, removed or replaced is watched again
 *                     (and synced) as soon as it exists
 *   SIGINT/SIGTERM    not ready, stop accepting (listening socket closed),
 *                     wait for in-flight requests (checked every 10 ms) up to
 *                     --drain-timeout, then stop the loop. A second signal
 *                     stops at once. A sync in progress stops between files;
 *                     the exit does not wait for it past the drain deadline. */
#include "control/control.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "base/config.h"
#include "base/log.h"
#include "grpc/grpc.h"
#include "http/http.h"
#include "model/registry.h"

#define DEBOUNCE_MS 200
#define DEBOUNCE_MAX_MS 1000
#define DIR_POLL_MS 1000
#define DRAIN_POLL_MS 10

/* The loader thread and what it is asked to do. */
static pthread_mutex_t ld_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ld_cv = PTHREAD_COND_INITIALIZER;
static bool ld_want, ld_stop, ld_done;
static const char *ld_why;
static bool loader_left; /* the loader was still running when the loop ended */
static uint64_t drain_deadline; /* of the last drain; 0 before any */

bool qs_control_loader_busy(void) { return loader_left; }

uint64_t qs_control_deadline_ns(void) { return drain_deadline; }

typedef struct control {
  uv_loop_t loop;
  uv_signal_t sig_int, sig_term, sig_hup;
  uv_fs_event_t watch;
  bool watching;
  dev_t dir_dev;
  ino_t dir_ino;
  uv_timer_t debounce, drain, dir_poll;
  bool debounce_pending;
  uint64_t first_event_ns;
  struct MHD_Daemon *daemon;
  uint64_t drain_started, drain_deadline;
  int result;
} control;

static void *loader_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&ld_mu);
  for (;;) {
    while (!ld_want && !ld_stop) pthread_cond_wait(&ld_cv, &ld_mu);
    if (ld_stop) break;
    ld_want = false;
    const char *why = ld_why;
    pthread_mutex_unlock(&ld_mu);
    qs_log("reload (%s): scanning %s", why, qs_g.cfg.models_dir);
    int n = qs_registry_sync(qs_g.cfg.models_dir);
    if (n >= 0) qs_log("reload (%s): %d models serving", why, n);
    pthread_mutex_lock(&ld_mu);
  }
  ld_done = true;
  pthread_cond_broadcast(&ld_cv);
  pthread_mutex_unlock(&ld_mu);
  return NULL;
}

/* Asks the loader for a sync; requests made while one runs fold into one
 * more sync after it. Never blocks the loop beyond the mutex. */
static void reload(const char *why) {
  pthread_mutex_lock(&ld_mu);
  ld_want = true;
  ld_why = why;
  pthread_cond_signal(&ld_cv);
  pthread_mutex_unlock(&ld_mu);
}

static void on_debounce(uv_timer_t *t) {
  control *c = t->data;
  c->debounce_pending = false;
  reload("directory changed");
}

static void check_dir(control *c);

static void on_watch(uv_fs_event_t *h, const char *file, int events, int status) {
  control *c = h->data;
  (void)file;
  (void)events;
  if (status < 0) {
    qs_log("models watch: %s", uv_strerror(status));
    return;
  }
  check_dir(c); /* the directory itself removed or renamed? */
  uint64_t now = qs_now_ns();
  if (!c->debounce_pending) {
    c->debounce_pending = true;
    c->first_event_ns = now;
  }
  /* 200 ms of quiet, capped at 1 s after the first event of the burst. */
  uint64_t since_ms = (now - c->first_event_ns) / 1000000u;
  uint64_t delay = since_ms >= DEBOUNCE_MAX_MS ? 0 : DEBOUNCE_MAX_MS - since_ms;
  if (delay > DEBOUNCE_MS) delay = DEBOUNCE_MS;
  uv_timer_start(&c->debounce, on_debounce, delay, 0);
}

/* Keeps the watch on the directory that is there now: inotify watches an
 * inode, so a directory missing at start, removed, or replaced by a new one
 * needs a new watch (and a sync, since its content is new). */
static void check_dir(control *c) {
  struct stat st;
  bool exists = stat(qs_g.cfg.models_dir, &st) == 0 && S_ISDIR(st.st_mode);
  if (c->watching && (!exists || st.st_dev != c->dir_dev || st.st_ino != c->dir_ino)) {
    uv_fs_event_stop(&c->watch);
    c->watching = false;
    qs_log("models directory %s %s; watching for it to come back (models keep serving)",
           qs_g.cfg.models_dir, exists ? "was replaced" : "is gone");
  }
  if (c->watching || !exists) return;
  int rc = uv_fs_event_start(&c->watch, on_watch, qs_g.cfg.models_dir, 0);
  if (rc) {
    qs_log("cannot watch %s (%s): retrying every second; SIGHUP rescans it",
           qs_g.cfg.models_dir, uv_strerror(rc));
    return;
  }
  c->watching = true;
  c->dir_dev = st.st_dev;
  c->dir_ino = st.st_ino;
  qs_log("watching %s", qs_g.cfg.models_dir);
  reload("directory appeared");
}

static void on_dir_poll(uv_timer_t *t) { check_dir(t->data); }

static void close_all(control *c) {
  uv_signal_stop(&c->sig_int);
  uv_signal_stop(&c->sig_term);
  uv_signal_stop(&c->sig_hup);
  if (c->watching) uv_fs_event_stop(&c->watch);
  uv_timer_stop(&c->debounce);
  uv_timer_stop(&c->drain);
  uv_timer_stop(&c->dir_poll);
  uv_stop(&c->loop);
}

static void on_drain_tick(uv_timer_t *t) {
  control *c = t->data;
  long n = atomic_load(&qs_g.inflight);
  uint64_t now = qs_now_ns();
  if (n <= 0) {
    qs_log("drained in %.1f ms; stopping", (double)(now - c->drain_started) * 1e-6);
    c->result = 0;
    close_all(c);
  } else if (now >= c->drain_deadline) {
    qs_log("drain timeout (%u s) with %ld requests in flight; stopping anyway",
           qs_g.cfg.drain_timeout_s, n);
    c->result = 1;
    close_all(c);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  control *c = h->data;
  if (signum == SIGHUP) {
    reload("SIGHUP");
    return;
  }
  if (atomic_load(&qs_g.draining)) {
    qs_log("second %s: stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
    c->result = 1;
    close_all(c);
    return;
  }
  qs_log("%s: not ready, no new connections, draining %ld in-flight requests (up to %u s)",
         signum == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&qs_g.inflight),
         qs_g.cfg.drain_timeout_s);
  atomic_store(&qs_g.ready, false);
  atomic_store(&qs_g.draining, true);
  qs_http_quiesce(c->daemon);
  qs_grpc_quiesce();
  c->drain_started = qs_now_ns();
  c->drain_deadline = c->drain_started + (uint64_t)qs_g.cfg.drain_timeout_s * 1000000000u;
  uv_timer_start(&c->drain, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void signals_mask(int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(how, &set, NULL);
}

/* The loop and its handles (all inert until started). */
static int control_init(control *c, struct MHD_Daemon *d) {
  c->daemon = d;
  c->result = 0;
  int rc = uv_loop_init(&c->loop);
  if (rc) {
    qs_log("uv_loop_init: %s", uv_strerror(rc));
    return 1;
  }
  uv_signal_init(&c->loop, &c->sig_int);
  uv_signal_init(&c->loop, &c->sig_term);
  uv_signal_init(&c->loop, &c->sig_hup);
  uv_timer_init(&c->loop, &c->debounce);
  uv_timer_init(&c->loop, &c->drain);
  uv_timer_init(&c->loop, &c->dir_poll);
  uv_fs_event_init(&c->loop, &c->watch);
  c->sig_int.data = c->sig_term.data = c->sig_hup.data = c;
  c->debounce.data = c->drain.data = c->dir_poll.data = c;
  c->watch.data = c;
  return 0;
}

/* Signals, the directory watch (or the poll that waits for the directory),
 * the poll timer. */
static void control_start(control *c) {
  uv_signal_start(&c->sig_int, on_signal, SIGINT);
  uv_signal_start(&c->sig_term, on_signal, SIGTERM);
  uv_signal_start(&c->sig_hup, on_signal, SIGHUP);
  struct stat st;
  if (stat(qs_g.cfg.models_dir, &st) == 0 && S_ISDIR(st.st_mode) &&
      uv_fs_event_start(&c->watch, on_watch, qs_g.cfg.models_dir, 0) == 0) {
    c->watching = true;
    c->dir_dev = st.st_dev;
    c->dir_ino = st.st_ino;
  } else {
    qs_log("models directory %s is missing or cannot be watched; checking every second "
           "(SIGHUP rescans it)", qs_g.cfg.models_dir);
  }
  uv_timer_start(&c->dir_poll, on_dir_poll, DIR_POLL_MS, DIR_POLL_MS);
}

/* Stops the loader: a sync in progress stops after its current file. Waits
 * for it only until the drain deadline (or 100 ms when there was none), so
 * no file can hold the exit past --drain-timeout. */
static void loader_stop(pthread_t loader, uint64_t deadline) {
  atomic_store(&qs_registry_stop, true);
  pthread_mutex_lock(&ld_mu);
  ld_stop = true;
  pthread_cond_broadcast(&ld_cv);
  uint64_t now = qs_now_ns();
  uint64_t wait_ns = deadline > now ? deadline - now : 100000000u;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (time_t)(wait_ns / 1000000000u);
  dl.tv_nsec += (long)(wait_ns % 1000000000u);
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  while (!ld_done)
    if (pthread_cond_timedwait(&ld_cv, &ld_mu, &dl) == ETIMEDOUT) break;
  bool done = ld_done;
  pthread_mutex_unlock(&ld_mu);
  if (done) {
    pthread_join(loader, NULL);
  } else {
    qs_log("a model load is still running at the drain deadline; exiting without it");
    pthread_detach(loader);
    loader_left = true;
  }
}

void qs_control_block_signals(void) { signals_mask(SIG_BLOCK); }

int qs_control_run(struct MHD_Daemon *d) {
  control c = {0};
  if (control_init(&c, d)) return 1;
  pthread_t loader;
  int perr = pthread_create(&loader, NULL, loader_main, NULL);
  if (perr) {
    qs_log("cannot start the loader thread: %s", strerror(perr));
    uv_loop_close(&c.loop);
    return 1;
  }
  control_start(&c);
  /* Signals were blocked since main() began; any that came during start-up
   * are pending and arrive now, into the handlers above. */
  signals_mask(SIG_UNBLOCK);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  signals_mask(SIG_BLOCK);
  drain_deadline = c.drain_deadline;
  loader_stop(loader, c.drain_deadline);
  uv_walk(&c.loop, walk_close, NULL);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&c.loop);
  if (rc) qs_log("uv_loop_close: %s", uv_strerror(rc));
  return c.result;
}
