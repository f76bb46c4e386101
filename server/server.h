/* server.h - what the server's files share: the configuration, the process
 * state the HTTP threads and the control loop both read, and the request
 * record each handler fills.
 *
 * Threads: libmicrohttpd's pool runs the handlers; the libuv control thread
 * (control.c) owns signals, directory watching, reload and shutdown; main()
 * only starts and joins. Shared state is atomics or lives behind the
 * registry's lock. */
#ifndef QS_SERVER_H
#define QS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "qat.h"

#define QS_NAME "qatserve"

typedef struct qs_config {
  const char *models_dir;   /* default "models" */
  const char *host;         /* default "127.0.0.1"; "0.0.0.0" or "::" for all */
  unsigned port;            /* default 8080 */
  int grpc_port;            /* gRPC (grpc/), default 8081; 0 = any free port, -1 = off */
  unsigned threads;         /* default: online cores */
  size_t max_body;          /* bytes, default 4 MiB */
  size_t max_batch;         /* rows per request, default 1024 */
  size_t max_inflight;      /* body bytes held by all requests, default 256 MiB */
  unsigned drain_timeout_s; /* default 10 */
  unsigned conn_limit;      /* default 1024 */
  unsigned conn_timeout_s;  /* idle/slow connection timeout, default 30 */
  bool quiet;               /* no access log */
  bool silent;              /* no log at all (unit tests) */
  unsigned test_delay_ms;   /* QATSERVE_TEST_DELAY_MS: test-only, sleeps in /predict */
  unsigned batch_window_us; /* dynamic batching window (batch.c); 0 = off (default) */
} qs_config;

/* Process-wide state. ready: start-up finished and not draining. */
typedef struct qs_state {
  qs_config cfg;
  atomic_bool ready;
  atomic_bool draining;
  atomic_long inflight; /* requests between first callback and completion */
  _Atomic size_t body_bytes; /* body buffer bytes held by all requests */
  atomic_long pending;  /* /predict and v2 infer requests not yet past their handler:
                         * the most a dynamic batch can still gather (batch.c) */
} qs_state;

extern qs_state qs_g;

/* Endpoints, for metrics labels and routing. */
typedef enum qs_endpoint {
  QS_EP_PREDICT = 0,
  QS_EP_V2_INFER,
  QS_EP_V2_MODEL,
  QS_EP_V2_HEALTH,
  QS_EP_V2_SERVER,
  QS_EP_MODELS,
  QS_EP_METRICS,
  QS_EP_OTHER,
  QS_EP_COUNT
} qs_endpoint;

const char *qs_endpoint_name(qs_endpoint e);

/* One HTTP request, from the first callback to completion. */
typedef struct qs_req {
  uint64_t t0_ns;
  qs_endpoint ep;
  int route;               /* http.c's route id */
  char method[8];
  char path[160];          /* for the access log; truncated */
  char name[129];          /* model name taken from the URL, if any */
  bool name_bad;           /* the URL's name is not a valid model name */
  bool head;               /* HEAD: body suppressed by libmicrohttpd */
  /* The body, capped at cfg.max_body as it arrives. */
  char *body;
  size_t body_len, body_size;
  bool too_big;            /* over --max-body: discard the rest, answer 413 */
  bool busy;               /* over --max-inflight-bytes: discard, answer 503 */
  uint64_t discarded;      /* body bytes thrown away after too_big/busy */
  size_t accounted;        /* this request's share of qs_g.body_bytes */
  bool queued;
  bool pending;            /* counted in qs_g.pending */
  /* Filled by the handler. */
  int status;
  int model_slot;          /* metrics slot of the model served, -1 if none */
  qs_buf out;
  const char *allow;       /* Allow header for 405 */
  size_t bytes_out;
  /* Binary payloads (binary.c), read from the headers at the first callback. */
  bool bin_in;             /* /predict: Content-Type application/octet-stream */
  bool bin_out;            /* /predict: Accept application/octet-stream */
  bool v2_bin;             /* v2 infer: Inference-Header-Content-Length was sent */
  bool v2_hlen_bad;        /* ... and is not a byte count */
  size_t v2_hlen;          /* ... its value */
  char qmodel[130];        /* /predict binary: ?model= or X-Model ("" if neither) */
  char qbaseline[8];       /* ?baseline= (binary /predict) */
  char qmode[10];          /* ?mode= (binary /predict) */
  const char *ctype;       /* reply Content-Type when not JSON */
  /* Extra reply headers: "Name\0Value\0" pairs (qs_req_header), allocated
   * on first use (binary replies only) so other requests stay small. */
  char *xh;
  size_t xh_len;
} qs_req;

/* Adds a reply header (dropped if r->xh is full). */
void qs_req_header(qs_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint64_t qs_now_ns(void);

/* One line to stderr, prefixed with the UTC time; written with a single
 * write() so lines from different threads never interleave. */
void qs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets an error reply {"error": msg} with status. */
void qs_reply_error(qs_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Handlers (predict.c, kserve.c, info.c): read r->body, fill status + out. */
void qs_handle_predict(qs_req *r);
/* binary.c: /predict with an application/octet-stream body. */
void qs_handle_predict_binary(qs_req *r);
/* binary.c: reads the binary-payload headers and query arguments into r. */
struct MHD_Connection;
void qs_binary_headers(qs_req *r, struct MHD_Connection *c);
void qs_handle_v2_infer(qs_req *r);
void qs_handle_v2_server(qs_req *r);
void qs_handle_v2_model(qs_req *r);
void qs_handle_v2_model_ready(qs_req *r);
void qs_handle_models(qs_req *r);
void qs_handle_model(qs_req *r);

/* Checks a model name: 1..128 of [A-Za-z0-9._-], no leading dot. */
bool qs_name_valid(const char *name);

/* HTTP daemon (http.c). */
struct MHD_Daemon;
struct MHD_Daemon *qs_http_start(void);
/* Stops accepting: closes the listening socket, keeps connections. */
void qs_http_quiesce(struct MHD_Daemon *d);
void qs_http_stop(struct MHD_Daemon *d);
/* The port actually bound (useful with --port 0). */
unsigned qs_http_port(struct MHD_Daemon *d);

#endif
