/* options.c - the option table and everything generated from it: parsing
 * (environment, then flags), --help, and the docs' flag tables. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/registry.h"
#include "qat.h"

typedef enum {
  K_STR,     /* const char * field */
  K_NAME,    /* const char * field holding a model name (qs_name_valid) */
  K_UINT,    /* unsigned field */
  K_SIZE,    /* size_t field */
  K_PORT,    /* int field: a port in [min, max], or -1 = off */
  K_BOOL,    /* switch, sets a bool field */
  K_PROBE,   /* --probe */
  K_HELP,    /* --help */
  K_VERSION, /* --version */
  K_MD,      /* --help-markdown=readme|api (hidden: the docs generator's) */
  K_DOC      /* read elsewhere (core), listed for the docs only */
} opt_kind;

enum { F_HIDDEN = 1, F_API_ONLY = 2 };

typedef struct opt {
  const char *flag;    /* without "--"; NULL: environment only */
  const char *arg;     /* metavariable; NULL for switches */
  const char *env;     /* environment variable, or NULL */
  opt_kind kind;
  size_t off;          /* field in qs_config */
  const char *defs;    /* K_STR default */
  unsigned long defn, min, max;
  const char *def_doc; /* the default as --help and the docs show it */
  const char *brief;   /* --help and README.md */
  const char *detail;  /* docs/api.md; NULL = brief */
  unsigned flags;
} opt;

#define CFG(f) offsetof(qs_config, f)

/* Texts are Markdown (backticks); --help strips the backticks. */
static const opt opts[] = {
    {"models", "DIR", "QATSERVE_MODELS", K_STR, CFG(models_dir), "models", 0, 0, 0, "`models`",
     "every `*.safetensors` in it; the model's name is the file name",
     "directory; every `*.safetensors` in it is a model named after the file "
     "(`fashion-mnist.safetensors` → `fashion-mnist`); names are 1–128 of `A-Z a-z 0-9 . _ -`, "
     "no leading dot (other files are ignored with a log line)", 0},
    {"host", "ADDR", "QATSERVE_HOST", K_STR, CFG(host), "127.0.0.1", 0, 0, 0, "`127.0.0.1`",
     "numeric listen address; `0.0.0.0` (or `::`) listens on all addresses",
     "numeric listen address; `0.0.0.0` (IPv4) or `::` (IPv6, usually also IPv4) listens on all "
     "addresses, as in a container", 0},
    {"port", "N", "PORT", K_UINT, CFG(port), NULL, 8080, 0, 65535, "`8080`",
     "TCP port; `0` picks a free port",
     "TCP port; `0` picks a free one (the log line `listening on http://HOST:PORT` names it)", 0},
    {"grpc-port", "N", "QATSERVE_GRPC_PORT", K_PORT, CFG(grpc_port), NULL, 8081, 0, 65535, "`8081`",
     "gRPC (KServe v2 GRPCInferenceService, h2c); `0` picks a free port (also the default with "
     "`--port 0`), `-1` disables", NULL, 0},
    {"threads", "N", "QATSERVE_THREADS", K_UINT, CFG(threads), NULL, 0, 1, 1024, "online cores",
     "libmicrohttpd worker threads, and as many gRPC I/O threads",
     "libmicrohttpd worker threads (epoll, one thread pool), and as many gRPC I/O threads", 0},
    {"max-body", "BYTES", NULL, K_SIZE, CFG(max_body), NULL, 4u << 20, 64, 1UL << 30,
     "`4194304` (4 MiB)",
     "largest request body, checked before it is buffered (413); the largest gRPC message "
     "(RESOURCE_EXHAUSTED)", NULL, 0},
    {"max-batch", "N", NULL, K_SIZE, CFG(max_batch), NULL, 1024, 1, 1000000, "`1024`",
     "most rows per request (413, gRPC RESOURCE_EXHAUSTED)", NULL, 0},
    {"max-inflight-bytes", "BYTES", NULL, K_SIZE, CFG(max_inflight), NULL, 256UL << 20, 64,
     1UL << 40, "`268435456` (256 MiB)",
     "request body bytes all requests together may hold (at least `--max-body`); more gets 503",
     "request body bytes all requests together may hold (at least `--max-body`); a body that "
     "would go past it is discarded and answered 503", 0},
    {"drain-timeout", "S", NULL, K_UINT, CFG(drain_timeout_s), NULL, 10, 0, 3600, "`10`",
     "seconds SIGTERM/SIGINT waits for in-flight requests; past it the server exits 1", NULL, 0},
    {"conn-limit", "N", NULL, K_UINT, CFG(conn_limit), NULL, 1024, 1, 1000000, "`1024`",
     "most simultaneous connections", NULL, 0},
    {"conn-timeout", "S", NULL, K_UINT, CFG(conn_timeout_s), NULL, 30, 0, 86400, "`30`",
     "idle or slow connections are closed after S seconds (`0` = never)", NULL, 0},
    {"default-model", "NAME", NULL, K_NAME, CFG(default_model), NULL, 0, 0, 0,
     "the only model loaded",
     "the model for requests that name none; without it, such requests are refused (400) once "
     "several are loaded",
     "the model for requests that name none (`/predict` without `\"model\"` or `?model=`, gRPC "
     "with an empty `model_name`). Without it a request that names no model is served by the "
     "only model loaded, and refused (400, naming the ways to name one) when several are; a "
     "default that is not loaded answers 503 naming the file to add", 0},
    {"quiet", NULL, NULL, K_BOOL, CFG(quiet), NULL, 0, 0, 0, "off", "no access log", NULL, 0},
    {"probe", NULL, NULL, K_PROBE, 0, NULL, 0, 0, 0, "",
     "GET `/v2/health/ready` on `--host`/`--port`; exit 0 on 200, else 1 (container health checks)",
     "`GET /v2/health/ready` on `--host`/`--port` (`0.0.0.0` → `127.0.0.1`); exit 0 on 200, else "
     "1. For container health checks: the runtime image needs no curl", 0},
    {"help", NULL, NULL, K_HELP, 0, NULL, 0, 0, 0, "", "this text", NULL, F_HIDDEN},
    {"version", NULL, NULL, K_VERSION, 0, NULL, 0, 0, 0, "", "print the version", NULL, F_HIDDEN},
    {"help-markdown", "TABLE", NULL, K_MD, 0, NULL, 0, 0, 0, "", "the docs' flag table", NULL,
     F_HIDDEN},
    {NULL, NULL, "QAT_KERNEL", K_DOC, 0, NULL, 0, 0, 0, "unset (the fastest tier the CPU runs)",
     "`ref`, `avx2`, `avxvnni` or `avx512vnni` forces an int8 kernel tier; one the CPU lacks stops "
     "start-up (exit 2) naming the missing feature", NULL, 0},
    {NULL, NULL, "QATSERVE_TEST_DELAY_MS", K_UINT, CFG(test_delay_ms), NULL, 0, 0, 60000, "`0`",
     "test only: every inference request sleeps this long first",
     "**test only**: every inference request sleeps this long first, so tests can have a request "
     "in flight during SIGTERM. Never set it in production", F_API_ONLY},
};
#define N_OPTS (sizeof opts / sizeof *opts)

/* Set by the last qs_options_parse: which options the environment or a
 * flag gave (main decides some defaults by it, e.g. the gRPC port). */
static bool given[N_OPTS];

bool qs_options_given(const char *flag) {
  for (size_t i = 0; i < N_OPTS; i++)
    if (opts[i].flag && strcmp(opts[i].flag, flag) == 0) return given[i];
  return false;
}

static void *field(qs_config *cfg, const opt *o) { return (char *)cfg + o->off; }

/* Strict unsigned parse: digits only, in [min, max]. */
static int set_number(qs_config *cfg, const opt *o, const char *what, const char *s) {
  char *end;
  errno = 0;
  unsigned long v = 0;
  bool ok = s && *s >= '0' && *s <= '9';
  if (ok) v = strtoul(s, &end, 10);
  if (!ok || errno || *end || v < o->min || v > o->max) {
    fprintf(stderr, "qatserve: %s must be an integer in [%lu, %lu]%s, not '%s'\n", what, o->min,
            o->max, o->kind == K_PORT ? " or -1" : "", s ? s : "");
    return 2;
  }
  if (o->kind == K_UINT)
    *(unsigned *)field(cfg, o) = (unsigned)v;
  else if (o->kind == K_PORT)
    *(int *)field(cfg, o) = (int)v;
  else
    *(size_t *)field(cfg, o) = v;
  return 0;
}

static int set_value(qs_config *cfg, const opt *o, const char *what, const char *s) {
  switch (o->kind) {
    case K_STR: *(const char **)field(cfg, o) = s; return 0;
    case K_NAME:
      if (!qs_name_valid(s)) {
        fprintf(stderr, "qatserve: %s %s: not a model name (1-128 of A-Z a-z 0-9 . _ -, no leading "
                        "dot; the file is NAME.safetensors in --models)\n", what, s);
        return 2;
      }
      *(const char **)field(cfg, o) = s;
      return 0;
    case K_PORT:
      if (s && strcmp(s, "-1") == 0) {
        *(int *)field(cfg, o) = -1;
        return 0;
      }
      return set_number(cfg, o, what, s);
    case K_UINT:
    case K_SIZE: return set_number(cfg, o, what, s);
    case K_BOOL: *(bool *)field(cfg, o) = true; return 0;
    default: return 0;
  }
}

/* Markdown to terminal: backticks and the ** of bold are markup. */
static bool markup(const char *start, const char *p) {
  return *p == '`' || (p[0] == '*' && p[1] == '*') || (p > start && p[-1] == '*' && p[0] == '*');
}


static void put_plain(FILE *f, const char *s, size_t *col, size_t indent, size_t width) {
  /* Word-wrap at width, continuation lines indented. */
  while (*s) {
    const char *w = s;
    while (*w == ' ') w++;
    const char *e = w;
    while (*e && *e != ' ') e++;
    size_t len = 0;
    for (const char *p = w; p < e; p++)
      if (!markup(w, p)) len++;
    if (*col > indent && *col + 1 + len > width) {
      fprintf(f, "\n%*s", (int)indent, "");
      *col = indent;
    } else if (*col > indent) {
      fputc(' ', f);
      (*col)++;
    }
    for (const char *p = w; p < e; p++)
      if (!markup(w, p)) fputc(*p, f);
    *col += len;
    s = e;
  }
}

void qs_options_usage(FILE *f) {
  fprintf(f, "usage: qatserve [options]\n");
  const size_t indent = 24, width = 100;
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    if (!o->flag || (o->flags & F_HIDDEN)) continue;
    int n = fprintf(f, "  --%s%s%s", o->flag, o->arg ? " " : "", o->arg ? o->arg : "");
    size_t col = (size_t)n;
    if (col + 1 >= indent) {
      fprintf(f, "\n");
      col = 0;
    }
    fprintf(f, "%*s", (int)(indent - col), "");
    col = indent;
    /* Environment and default first, so they stay on the flag's line. */
    if (o->env || *o->def_doc) {
      char extra[160];
      snprintf(extra, sizeof extra, "(%s%s%s%s%s)", o->env ? "env " : "", o->env ? o->env : "",
               o->env && *o->def_doc ? "; " : "", *o->def_doc ? "default " : "", o->def_doc);
      put_plain(f, extra, &col, indent, width);
    }
    put_plain(f, o->brief, &col, indent, width);
    fputc('\n', f);
  }
  fprintf(f, "  --help, --version\n");
  fprintf(f, "Environment:\n");
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    if (o->flag || (o->flags & F_API_ONLY)) continue;
    int n = fprintf(f, "  %s", o->env);
    size_t col = (size_t)n;
    fprintf(f, "%*s", (int)(indent > col ? indent - col : 1), "");
    col = indent;
    put_plain(f, o->brief, &col, indent, width);
    fputc('\n', f);
  }
  fprintf(f,
          "Signals: SIGHUP reloads models (so does any change in the directory);\n"
          "SIGINT/SIGTERM drain and exit 0 (1 if requests were still running after "
          "--drain-timeout).\n"
          "Exit status: 0 after a drain, 1 on a start-up failure or a drain timeout, 2 on a bad "
          "option.\n");
}

int qs_options_markdown(FILE *f, const char *which) {
  bool api = which && strcmp(which, "api") == 0;
  if (!api && !(which && strcmp(which, "readme") == 0)) {
    fprintf(stderr, "qatserve: --help-markdown takes readme or api, not '%s'\n",
            which ? which : "");
    return 2;
  }
  fprintf(f, "| flag | environment | default | %s|\n|---|---|---|---|\n", api ? "meaning " : "");
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    if (o->flags & F_HIDDEN) continue;
    if ((o->flags & F_API_ONLY) && !api) continue;
    fprintf(f, "| ");
    if (o->flag) fprintf(f, "`--%s%s%s` ", o->flag, o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(f, "| ");
    if (o->env) fprintf(f, "`%s` ", o->env);
    fprintf(f, "| %s%s| %s |\n", o->def_doc, *o->def_doc ? " " : "",
            api && o->detail ? o->detail : o->brief);
  }
  return 0;
}

static void defaults(qs_config *cfg) {
  *cfg = (qs_config){0};
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    if (o->kind == K_STR) *(const char **)field(cfg, o) = o->defs;
    if (o->kind == K_UINT) *(unsigned *)field(cfg, o) = (unsigned)o->defn;
    if (o->kind == K_SIZE) *(size_t *)field(cfg, o) = o->defn;
    if (o->kind == K_PORT) *(int *)field(cfg, o) = (int)o->defn;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (!cfg->threads) cfg->threads = cores > 0 ? (unsigned)cores : 1;
}

int qs_options_parse(int argc, char **argv, qs_config *cfg, qs_action *run) {
  defaults(cfg);
  *run = QS_DO_SERVE;
  memset(given, 0, sizeof given);
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt *o = &opts[i];
    const char *env = o->env ? getenv(o->env) : NULL;
    if (o->kind == K_DOC || !env || !*env) continue;
    if (set_value(cfg, o, o->env, env)) return 2;
    given[i] = true;
  }
  struct option lo[N_OPTS + 1];
  size_t n = 0;
  for (size_t i = 0; i < N_OPTS; i++)
    if (opts[i].flag)
      lo[n++] = (struct option){opts[i].flag, opts[i].arg ? required_argument : no_argument, NULL,
                                (int)i + 1};
  lo[n] = (struct option){0};
  int c;
  optind = 1;
  opterr = 1;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    if (c < 1 || c > (int)N_OPTS) {
      qs_options_usage(stderr);
      return 2;
    }
    const opt *o = &opts[c - 1];
    char what[64];
    snprintf(what, sizeof what, "--%s", o->flag);
    switch (o->kind) {
      case K_PROBE: *run = QS_DO_PROBE; break;
      case K_HELP: qs_options_usage(stdout); *run = QS_DO_EXIT; return 0;
      case K_VERSION: printf("%s %s\n", QS_NAME, QAT_VERSION); *run = QS_DO_EXIT; return 0;
      case K_MD: *run = QS_DO_EXIT; return qs_options_markdown(stdout, optarg);
      default:
        if (set_value(cfg, o, what, optarg)) return 2;
        given[c - 1] = true;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "qatserve: unexpected argument '%s'\n", argv[optind]);
    qs_options_usage(stderr);
    return 2;
  }
  if (cfg->max_inflight < cfg->max_body) cfg->max_inflight = cfg->max_body;
  return 0;
}
