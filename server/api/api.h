/* api.h - what the decoders and encoders in api/ share. Each wire format
 * decodes the exchange's body into a qs_infer_req, calls the infer step
 * (infer/), and encodes the qs_infer_res (or the error) into the reply. */
#ifndef QS_API_H
#define QS_API_H

#include <stdbool.h>
#include <stddef.h>

#include "api/exchange.h"
#include "base/json.h"
#include "base/json_walk.h"
#include "base/scratch.h"
#include "infer/infer.h"
#include "model/registry.h"

/* Each thread's decoding scratch, reused request after request: the input
 * floats, the JSON walker's key table, and decoded strings (the v2 "id",
 * echoed in the reply). A request's floats and strings live here from its
 * decoding to its reply (one thread runs the whole request). */
typedef struct qs_api_ctx {
  qs_scratch x;
  qs_jkeys keys;
  qs_scratch str;
} qs_api_ctx;

#define QS_API_KEEP_BYTES (1u << 20) /* input scratch kept between requests */

/* NULL when out of memory (the first request of a thread only). */
qs_api_ctx *qs_api_ctx_get(void);
/* Room for n floats in c (NULL when out of memory). */
float *qs_api_floats(qs_api_ctx *c, size_t n);
/* The validated JSON string bytes raw[0..n) decoded into c's string
 * scratch, NUL-ended (NULL when out of memory). */
const char *qs_api_string(qs_api_ctx *c, const char *raw, size_t n);
/* Frees the calling thread's context (tests walking first-request
 * allocation failures). */
void qs_api_ctx_drop(void);
/* End of a request: trims a scratch grown past QS_API_KEEP_BYTES. */
void qs_api_ctx_done(qs_api_ctx *c);

/* The error reply for an error of the infer step. */
void qs_reply_err(qs_req *r, const qs_err *e);

/* The error reply for a number array that did not parse (json.h's
 * qs_json_parse_matrix): width as passed to it, max_rows the row cap. */
void qs_reply_matrix_error(qs_req *r, qs_jerr e, size_t width, size_t max_rows, size_t errpos);

/* The error reply for a JSON walk that stopped (json_walk.h): 503 when its
 * key table could not grow, else 400 naming the fault and its byte. */
void qs_reply_walk_error(qs_req *r, const qs_jwalk *w, qs_jerr e);

/* Writes the 200 answer of /predict for a finished run: JSON, or raw
 * float32 outputs when the client asked (r->bin_out). */
void qs_predict_reply(qs_req *r, const qs_infer_res *run, bool want32);
void qs_predict_reply_binary(qs_req *r, const qs_infer_res *run);

/* Copies nfloats little-endian float32 from p into ctx's scratch (*x),
 * refusing non-finite values (422; width names the row and column). Sets
 * the error reply and returns false on failure. */
bool qs_binary_floats(qs_req *r, qs_api_ctx *ctx, const char *p, size_t nfloats, size_t width,
                      const float **x);

/* v2_meta.c: the model named in the URL (its metrics slot noted), or NULL
 * with a 404 reply. */
qs_model *qs_v2_model_or_404(qs_req *r);

/* Sleeps cfg.test_delay_ms (test-only knob; 0 = off). */
void qs_test_delay(void);

#endif
