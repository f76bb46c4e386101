/* exchange.h - one HTTP exchange as the API layer sees it: the body and
 * the header values the decoders need (read by http/), and the reply they
 * write (status, body, content type, extra headers). No libmicrohttpd here:
 * http/ fills the record and sends what the handlers leave in it. */
#ifndef QS_EXCHANGE_H
#define QS_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "base/metrics.h"

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
  bool close;              /* reply with Connection: close (ambiguous framing) */
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

/* Makes r ready for the next request on the same thread, keeping its
 * buffers (body, reply, extra headers) for reuse: nothing is allocated for
 * a request once a thread's records have grown to its size. Buffers grown
 * past keep bytes are freed instead. */
void qs_req_reset(qs_req *r, size_t keep);
/* Frees r's buffers (not r). */
void qs_req_free_buffers(qs_req *r);

/* Adds a reply header (dropped if r->xh is full). */
void qs_req_header(qs_req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets an error reply {"error": msg} with status. */
void qs_reply_error(qs_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Handlers (predict.c, kserve.c, info.c): read r->body, fill status + out. */
void qs_handle_predict(qs_req *r);
/* binary.c: /predict with an application/octet-stream body. */
void qs_handle_predict_binary(qs_req *r);
void qs_handle_v2_infer(qs_req *r);
void qs_handle_v2_server(qs_req *r);
void qs_handle_v2_model(qs_req *r);
void qs_handle_v2_model_ready(qs_req *r);
void qs_handle_models(qs_req *r);
void qs_handle_model(qs_req *r);

#endif
