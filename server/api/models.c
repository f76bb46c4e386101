/* info.c - GET /models and /models/{name}: what is loaded and from where. */
#include <stdio.h>
#include <time.h>

#include "api/api.h"

static int bits_of(int32_t qmin, int32_t qmax) {
  uint32_t levels = (uint32_t)(qmax - qmin) + 1;
  int b = 0;
  while ((1u << b) < levels && b < 32) b++;
  return b;
}

static void write_model(qs_buf *b, const qs_model *m) {
  const qat_model *qm = m->model;
  char when[32];
  struct tm tm;
  gmtime_r(&m->loaded_at, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  qat_qparams inq = qat_model_input_qparams(qm);
  qs_buf_puts(b, "{\"name\":");
  qs_buf_json_str(b, m->name);
  qs_buf_printf(b, ",\"version\":%llu,\"file\":", (unsigned long long)m->version);
  qs_buf_json_str(b, m->file);
  qs_buf_printf(b,
                ",\"file_size\":%llu,\"checksum\":{\"algorithm\":\"crc32\",\"value\":\"%08x\"},"
                "\"tensor_checksums\":\"%s\",\"loaded_at\":\"%s\",\"load_ms\":%.3f,\"in_dim\":%u,\"out_dim\":%u,"
                "\"out_mode\":\"%s\",\"kernel\":\"%s\",\"input\":{\"scale\":",
                (unsigned long long)m->file_size, m->crc32,
                qat_model_checksummed(qm) ? "sha256" : "none", when, m->load_ms,
                qat_model_in_dim(qm), qat_model_out_dim(qm),
                qat_model_out_mode(qm) == QAT_OUT_REQUANT ? "requant" : "dequant_acc",
                qat_kernel_name());
  qs_buf_float(b, inq.scale);
  qs_buf_printf(b, ",\"zero_point\":%d,\"bits\":%d},\"layers\":[", inq.zero_point,
                bits_of(inq.qmin, inq.qmax));
  uint32_t nl = qat_model_n_layers(qm);
  for (uint32_t i = 0; i < nl; i++) {
    qat_layer_info li;
    if (qat_model_layer(qm, i, &li) != QAT_OK) continue;
    qs_buf_printf(b,
                  "%s{\"in\":%u,\"out\":%u,\"activation\":\"%s\",\"weight_bits\":%d,"
                  "\"activation_bits\":%d}",
                  i ? "," : "", li.in_dim, li.out_dim, li.act == QAT_ACT_RELU ? "relu" : "none",
                  li.w_bits, bits_of(li.out.qmin, li.out.qmax));
  }
  qs_buf_puts(b, "],\"labels\":[");
  for (uint32_t i = 0; i < qat_model_n_labels(qm); i++) {
    if (i) qs_buf_put(b, ",", 1);
    const char *l = qat_model_label(qm, i);
    qs_buf_json_str(b, l ? l : "");
  }
  qs_buf_puts(b, "],\"metadata\":{");
  for (uint32_t i = 0; i < qat_model_n_meta(qm); i++) {
    const char *k = NULL, *v = NULL;
    qat_model_meta_at(qm, i, &k, &v);
    if (i) qs_buf_put(b, ",", 1);
    qs_buf_json_str(b, k ? k : "");
    qs_buf_put(b, ":", 1);
    qs_buf_json_str(b, v ? v : "");
  }
  qs_buf_puts(b, "}}");
}

void qs_handle_models(qs_req *r) {
  qs_model *list[QS_MAX_MODELS];
  size_t n = qs_registry_list(list, QS_MAX_MODELS);
  r->status = 200;
  qs_buf_puts(&r->out, "{\"models\":[");
  for (size_t i = 0; i < n; i++) {
    if (i) qs_buf_put(&r->out, ",", 1);
    write_model(&r->out, list[i]);
    qs_model_release(list[i]);
  }
  qs_buf_puts(&r->out, "]}\n");
}

void qs_handle_model(qs_req *r) {
  qs_model *m = qs_registry_get(r->name);
  if (!m) {
    qs_reply_error(r, 404, "model '%s' not found", r->name);
    return;
  }
  r->model_slot = m->metrics_slot;
  r->status = 200;
  write_model(&r->out, m);
  qs_buf_puts(&r->out, "\n");
  qs_model_release(m);
}
