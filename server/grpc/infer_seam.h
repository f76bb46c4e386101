/* infer_seam.h - TEMPORARY: the gRPC codec's one way into inference, "run
 * these rows on this model with these options -> result", written to the
 * request pipeline's interface (issue #13: qs_infer_model / qs_infer_run /
 * qs_infer_res_done) and implemented over today's qs_run_model until that
 * pipeline lands; then this file and infer_seam.c are deleted and the codec
 * includes infer/infer.h instead. */
#ifndef QS_GRPC_INFER_SEAM_H
#define QS_GRPC_INFER_SEAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qat.h"
#include "registry.h"

typedef struct qs_err {
  int status; /* HTTP status class: 400, 404, 413, 422, 500, 503 */
  char msg[256];
} qs_err;

typedef struct qs_infer_req {
  const char *model;
  const float *x;
  size_t rows, cols;
  bool baseline;
  bool dynamic;
  const char *id;
  uint64_t t0_ns;
} qs_infer_req;

typedef struct qs_infer_res {
  qs_model *m;
  size_t rows, out;
  bool baseline, dynamic;
  const float *y8;
  const float *y32;
  uint64_t ns_int8, ns_fp32, ns_queue;
  size_t batch_rows;
  float max_abs_diff;
  size_t argmax_agree;
  float *buf8, *buf32;
} qs_infer_res;

bool qs_infer_model(const char *name, const char *how_to_name, qs_model **m, qs_err *err);
bool qs_infer_run(qs_model *m, const qs_infer_req *req, qs_infer_res *res, qs_err *err);
void qs_infer_res_done(qs_infer_res *res);

#endif
