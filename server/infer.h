/* infer.h - what /predict and the v2 infer endpoint share: turning a number
 * array into a bounded float batch, and running the int8 model (and the
 * fp32 baseline) on it with timings. */
#ifndef QS_INFER_H
#define QS_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "registry.h"
#include "server.h"

/* Parses the array text s[0..n) into a new float buffer *x (caller frees).
 * width > 0: rows of exactly width numbers (flat = one row); width == 0:
 * shape taken from the text. max_rows caps the rows, max_numbers the total.
 * The buffer is sized by the smaller of max_numbers and what n bytes can
 * hold, never by a count from the client. On failure sets the error reply
 * and returns false. */
bool qs_parse_batch(qs_req *r, const char *s, size_t n, size_t width, size_t max_rows,
                    size_t max_numbers, float **x, size_t *rows, size_t *cols);

typedef struct qs_run {
  /* in */
  qs_model *m;
  const float *x;
  size_t rows;
  bool baseline;
  bool dynamic;
  /* out (y8 and y32 owned by the run; qs_run_free) */
  float *y8, *y32;
  uint64_t ns_int8, ns_fp32;
  float max_abs_diff;
  size_t argmax_agree;
  /* Dynamic batching (batch.c): rows of the batch this request ran in and
   * the time it waited for it; batch_rows == 0 when it ran alone. */
  size_t batch_rows;
  uint64_t ns_queue;
} qs_run;

/* The bare compute: int8 (static or dynamic) then, if baseline, fp32, on a
 * context borrowed from m's pool; times each. */
qat_err qs_compute(qs_model *m, const float *x, size_t rows, bool baseline, bool dynamic,
                   float *y8, float *y32, uint64_t *ns8, uint64_t *ns32);
/* The error reply for a failed qs_compute (msg: its qat_errmsg()). */
void qs_reply_infer_error(qs_req *r, qat_err e, const char *msg);
/* batch.c: runs run (y8/y32 allocated) inside a dynamic batch; fills the
 * timings, batch_rows and ns_queue. On failure sets the error reply. */
bool qs_batch_compute(qs_req *r, qs_run *run);
/* batch.c: per-model batcher state, set up and torn down with the model. */
void qs_batcher_init(qs_model *m);
void qs_batcher_destroy(qs_model *m);

/* Runs the model; on failure sets the error reply and returns false. */
bool qs_run_model(qs_req *r, qs_run *run);
void qs_run_free(qs_run *run);
size_t qs_argmax(const float *v, size_t n);

/* Reads the optional "baseline" (bool) and "mode" ("static"|"dynamic")
 * members of obj (may be NULL). Sets the error reply on a wrong type. */
bool qs_read_options(qs_req *r, json_t *obj, bool *baseline, bool *dynamic);

/* Parses r->body with the span sp (if found) replaced by 0, through jansson
 * (duplicate keys refused); the root must be an object. Sets the error reply
 * and returns NULL on failure. */
json_t *qs_parse_envelope(qs_req *r, qs_span sp, bool found);

/* Writes the 200 answer of /predict for a finished run: JSON, or raw
 * float32 outputs when the client asked (r->bin_out). */
void qs_predict_reply(qs_req *r, qs_model *m, const qs_run *run, bool want32);
void qs_predict_reply_binary(qs_req *r, qs_model *m, const qs_run *run);

/* Copies nfloats little-endian float32 from p into a new buffer *x (caller
 * frees), refusing non-finite values (422; width names the row and column).
 * Sets the error reply and returns false on failure. */
bool qs_binary_floats(qs_req *r, const char *p, size_t nfloats, size_t width, float **x);

/* Routes jansson's allocations through a hook that notes failures (once,
 * at start-up); qs_json_alloc_failed says whether one failed on this thread
 * since the last call, and clears the note. */
void qs_json_alloc_init(void);
bool qs_json_alloc_failed(void);

/* Sleeps cfg.test_delay_ms (test-only knob; 0 = off). */
void qs_test_delay(void);

#endif
