/* main.c - flags, start-up banner, the --probe health check, shutdown.
 *
 * Order: block signals (so only the control thread ever takes them), load
 * the models, start libmicrohttpd, print the banner, mark ready, run the
 * control loop on its own thread until a drain ends, stop libmicrohttpd,
 * unload. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
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

static void usage(FILE *f) {
  fprintf(f,
          "usage: qatserve [options]\n"
          "  --models DIR         model directory, every *.safetensors in it (env QATSERVE_MODELS; default models)\n"
          "  --host ADDR          numeric listen address (env QATSERVE_HOST; default 127.0.0.1;\n"
          "                       0.0.0.0 or :: listens on all addresses)\n"
          "  --port N             TCP port, 0 = any free port (env PORT; default 8080)\n"
          "  --grpc-port N        gRPC port (KServe v2 GRPCInferenceService, h2c), 0 = any free port,\n"
          "                       -1 = no gRPC (env QATSERVE_GRPC_PORT; default 8081,\n"
          "                       or any free port with --port 0)\n"
          "  --threads N          HTTP worker threads (env QATSERVE_THREADS; default: online cores)\n"
          "  --max-body BYTES     largest request body (default 4194304)\n"
          "  --max-batch N        most rows per request (default 1024)\n"
          "  --max-inflight-bytes BYTES  request body bytes all requests together may hold;\n"
          "                       more gets 503 (default 268435456; at least --max-body)\n"
          "  --drain-timeout S    seconds SIGTERM waits for in-flight requests (default 10)\n"
          "  --conn-limit N       most simultaneous connections (default 1024)\n"
          "  --conn-timeout S     idle/slow connection timeout, 0 = none (default 30)\n"
          "  --default-model NAME the model for requests that name none (default: the only model\n"
          "                       loaded; with several loaded, such requests are refused)\n"
          "  --quiet              no access log\n"
          "  --probe              GET /v2/health/ready on --host/--port; exit 0 if 200, else 1\n"
          "  --help, --version\n"
          "Signals: SIGHUP reloads models (so does any change in the directory);\n"
          "SIGINT/SIGTERM drain and exit 0.\n");
}

/* Strict unsigned parse: digits only, in [min, max]. */
static bool parse_ulong(const char *what, const char *s, unsigned long min, unsigned long max,
                        unsigned long *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') goto bad;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v < min || v > max) goto bad;
  *out = v;
  return true;
bad:
  fprintf(stderr, "qatserve: %s must be an integer in [%lu, %lu], not '%s'\n", what, min, max,
          s ? s : "");
  return false;
}

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
  qs_log("cpu: %s; int8 kernel: %s; fp32 baseline: OpenBLAS %s; %u HTTP threads; max body %zu B, "
         "max batch %zu rows",
         qat_cpu_features(), qat_kernel_name(), qat_blas_corename(), cfg->threads, cfg->max_body,
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
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  *cfg = (qs_config){.models_dir = "models",
                     .host = "127.0.0.1",
                     .port = 8080,
                     .grpc_port = 8081,
                     .threads = cores > 0 ? (unsigned)cores : 1,
                     .max_body = 4u * 1024 * 1024,
                     .max_batch = 1024,
                     .max_inflight = 256u * 1024 * 1024,
                     .drain_timeout_s = 10,
                     .conn_limit = 1024,
                     .conn_timeout_s = 30};
  unsigned long v;
  const char *env;
  bool grpc_set = false; /* --grpc-port or QATSERVE_GRPC_PORT given */
  if ((env = getenv("QATSERVE_MODELS")) && *env) cfg->models_dir = env;
  if ((env = getenv("QATSERVE_HOST")) && *env) cfg->host = env;
  if ((env = getenv("PORT")) && *env) {
    if (!parse_ulong("PORT", env, 0, 65535, &v)) return 2;
    cfg->port = (unsigned)v;
  }
  if ((env = getenv("QATSERVE_GRPC_PORT")) && *env) {
    if (strcmp(env, "-1") == 0)
      cfg->grpc_port = -1;
    else if (!parse_ulong("QATSERVE_GRPC_PORT", env, 0, 65535, &v))
      return 2;
    else
      cfg->grpc_port = (int)v;
    grpc_set = true;
  }
  if ((env = getenv("QATSERVE_THREADS")) && *env) {
    if (!parse_ulong("QATSERVE_THREADS", env, 1, 1024, &v)) return 2;
    cfg->threads = (unsigned)v;
  }
  if ((env = getenv("QATSERVE_TEST_DELAY_MS")) && *env) {
    if (!parse_ulong("QATSERVE_TEST_DELAY_MS", env, 0, 60000, &v)) return 2;
    cfg->test_delay_ms = (unsigned)v;
  }
  enum { O_MODELS = 1, O_HOST, O_PORT, O_GRPCPORT, O_THREADS, O_MAXBODY, O_MAXBATCH, O_MAXINFLIGHT, O_DRAIN, O_CONNLIMIT,
         O_CONNTIMEOUT, O_DEFMODEL, O_QUIET, O_PROBE, O_HELP, O_VERSION };
  static const struct option opts[] = {
      {"models", required_argument, NULL, O_MODELS},
      {"host", required_argument, NULL, O_HOST},
      {"port", required_argument, NULL, O_PORT},
      {"grpc-port", required_argument, NULL, O_GRPCPORT},
      {"threads", required_argument, NULL, O_THREADS},
      {"max-body", required_argument, NULL, O_MAXBODY},
      {"max-batch", required_argument, NULL, O_MAXBATCH},
      {"max-inflight-bytes", required_argument, NULL, O_MAXINFLIGHT},
      {"drain-timeout", required_argument, NULL, O_DRAIN},
      {"conn-limit", required_argument, NULL, O_CONNLIMIT},
      {"conn-timeout", required_argument, NULL, O_CONNTIMEOUT},
      {"default-model", required_argument, NULL, O_DEFMODEL},
      {"quiet", no_argument, NULL, O_QUIET},
      {"probe", no_argument, NULL, O_PROBE},
      {"help", no_argument, NULL, O_HELP},
      {"version", no_argument, NULL, O_VERSION},
      {NULL, 0, NULL, 0}};
  bool do_probe = false;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case O_MODELS: cfg->models_dir = optarg; break;
      case O_HOST: cfg->host = optarg; break;
      case O_PORT:
        if (!parse_ulong("--port", optarg, 0, 65535, &v)) return 2;
        cfg->port = (unsigned)v;
        break;
      case O_GRPCPORT:
        grpc_set = true;
        if (strcmp(optarg, "-1") == 0) {
          cfg->grpc_port = -1;
          break;
        }
        if (!parse_ulong("--grpc-port", optarg, 0, 65535, &v)) return 2;
        cfg->grpc_port = (int)v;
        break;
      case O_THREADS:
        if (!parse_ulong("--threads", optarg, 1, 1024, &v)) return 2;
        cfg->threads = (unsigned)v;
        break;
      case O_MAXBODY:
        if (!parse_ulong("--max-body", optarg, 64, 1024UL * 1024 * 1024, &v)) return 2;
        cfg->max_body = v;
        break;
      case O_MAXBATCH:
        if (!parse_ulong("--max-batch", optarg, 1, 1000000, &v)) return 2;
        cfg->max_batch = v;
        break;
      case O_MAXINFLIGHT:
        if (!parse_ulong("--max-inflight-bytes", optarg, 64, 1UL << 40, &v)) return 2;
        cfg->max_inflight = v;
        break;
      case O_DRAIN:
        if (!parse_ulong("--drain-timeout", optarg, 0, 3600, &v)) return 2;
        cfg->drain_timeout_s = (unsigned)v;
        break;
      case O_CONNLIMIT:
        if (!parse_ulong("--conn-limit", optarg, 1, 1000000, &v)) return 2;
        cfg->conn_limit = (unsigned)v;
        break;
      case O_CONNTIMEOUT:
        if (!parse_ulong("--conn-timeout", optarg, 0, 86400, &v)) return 2;
        cfg->conn_timeout_s = (unsigned)v;
        break;
      case O_DEFMODEL:
        if (!qs_name_valid(optarg)) {
          fprintf(stderr, "qatserve: --default-model %s: not a model name (1-128 of A-Z a-z 0-9 . _ -, no "
                          "leading dot; the file is NAME.safetensors in --models)\n", optarg);
          return 2;
        }
        cfg->default_model = optarg;
        break;
      case O_QUIET: cfg->quiet = true; break;
      case O_PROBE: do_probe = true; break;
      case O_HELP: usage(stdout); return 0;
      case O_VERSION: printf("%s %s\n", QS_NAME, QAT_VERSION); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "qatserve: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (do_probe) return probe(cfg->host, cfg->port);
  /* An unusable QAT_KERNEL stops start-up with its reason: never a silent
   * fallback, never a SIGILL later. */
  if (qat_kernel_check() != QAT_OK) {
    fprintf(stderr, "qatserve: %s\n", qat_errmsg());
    return 2;
  }
  if (cfg->max_inflight < cfg->max_body) cfg->max_inflight = cfg->max_body;

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
