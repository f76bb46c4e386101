/* infer.h - the infer step: the one place a request meets a model.
 *
 * Every wire format (native JSON and binary /predict, KServe v2 JSON and its
 * binary extension, gRPC) is a decoder that fills one qs_infer_req and an
 * encoder that writes its reply from one qs_infer_res. Between them,
 * qs_infer_model finds the model and qs_infer_run runs int8, the fp32
 * baseline and the drift comparison, and times them.
 * Nothing here knows about HTTP or any wire format: errors come back as a
 * status class and a message (qs_err) for the encoder to word. */
#ifndef QS_INFER_H
#define QS_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/registry.h"
#include "qat.h"

/* An error for the client: status is an HTTP status class (400 bad request,
 * 404 no such model, 413 too large, 422 unprocessable input, 503 busy or
 * out of memory, 500 internal); encoders for other protocols map it. */
typedef struct qs_err {
  int status;
  char msg[256];
} qs_err;

void qs_err_set(qs_err *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What a decoder fills. The floats and strings are borrowed from the decoder
 * for the duration of the call. */
typedef struct qs_infer_req {
  const char *model;  /* model name, NUL-ended; NULL or "" = the default model */
  const float *x;     /* rows x cols float32, row-major, all finite */
  size_t rows, cols;
  bool baseline;      /* also run the fp32 model and compare (default true) */
  bool dynamic;       /* "mode": dynamic-range int8 instead of static */
  const char *id;     /* a client's request id (KServe v2 "id"), echoed; NULL if none */
  uint64_t t0_ns;     /* when the request arrived (qs_now_ns), for "total" */
} qs_infer_req;

/* What an encoder reads. y8/y32 are the calling thread's buffers: valid
 * until qs_infer_res_done or the thread's next qs_infer_run (nothing is
 * allocated per request once a thread has served one of this size). */
typedef struct qs_infer_res {
  qs_model *m;        /* the model that ran (a reference, dropped by _done) */
  size_t rows, out;   /* outputs are rows x out */
  bool baseline, dynamic;
  const float *y8;    /* the int8 model's outputs (dequantized) */
  const float *y32;   /* the fp32 baseline's outputs, NULL without baseline */
  /* Timings (ns): int8 and fp32 compute. ns_queue and batch_rows are
   * always 0: dynamic batching was removed (docs/bench.md says why); they
   * stay for encoders written against them. */
  uint64_t ns_int8, ns_fp32, ns_queue;
  size_t batch_rows;
  /* Drift (baseline only): largest |int8 - fp32| over every output, and the
   * rows whose argmax agree. */
  float max_abs_diff;
  size_t argmax_agree;
  /* internal */
  float *buf8, *buf32;
} qs_infer_res;

/* The model called name, or the default one when name is NULL or "" (the
 * --default-model, else the only model loaded). A new reference in *m, or
 * false with *err filled (400 invalid name, 404 unknown, 400 several loaded
 * and none named, 503 none loaded). how_to_name says how this wire format
 * names a model, for the error text ("\"model\"", "?model=NAME or X-Model"). */
bool qs_infer_model(const char *name, const char *how_to_name, qs_model **m, qs_err *err);

/* Runs m on req (req->cols must be m's input width): fills *res or *err.
 * Takes no reference of its own: res->m = m, and qs_infer_res_done releases
 * it, so the caller's reference from qs_infer_model passes to res. On
 * failure the reference stays with the caller. */
bool qs_infer_run(qs_model *m, const qs_infer_req *req, qs_infer_res *res, qs_err *err);
void qs_infer_res_done(qs_infer_res *res);
/* Frees the calling thread's output buffers (tests; a thread that stops). */
void qs_infer_thread_drop(void);

size_t qs_argmax(const float *v, size_t n);

/* The timing and drift block every encoder writes, computed in one place:
 * microseconds, the fp32/int8 speedup, and the drift figures. */
typedef struct qs_summary {
  bool baseline;
  double int8_us, fp32_us, speedup; /* fp32_us, speedup: baseline only */
  double total_us;                  /* from t0_ns to now */
  float max_abs_diff;               /* baseline only */
  double argmax_agreement;          /* baseline only: share of rows */
} qs_summary;

void qs_infer_summary(const qs_infer_res *res, uint64_t t0_ns, qs_summary *s);

/* ---- inside the step (run.c) ----------------------------------------- */

/* The bare compute: int8 (static or dynamic) then, if baseline, fp32, on a
 * context borrowed from m's pool; times each. */
qat_err qs_compute(qs_model *m, const float *x, size_t rows, bool baseline, bool dynamic,
                   float *y8, float *y32, uint64_t *ns8, uint64_t *ns32);
/* The error for a failed qs_compute (msg: its qat_errmsg()). */
void qs_infer_error(qs_err *err, qat_err e, const char *msg);

#endif
