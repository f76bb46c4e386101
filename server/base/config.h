/* config.h - the server's configuration and the process-wide state that the
 * HTTP threads and the control loop both read.
 *
 * Threads: libmicrohttpd's pool runs the requests; the libuv control thread
 * (control/) owns signals, directory watching, reload and shutdown; main()
 * only starts and joins. Shared state is atomics or lives behind the
 * registry's lock. A leaf: includes nothing of the server. */
#ifndef QS_CONFIG_H
#define QS_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define QS_NAME "qatserve"

typedef struct qs_config {
  const char *models_dir;   /* default "models" */
  const char *default_model; /* --default-model: used when a request names none */
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
} qs_config;

/* Process-wide state. ready: start-up finished and not draining. */
typedef struct qs_state {
  qs_config cfg;
  atomic_bool ready;
  atomic_bool draining;
  atomic_long inflight; /* requests between first callback and completion */
  _Atomic size_t body_bytes; /* body buffer bytes held by all requests */
} qs_state;

extern qs_state qs_g;

#endif
