/* main.c - start-up banner, the --probe health check, shutdown.
 *
 * main() runs phases, each a small function (as libuv's and h2o's mains
 * do): parse the options, check the CPU kernel, load (signals blocked first,
 * so only the control thread ever takes them; then the models), start the
 * listeners (libmicrohttpd, gRPC), run (banner, ready, the control loop on
 * its own thread until a drain ends), stop.
 *
 * The stop is bounded: after a drain that timed out with requests still in
 * a handler, or a second signal, the process ends at once (_exit) instead
 * of letting MHD_stop_daemon and the gRPC stop join threads that are still
 * computing; after a clean drain it is a full orderly shutdown (the
 * sanitizer runs check it), watched so it cannot outlast the drain
 * deadline either. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"
#include "control/control.h"
#include "grpc/grpc.h"
#include "http/http.h"
#include "model/registry.h"
#include "options.h"

/* --probe: a raw HTTP/1.0 request, so the runtime image needs no curl. */
static int probe(const char *host, unsigned port) {
  if (strcmp(host, "0.0.0.0") == 0) host = "127.0.0.1";
  if (strcmp(host, "::") == 0) host = "::1";
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  char ps[16];
  snprintf(ps, sizeof ps, "%u", port);
  if (getaddrinfo(host, ps, &hints, &ai) != 0) return 1;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return 1;
  }
  struct timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  freeaddrinfo(ai);
  char buf[64] = {0};
  if (ok) {
    static const char req[] = "GET /v2/health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n";
    ok = send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1);
  }
  size_t got = 0;
  while (ok && got < 12) {
    ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  /* "HTTP/1.x 200" */
  return got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0 ? 0 : 1;
}

static void banner(struct MHD_Daemon *d) {
  const qs_config *cfg = &qs_g.cfg;
  qs_log("%s %s (libmicrohttpd %s, jansson %s, libuv %s)", QS_NAME, QAT_VERSION, MHD_get_version(),
         jansson_version_str(), uv_version_string());
  qs_log("cpu: %s; int8 kernel: %s; fp32 baseline: %s for one row, OpenBLAS %s sgemm for batches; "
         "%u HTTP threads; max body %zu B, max batch %zu rows",
         qat_cpu_features(), qat_kernel_name(), qat_fp32_row_kernel(), qat_blas_corename(), cfg->threads, cfg->max_body,
         cfg->max_batch);
  if (cfg->default_model) {
    qs_model *dm = qs_registry_get(cfg->default_model);
    qs_log("default model: %s%s", cfg->default_model,
           dm ? "" : " (not loaded yet: requests that name no model get 503 until it is)");
    qs_model_release(dm);
  }
  qs_model *list[QS_MAX_MODELS];
  size_t n = qs_registry_list(list, QS_MAX_MODELS);
  for (size_t i = 0; i < n; i++) {
    const qat_model *m = list[i]->model;
    qs_log("model %s: %u -> %u, %u layers, %u labels, crc32 %08x", list[i]->name,
           qat_model_in_dim(m), qat_model_out_dim(m), qat_model_n_layers(m),
           qat_model_n_labels(m), list[i]->crc32);
    qs_model_release(list[i]);
  }
  if (!n) qs_log("no models loaded from %s (add *.safetensors there; it is watched)", cfg->models_dir);
  const char *h = cfg->host;
  bool v6 = strchr(h, ':') != NULL;
  qs_log("listening on http://%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", qs_http_port(d));
  if (qs_grpc_port())
    qs_log("listening on grpc://%s%s%s:%u (KServe v2 gRPC, HTTP/2 cleartext)", v6 ? "[" : "", h, v6 ? "]" : "",
           qs_grpc_port());
}

typedef struct control_arg {
  struct MHD_Daemon *daemon;
  int rc;
} control_arg;

static void *control_thread(void *p) {
  control_arg *a = p;
  a->rc = qs_control_run(a->daemon);
  return NULL;
}

/* Phase: an unusable QAT_KERNEL stops start-up with its reason: never a
 * silent fallback, never a SIGILL later. */
static int phase_check(void) {
  if (qat_kernel_check() != QAT_OK) {
    fprintf(stderr, "qatserve: %s\n", qat_errmsg());
    return 2;
  }
  return 0;
}

/* Phase: process-wide state, then the models. Signals are blocked first so
 * every thread started later inherits the mask. */
static void phase_load(void) {
  const qs_config *cfg = &qs_g.cfg;
  qs_control_block_signals();
  signal(SIGPIPE, SIG_IGN);
  qat_blas_single_thread();
  qs_json_alloc_init();
  qs_registry_init();
  if (qs_registry_sync(cfg->models_dir) < 0)
    qs_log("starting with no models; %s is watched and SIGHUP rescans it", cfg->models_dir);
}

/* Phase: libmicrohttpd, then gRPC. On failure undoes what it started and
 * returns the exit status. With --port 0 (tests, several servers side by
 * side) the gRPC port is any free one too unless given. A default port that
 * is taken is not fatal: the server runs without gRPC and says so; a port
 * asked for is. */
static int phase_listen(struct MHD_Daemon **out) {
  qs_config *cfg = &qs_g.cfg;
  struct MHD_Daemon *d = qs_http_start();
  if (!d) {
    qs_registry_shutdown();
    return 1;
  }
  bool grpc_set = qs_options_given("grpc-port");
  if (!grpc_set && cfg->port == 0) cfg->grpc_port = 0;
  if (cfg->grpc_port >= 0 && !qs_grpc_start()) {
    if (grpc_set) {
      qs_http_stop(d);
      qs_registry_shutdown();
      return 1;
    }
    qs_log("gRPC is off: the default port %d is taken (choose one with --grpc-port)", cfg->grpc_port);
  }
  *out = d;
  return 0;
}

/* Phase: ready, then the control loop on its own thread until a drain ends
 * (main only waits for it). Returns the control loop's exit status. */
static int phase_run(struct MHD_Daemon *d) {
  banner(d);
  atomic_store(&qs_g.ready, true);
  control_arg ca = {.daemon = d, .rc = 1};
  pthread_t ct;
  int perr = pthread_create(&ct, NULL, control_thread, &ca);
  if (perr) {
    qs_log("cannot start the control thread: %s", strerror(perr));
    return 1;
  }
  pthread_join(ct, NULL);
  return ca.rc;
}

/* The stop watch: a thread that ends the process if the orderly stop
 * (joining libmicrohttpd's and gRPC's threads) still waits at `limit` — a
 * request that began on a kept-alive connection after the drain, say. */
typedef struct stop_watch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  uint64_t limit_ns; /* CLOCK_MONOTONIC */
  pthread_t thread;
  bool running;
} stop_watch;

static void *stop_watch_main(void *p) {
  stop_watch *w = p;
  struct timespec dl = {(time_t)(w->limit_ns / 1000000000u), (long)(w->limit_ns % 1000000000u)};
  pthread_mutex_lock(&w->mu);
  int e = 0;
  while (!w->done && e != ETIMEDOUT) e = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
  bool done = w->done;
  pthread_mutex_unlock(&w->mu);
  if (!done) {
    qs_log("stop: a request handler still runs at the drain deadline; exiting without it "
           "(its connection closes unanswered)");
    _exit(1);
  }
  return NULL;
}

/* The limit is the drain deadline, but at least QS_STOP_GRACE_MS from now
 * so an orderly stop that begins just before the deadline can finish. */
#define QS_STOP_GRACE_MS 250

static void stop_watch_start(stop_watch *w) {
  uint64_t now = qs_now_ns(), dl = qs_control_deadline_ns();
  uint64_t min = now + (uint64_t)QS_STOP_GRACE_MS * 1000000u;
  w->done = false;
  w->limit_ns = dl > min ? dl : min;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  /* Without the watch the stop is only unbounded, never wrong. */
  w->running = pthread_create(&w->thread, NULL, stop_watch_main, w) == 0;
}

static void stop_watch_end(stop_watch *w) {
  pthread_mutex_lock(&w->mu);
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (w->running) pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

/* Phase: stop. Ends the process at once when something is still running
 * that an orderly stop would have to wait for: requests in flight after a
 * drain timeout or a second signal (MHD_stop_daemon and the gRPC stop join
 * the threads computing them), or a model load (freeing the registry under
 * it would race). The OS takes everything; exit status 1 (0 if only a load
 * was cut, as before). Otherwise a full orderly stop, bounded by the stop
 * watch. */
static int phase_stop(struct MHD_Daemon *d, int rc) {
  long n = atomic_load(&qs_g.inflight);
  if (rc != 0 && n > 0) {
    qs_log("stopped (%ld requests in flight cut short; their connections close unanswered)", n);
    _exit(rc);
  }
  if (qs_control_loader_busy()) {
    qs_log("stopped (a model load was cut short)");
    _exit(rc);
  }
  stop_watch w;
  stop_watch_start(&w);
  qs_grpc_stop();
  qs_http_stop(d);
  stop_watch_end(&w);
  qs_registry_shutdown();
  qs_log("stopped");
  return rc;
}

int main(int argc, char **argv) {
  qs_config *cfg = &qs_g.cfg;
  qs_action act;
  int rc = qs_options_parse(argc, argv, cfg, &act);
  if (rc || act == QS_DO_EXIT) return rc;
  if (act == QS_DO_PROBE) return probe(cfg->host, cfg->port);
  if ((rc = phase_check())) return rc;
  phase_load();
  struct MHD_Daemon *d = NULL;
  if ((rc = phase_listen(&d))) return rc;
  rc = phase_run(d);
  return phase_stop(d, rc);
}
