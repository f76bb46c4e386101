/* api.h - what the decoders and encoders in api/ share. Each wire format
 * decodes the exchange's body into a qs_infer_req, calls the infer step
 * (infer/), and encodes the qs_infer_res (or the error) into the reply. */
#ifndef QS_API_H
#define QS_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/exchange.h"
#include "base/json.h"
#include "infer/infer.h"
#include "model/registry.h"

/* The error reply for an error of the infer step. */
void qs_reply_err(qs_req *r, const qs_err *e);

/* Parses the array text s[0..n) into a new float buffer *x (caller frees).
 * width > 0: rows of exactly width numbers (flat = one row); width == 0:
 * shape taken from the text. max_rows caps the rows, max_numbers the total.
 * The buffer is sized by the smaller of max_numbers and what n bytes can
 * hold, never by a count from the client. On failure sets the error reply
 * and returns false. */
bool qs_parse_batch(qs_req *r, const char *s, size_t n, size_t width, size_t max_rows,
                    size_t max_numbers, float **x, size_t *rows, size_t *cols);

/* Reads the optional "baseline" (bool) and "mode" ("static"|"dynamic")
 * members of obj (may be NULL). Sets the error reply on a wrong type. */
bool qs_read_options(qs_req *r, json_t *obj, bool *baseline, bool *dynamic);

/* Parses r->body with the span sp (if found) replaced by 0, through jansson
 * (duplicate keys refused); the root must be an object. Sets the error reply
 * and returns NULL on failure. */
json_t *qs_parse_envelope(qs_req *r, qs_span sp, bool found);

/* Writes the 200 answer of /predict for a finished run: JSON, or raw
 * float32 outputs when the client asked (r->bin_out). */
void qs_predict_reply(qs_req *r, const qs_infer_res *run, bool want32);
void qs_predict_reply_binary(qs_req *r, const qs_infer_res *run);

/* Copies nfloats little-endian float32 from p into a new buffer *x (caller
 * frees), refusing non-finite values (422; width names the row and column).
 * Sets the error reply and returns false on failure. */
bool qs_binary_floats(qs_req *r, const char *p, size_t nfloats, size_t width, float **x);

/* Sleeps cfg.test_delay_ms (test-only knob; 0 = off). */
void qs_test_delay(void);

#endif
