/* budget.h - the process-wide accounting both transports (http/, grpc/)
 * share: request body bytes against --max-inflight-bytes (qs_g.body_bytes)
 * and requests in flight (qs_g.inflight, which the drain waits for). Each
 * HTTP request and each gRPC stream keeps its own share in a size_t and
 * gives it all back when it ends.
 *
 * Connections are not counted here: libmicrohttpd enforces --conn-limit on
 * the HTTP listener itself (MHD_OPTION_CONNECTION_LIMIT), and h2.c counts
 * its own listener's connections, which only it accepts. A leaf: includes
 * only config.h. */
#ifndef QS_BUDGET_H
#define QS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

/* Takes n more body bytes for a request already holding *held: true and
 * *held += n, or false, nothing taken, when the bytes of every request
 * together would pass --max-inflight-bytes (the caller answers 503 /
 * RESOURCE_EXHAUSTED rather than push the process out of memory). */
bool qs_budget_take(size_t *held, size_t n);

/* Gives back all *held bytes; *held becomes 0. */
void qs_budget_release(size_t *held);

/* A request (HTTP) or stream (gRPC) begins / ends. */
void qs_inflight_begin(void);
void qs_inflight_end(void);

#endif
