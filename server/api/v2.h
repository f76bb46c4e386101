/* v2.h - the KServe v2 infer request's JSON envelope as envelope.c reads it
 * (one walk, no tree) and v2_infer.c checks it. Internal to api/. */
#ifndef QS_API_V2_H
#define QS_API_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

/* A member's state: absent, present with the right type, or present with
 * the wrong one (refused by qs_v2_check, in the order the errors are
 * reported). */
enum { QS_V2_ABSENT = 0, QS_V2_OK, QS_V2_BAD };

/* inputs[0].data: parsed into the thread's float scratch during the walk
 * (the common case), or only located (the parse failed or hit the walk's
 * caps: qs_v2_data parses the span again with the shape's caps, so the
 * error is the one the shape calls for). */
enum { QS_V2_NO_DATA = 0, QS_V2_DATA_PARSED, QS_V2_DATA_SPAN };

/* The first thing wrong with "outputs" (elements read in order). */
enum { QS_V2_OUT_FINE = 0, QS_V2_OUT_NONAME, QS_V2_OUT_UNKNOWN, QS_V2_OUT_PARAMS, QS_V2_OUT_BD };

typedef struct qs_v2_env {
  int id;                 /* "id": a string (QS_V2_OK) */
  qs_span id_raw;         /* its bytes between the quotes */
  int inputs;             /* "inputs": an array */
  size_t n_inputs;
  bool first_obj;         /* inputs[0] is an object */
  bool dtype_ok;          /* inputs[0].datatype is "FP32" */
  bool shape_ok;          /* inputs[0].shape is two integers */
  int64_t B, K;
  int tparams;            /* inputs[0].parameters: an object */
  int bds;                /* ... .binary_data_size: an integer >= 0 */
  int64_t bds_val;
  int data;               /* QS_V2_NO_DATA, _PARSED, _SPAN */
  qs_span data_span;      /* its value in the text */
  const float *x;         /* _PARSED: rows x cols numbers */
  size_t rows, cols;
  int params;             /* "parameters": an object */
  int baseline, mode, bdo; /* ... its "baseline", "mode", "binary_data_output" */
  bool baseline_v, dynamic_v, bdo_v;
  int outputs;            /* "outputs": an array */
  int out_err;            /* QS_V2_OUT_* of element out_err_idx */
  size_t out_err_idx;
  qs_span out_err_name;   /* QS_V2_OUT_UNKNOWN: the name's raw bytes */
  bool bd_set, bd_v;      /* the last outputs[].parameters.binary_data */
} qs_v2_env;

/* Walks the JSON header text[0..len) once into *env (zeroed by the
 * caller), validating all of it as strictly as jansson (duplicate keys at
 * every level, UTF-8, escapes, number ranges, depth) except inputs[0].data,
 * which the number-array parser reads. width: the model's input width (caps
 * the numbers read). False with the error reply set (400 malformed, 503 out
 * of memory). */
bool qs_v2_walk(qs_req *r, qs_api_ctx *ctx, const char *text, size_t len, size_t width, qs_v2_env *env);

#endif
