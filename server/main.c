/* main.c - start-up banner, the --probe health check, shutdown.
 *
 * Order: block signals (so only the control thread ever takes them), load
 * the models, start libmicrohttpd, print the banner, mark ready, run the
 * control loop on its own thread until a drain ends, stop libmicrohttpd,
 * unload. */
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

int main(int argc, char **argv) {
  qs_config *cfg = &qs_g.cfg;
  qs_action run;
  int prc = qs_options_parse(argc, argv, cfg, &run);
  if (prc || run == QS_DO_EXIT) return prc;
  if (run == QS_DO_PROBE) return probe(cfg->host, cfg->port);
  /* An unusable QAT_KERNEL stops start-up with its reason: never a silent
   * fallback, never a SIGILL later. */
  if (qat_kernel_check() != QAT_OK) {
    fprintf(stderr, "qatserve: %s\n", qat_errmsg());
    return 2;
  }

  qs_control_block_signals();
  signal(SIGPIPE, SIG_IGN);
  qat_blas_single_thread();
  qs_json_alloc_init();
  qs_registry_init();
  if (qs_registry_sync(cfg->models_dir) < 0)
    qs_log("starting with no models; %s is watched and SIGHUP rescans it", cfg->models_dir);
  struct MHD_Daemon *d = qs_http_start();
  if (!d) {
    qs_registry_shutdown();
    return 1;
  }
  /* With --port 0 (tests, several servers side by side) the gRPC port is
   * any free one too unless given. A default port that is taken is not
   * fatal: the server runs without gRPC and says so; a port asked for is. */
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
  banner(d);
  atomic_store(&qs_g.ready, true);
  /* The control loop gets its own thread; main only waits for it. */
  control_arg ca = {.daemon = d, .rc = 1};
  pthread_t ct;
  int perr = pthread_create(&ct, NULL, control_thread, &ca);
  if (perr) {
    qs_log("cannot start the control thread: %s", strerror(perr));
    qs_grpc_stop();
    qs_http_stop(d);
    qs_registry_shutdown();
    return 1;
  }
  pthread_join(ct, NULL);
  int rc = ca.rc;
  qs_grpc_stop();
  if (qs_control_loader_busy()) {
    /* A load still runs on the loader thread: freeing the registry under
     * it would race; the process ends now and the OS takes everything. */
    qs_log("stopped (a model load was cut short)");
    fflush(stdout);
    _exit(rc);
  }
  qs_http_stop(d);
  qs_registry_shutdown();
  qs_log("stopped");
  return rc;
}
