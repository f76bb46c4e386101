/* grpc.h - the gRPC listener (KServe v2 GRPCInferenceService over HTTP/2
 * cleartext, prior knowledge), for main() and the control loop. */
#ifndef QS_GRPC_H
#define QS_GRPC_H

#include <stdbool.h>

/* Binds cfg.host:cfg.grpc_port and starts cfg.threads I/O threads. Returns
 * false (logged) if it cannot listen. */
bool qs_grpc_start(void);
/* The port actually bound (useful with --grpc-port 0); 0 when not started. */
unsigned qs_grpc_port(void);
/* Draining (SIGTERM): stop accepting, send GOAWAY on every connection, and
 * answer streams that start from now on UNAVAILABLE. Safe to call from any
 * thread, and when not started. */
void qs_grpc_quiesce(void);
/* Stops the threads and closes every connection. */
void qs_grpc_stop(void);

#endif
