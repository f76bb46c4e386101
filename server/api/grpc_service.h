/* grpc_service.h - the KServe v2 gRPC service as a decoder/encoder pair: a
 * request message's bytes in, a status and a reply message's bytes out.
 * ModelInfer decodes into the infer step's request record and encodes its
 * result; the metadata and health calls read the registry. No HTTP/2 here
 * (grpc/h2.c is the transport), so the fuzzer calls it directly. */
#ifndef QS_GRPC_SERVICE_H
#define QS_GRPC_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "api/grpc_frame.h"

typedef enum qs_gmethod {
  QS_GM_NONE = 0, /* not a method of the service: UNIMPLEMENTED */
  QS_GM_SERVER_LIVE,
  QS_GM_SERVER_READY,
  QS_GM_MODEL_READY,
  QS_GM_SERVER_METADATA,
  QS_GM_MODEL_METADATA,
  QS_GM_MODEL_INFER,
  QS_GM_COUNT
} qs_gmethod;

/* The method for a :path ("/inference.GRPCInferenceService/ModelInfer"). */
qs_gmethod qs_grpc_method(const char *path, size_t n);
const char *qs_gmethod_name(qs_gmethod m);

typedef struct qs_gcall {
  /* in */
  qs_gmethod method;
  const uint8_t *msg; /* the request message (without its 5-byte prefix) */
  size_t len;
  uint64_t t0_ns;     /* arrival, for total_us */
  /* out */
  qs_gcode code;
  char text[256];     /* the error's message (code != OK), plain text */
  uint8_t *reply;     /* code == OK: 5-byte prefix + message; malloc'ed, caller frees */
  size_t reply_len;
  int model_slot;     /* metrics slot of the model served, -1 if none */
} qs_gcall;

/* Runs one call. Never fails silently: on any error code/text are set and
 * reply is NULL. */
void qs_grpc_call(qs_gcall *c);

/* Drops the calling thread's decode arena (threads call it before exiting). */
void qs_grpc_thread_done(void);

#endif
