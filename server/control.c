/* control.c - signals, directory watch, reload, drain; all on one libuv
 * loop so they never race each other: only this thread changes the
 * registry once the server runs.
 *
 *   SIGHUP            reload now
 *   models dir event  reload after 200 ms of quiet (a copy or a rename fires
 *                     several events; one reload sees the finished file)
 *   SIGINT/SIGTERM    not ready, stop accepting (listening socket closed),
 *                     wait for in-flight requests (checked every 10 ms) up to
 *                     --drain-timeout, then stop the loop. A second signal
 *                     stops at once. */
#include "control.h"

#include <microhttpd.h>
#include <pthread.h>
#include <uv.h>

#include "grpc/grpc.h"
#include "registry.h"
#include "server.h"

#define DEBOUNCE_MS 200
#define DRAIN_POLL_MS 10

typedef struct control {
  uv_loop_t loop;
  uv_signal_t sig_int, sig_term, sig_hup;
  uv_fs_event_t watch;
  bool watching;
  uv_timer_t debounce, drain;
  struct MHD_Daemon *daemon;
  uint64_t drain_started, drain_deadline;
  int result;
} control;

static void reload(const char *why) {
  qs_log("reload (%s): scanning %s", why, qs_g.cfg.models_dir);
  int n = qs_registry_sync(qs_g.cfg.models_dir);
  if (n >= 0) qs_log("reload (%s): %d models serving", why, n);
}

static void on_debounce(uv_timer_t *t) {
  (void)t;
  reload("directory changed");
}

static void on_watch(uv_fs_event_t *h, const char *file, int events, int status) {
  control *c = h->data;
  (void)file;
  (void)events;
  if (status < 0) {
    qs_log("models watch: %s", uv_strerror(status));
    return;
  }
  uv_timer_start(&c->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void close_all(control *c) {
  uv_signal_stop(&c->sig_int);
  uv_signal_stop(&c->sig_term);
  uv_signal_stop(&c->sig_hup);
  if (c->watching) uv_fs_event_stop(&c->watch);
  uv_timer_stop(&c->debounce);
  uv_timer_stop(&c->drain);
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

void qs_control_block_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int qs_control_run(struct MHD_Daemon *d) {
  control c = {0};
  c.daemon = d;
  c.result = 0;
  int rc = uv_loop_init(&c.loop);
  if (rc) {
    qs_log("uv_loop_init: %s", uv_strerror(rc));
    return 1;
  }
  uv_signal_init(&c.loop, &c.sig_int);
  uv_signal_init(&c.loop, &c.sig_term);
  uv_signal_init(&c.loop, &c.sig_hup);
  uv_timer_init(&c.loop, &c.debounce);
  uv_timer_init(&c.loop, &c.drain);
  c.sig_int.data = c.sig_term.data = c.sig_hup.data = &c;
  c.debounce.data = c.drain.data = &c;
  uv_signal_start(&c.sig_int, on_signal, SIGINT);
  uv_signal_start(&c.sig_term, on_signal, SIGTERM);
  uv_signal_start(&c.sig_hup, on_signal, SIGHUP);
  uv_fs_event_init(&c.loop, &c.watch);
  c.watch.data = &c;
  rc = uv_fs_event_start(&c.watch, on_watch, qs_g.cfg.models_dir, 0);
  if (rc)
    qs_log("cannot watch %s (%s): reload with SIGHUP", qs_g.cfg.models_dir, uv_strerror(rc));
  else
    c.watching = true;
  /* Signals were blocked since main() began; any that came during start-up
   * are pending and arrive now, into the handlers above. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  uv_walk(&c.loop, walk_close, NULL);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&c.loop);
  if (rc) qs_log("uv_loop_close: %s", uv_strerror(rc));
  return c.result;
}
