/* metrics.h - Prometheus counters and histograms, lock-free.
 *
 * Every counter is a relaxed atomic in fixed tables sized at compile time:
 * label sets are (model slot, endpoint, status class) and (model slot,
 * latency kind). Model names are interned into at most QS_METRIC_MODELS
 * slots; slot 0 is model="" (requests that named no loaded model), so a
 * client inventing names cannot grow the tables. A slot is interned when a
 * model of that name loads, and from then on its latency histograms and its
 * predict/v2_infer request counters are rendered even at zero. */
#ifndef QS_METRICS_H
#define QS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define QS_METRIC_MODELS 64

/* Endpoints, for metrics labels (and routing, in http/). */
typedef enum qs_endpoint {
  QS_EP_PREDICT = 0,
  QS_EP_V2_INFER,
  QS_EP_V2_MODEL,
  QS_EP_V2_HEALTH,
  QS_EP_V2_SERVER,
  QS_EP_MODELS,
  QS_EP_METRICS,
  QS_EP_OTHER,
  QS_EP_COUNT
} qs_endpoint;

const char *qs_endpoint_name(qs_endpoint e);

typedef enum qs_lat_kind { QS_LAT_INT8 = 0, QS_LAT_FP32, QS_LAT_TOTAL, QS_LAT_COUNT } qs_lat_kind;

/* The slot for name (interned on first use; 0 if the table is full). */
int qs_metrics_slot(const char *name);
void qs_metrics_request(int slot, qs_endpoint ep, int status);
void qs_metrics_observe(int slot, qs_lat_kind kind, uint64_t ns);
/* One request's int8 vs fp32 comparison: rows compared, rows whose argmax
 * differs, the largest absolute output difference. */
void qs_metrics_drift(int slot, size_t rows, size_t disagree, float max_abs_diff);
/* A gRPC call (grpc/): method is a qs_gmethod (0 = unknown method), code
 * its gRPC status. Counted in qatserve_requests_total with protocol="grpc". */
void qs_metrics_grpc(int slot, int method, int code);
uint64_t qs_metrics_grpc_calls(int slot, int method, int code);
/* gRPC is listening: from now on every model's ModelInfer series (each
 * status code) are rendered from its load on, at zero, as the HTTP
 * inference endpoints' are. */
void qs_metrics_grpc_serving(void);
void qs_metrics_model_load(void);
void qs_metrics_model_reload(void);
void qs_metrics_model_refusal(void);
void qs_metrics_model_unload(void);
/* The models_loaded gauge (the registry sets it after each change). */
void qs_metrics_models_loaded(size_t n);
/* Counter values, for tests. */
uint64_t qs_metrics_requests(int slot, qs_endpoint ep, int status);
uint64_t qs_metrics_refusals(void);
/* The whole exposition (text format 0.0.4). */
void qs_metrics_render(qs_buf *b);

#endif
