/* v2_meta.c - the KServe v2 / Open Inference Protocol metadata: server and
 * model metadata and model readiness (the infer endpoint is v2_infer.c). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/config.h"
#include "base/log.h"

#define QS_PLATFORM "qatserve_int8"

void qs_handle_v2_server(qs_req *r) {
  r->status = 200;
  qs_buf_printf(&r->out, "{\"name\":\"%s\",\"version\":\"%s\",\"extensions\":[\"binary_tensor_data\"]}\n", QS_NAME,
                QAT_VERSION);
}

qs_model *qs_v2_model_or_404(qs_req *r) {
  qs_model *m = NULL;
  qs_err err;
  if (!qs_infer_model(r->name, "in the URL", &m, &err)) {
    qs_reply_err(r, &err);
    return NULL;
  }
  r->model_slot = m->metrics_slot;
  return m;
}

void qs_handle_v2_model(qs_req *r) {
  qs_model *m = qs_v2_model_or_404(r);
  if (!m) return;
  qs_buf *b = &r->out;
  r->status = 200;
  qs_buf_puts(b, "{\"name\":");
  qs_buf_json_str(b, m->name);
  qs_buf_printf(b,
                ",\"versions\":[\"%llu\"],\"platform\":\"" QS_PLATFORM "\","
                "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1,%u]}],"
                "\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[-1,%u]}]}\n",
                (unsigned long long)m->version, qat_model_in_dim(m->model),
                qat_model_out_dim(m->model));
  qs_model_release(m);
}

void qs_handle_v2_model_ready(qs_req *r) {
  qs_model *m = qs_v2_model_or_404(r);
  if (!m) return;
  r->status = 200;
  qs_buf_puts(&r->out, "{\"name\":");
  qs_buf_json_str(&r->out, m->name);
  qs_buf_puts(&r->out, ",\"ready\":true}\n");
  qs_model_release(m);
}

