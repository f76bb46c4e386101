/* metrics.c - fixed tables of relaxed atomics; rendering reads them without
 * stopping writers (a scrape may see one request counted in one series and
 * not yet in another, which Prometheus tolerates). */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "qat.h"

static const int status_codes[] = {200, 400, 404, 405, 413, 415, 422, 500, 501, 503, 0};
#define N_STATUS (sizeof status_codes / sizeof *status_codes)

/* Upper bounds in seconds; +Inf is implicit. */
static const double buckets_s[] = {5e-6,   1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                   2.5e-3, 5e-3,   1e-2,   2.5e-2, 5e-2, 0.1,  0.25, 0.5,
                                   1.0,    2.5};
#define N_BUCKETS (sizeof buckets_s / sizeof *buckets_s)

typedef struct hist {
  _Atomic uint64_t bucket[N_BUCKETS + 1];
  _Atomic uint64_t count;
  _Atomic uint64_t sum_ns;
} hist;

static char slot_names[QS_METRIC_MODELS][129];
static _Atomic int n_slots = 1; /* slot 0 is "" */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic uint64_t requests[QS_METRIC_MODELS][QS_EP_COUNT][N_STATUS];
static hist lat[QS_METRIC_MODELS][QS_LAT_COUNT];
static _Atomic uint64_t loads, reloads, refusals, unloads;
/* Set by the registry after each change (metrics import nothing above them). */
static _Atomic size_t models_loaded;

/* gRPC calls: method (api/grpc_service.h's qs_gmethod order) x status code. */
#define N_GMETHODS 7
#define N_GCODES 17
static const char *const gmethod_names[N_GMETHODS] = {
    "unknown", "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"};
static const char *const gcode_names[N_GCODES] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
static _Atomic uint64_t grpc_calls[QS_METRIC_MODELS][N_GMETHODS][N_GCODES];
static atomic_bool grpc_serving;
#define GMETHOD_MODEL_INFER 6 /* gmethod_names */

static const char *const lat_names[QS_LAT_COUNT] = {"int8", "fp32", "total"};

/* int8 vs fp32 drift, per model: rows compared, rows whose class differs,
 * and each request's largest |int8 - fp32| output difference. */
static const double drift_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,   0.25,   0.5,   1.0,  2.5};
#define N_DRIFT (sizeof drift_buckets / sizeof *drift_buckets)
typedef struct drift_stats {
  _Atomic uint64_t rows, disagree, count;
  _Atomic uint64_t bucket[N_DRIFT + 1];
  _Atomic uint64_t sum_micro; /* sum of max_abs_diff in millionths */
} drift_stats;
static drift_stats drift[QS_METRIC_MODELS];

int qs_metrics_slot(const char *name) {
  int n = atomic_load_explicit(&n_slots, memory_order_acquire);
  for (int i = 1; i < n; i++)
    if (strcmp(slot_names[i], name) == 0) return i;
  pthread_mutex_lock(&slot_lock);
  n = atomic_load_explicit(&n_slots, memory_order_relaxed);
  int found = 0;
  for (int i = 1; i < n && !found; i++)
    if (strcmp(slot_names[i], name) == 0) found = i;
  if (!found && n < QS_METRIC_MODELS) {
    /* Write the name, then publish the count: readers never see a slot
     * whose name is still being written. */
    strncpy(slot_names[n], name, sizeof slot_names[n] - 1);
    atomic_store_explicit(&n_slots, n + 1, memory_order_release);
    found = n;
  }
  pthread_mutex_unlock(&slot_lock);
  return found;
}

static size_t status_index(int status) {
  for (size_t i = 0; i + 1 < N_STATUS; i++)
    if (status_codes[i] == status) return i;
  return N_STATUS - 1;
}

static int clamp_slot(int slot) { return slot < 0 || slot >= QS_METRIC_MODELS ? 0 : slot; }

void qs_metrics_request(int slot, qs_endpoint ep, int status) {
  if ((unsigned)ep >= QS_EP_COUNT) ep = QS_EP_OTHER;
  atomic_fetch_add_explicit(&requests[clamp_slot(slot)][ep][status_index(status)], 1,
                            memory_order_relaxed);
}

void qs_metrics_grpc(int slot, int method, int code) {
  if (method < 0 || method >= N_GMETHODS) method = 0;
  if (code < 0 || code >= N_GCODES) code = 2; /* UNKNOWN */
  atomic_fetch_add_explicit(&grpc_calls[clamp_slot(slot)][method][code], 1, memory_order_relaxed);
}

void qs_metrics_grpc_serving(void) { atomic_store(&grpc_serving, true); }

uint64_t qs_metrics_grpc_calls(int slot, int method, int code) {
  if (method < 0 || method >= N_GMETHODS || code < 0 || code >= N_GCODES) return 0;
  return atomic_load(&grpc_calls[clamp_slot(slot)][method][code]);
}

uint64_t qs_metrics_requests(int slot, qs_endpoint ep, int status) {
  return atomic_load(&requests[clamp_slot(slot)][ep][status_index(status)]);
}

void qs_metrics_observe(int slot, qs_lat_kind kind, uint64_t ns) {
  hist *h = &lat[clamp_slot(slot)][kind];
  double s = (double)ns * 1e-9;
  size_t b = 0;
  while (b < N_BUCKETS && s > buckets_s[b]) b++;
  atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void qs_metrics_drift(int slot, size_t rows, size_t disagree, float max_abs_diff) {
  drift_stats *d = &drift[clamp_slot(slot)];
  size_t b = 0;
  while (b < N_DRIFT && max_abs_diff > drift_buckets[b]) b++; /* NaN: +Inf bucket */
  atomic_fetch_add_explicit(&d->rows, rows, memory_order_relaxed);
  atomic_fetch_add_explicit(&d->disagree, disagree, memory_order_relaxed);
  atomic_fetch_add_explicit(&d->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&d->count, 1, memory_order_relaxed);
  double micro = (double)max_abs_diff * 1e6;
  atomic_fetch_add_explicit(&d->sum_micro, micro >= 0 && micro < 1e15 ? (uint64_t)(micro + 0.5) : 0,
                            memory_order_relaxed);
}

static void render_drift(qs_buf *b, int n) {
  qs_buf_puts(b,
              "# HELP qatserve_drift_rows_total Rows whose int8 answer was compared with the fp32 baseline.\n"
              "# TYPE qatserve_drift_rows_total counter\n");
  for (int m = 1; m < n; m++)
    qs_buf_printf(b, "qatserve_drift_rows_total{model=\"%s\"} %llu\n", slot_names[m],
                  (unsigned long long)atomic_load_explicit(&drift[m].rows, memory_order_relaxed));
  qs_buf_puts(b,
              "# HELP qatserve_argmax_disagreements_total Compared rows whose int8 class differs from fp32's.\n"
              "# TYPE qatserve_argmax_disagreements_total counter\n");
  for (int m = 1; m < n; m++)
    qs_buf_printf(b, "qatserve_argmax_disagreements_total{model=\"%s\"} %llu\n", slot_names[m],
                  (unsigned long long)atomic_load_explicit(&drift[m].disagree, memory_order_relaxed));
  qs_buf_puts(b,
              "# HELP qatserve_drift_max_abs_diff Largest |int8 - fp32| output difference per request.\n"
              "# TYPE qatserve_drift_max_abs_diff histogram\n");
  for (int m = 1; m < n; m++) {
    uint64_t cum = 0;
    for (size_t i = 0; i <= N_DRIFT; i++) {
      cum += atomic_load_explicit(&drift[m].bucket[i], memory_order_relaxed);
      if (i < N_DRIFT)
        qs_buf_printf(b, "qatserve_drift_max_abs_diff_bucket{model=\"%s\",le=\"%g\"} %llu\n",
                      slot_names[m], drift_buckets[i], (unsigned long long)cum);
      else
        qs_buf_printf(b, "qatserve_drift_max_abs_diff_bucket{model=\"%s\",le=\"+Inf\"} %llu\n",
                      slot_names[m], (unsigned long long)cum);
    }
    qs_buf_printf(b, "qatserve_drift_max_abs_diff_sum{model=\"%s\"} %.6f\n", slot_names[m],
                  (double)atomic_load_explicit(&drift[m].sum_micro, memory_order_relaxed) * 1e-6);
    qs_buf_printf(b, "qatserve_drift_max_abs_diff_count{model=\"%s\"} %llu\n", slot_names[m],
                  (unsigned long long)cum);
  }
}

void qs_metrics_model_load(void) { atomic_fetch_add(&loads, 1); }
void qs_metrics_model_reload(void) { atomic_fetch_add(&reloads, 1); }
void qs_metrics_model_refusal(void) { atomic_fetch_add(&refusals, 1); }
void qs_metrics_model_unload(void) { atomic_fetch_add(&unloads, 1); }
void qs_metrics_models_loaded(size_t n) { atomic_store(&models_loaded, n); }
uint64_t qs_metrics_refusals(void) { return atomic_load(&refusals); }

/* qatserve_requests_total: HTTP by model, endpoint and status, then gRPC
 * by model, method and code. */
static void render_requests(qs_buf *b, int n) {
  qs_buf_puts(b,
              "# HELP qatserve_requests_total Requests by model, endpoint (route or gRPC method), status and protocol.\n"
              "# TYPE qatserve_requests_total counter\n");
  for (int m = 0; m < n; m++)
    for (int e = 0; e < QS_EP_COUNT; e++)
      for (size_t s = 0; s < N_STATUS; s++) {
        uint64_t v = atomic_load_explicit(&requests[m][e][s], memory_order_relaxed);
        /* A model's inference series exist at zero from its load on, so
         * rate() and increase() see its first requests and first errors. */
        if (!v && !(m > 0 && (e == QS_EP_PREDICT || e == QS_EP_V2_INFER))) continue;
        char code[8];
        if (status_codes[s])
          snprintf(code, sizeof code, "%d", status_codes[s]);
        else
          strcpy(code, "other");
        qs_buf_printf(b, "qatserve_requests_total{model=\"%s\",endpoint=\"%s\",code=\"%s\",protocol=\"http\"} %llu\n",
                      slot_names[m], qs_endpoint_name((qs_endpoint)e), code, (unsigned long long)v);
      }
  bool grpc_zero = atomic_load_explicit(&grpc_serving, memory_order_relaxed);
  for (int m = 0; m < n; m++)
    for (int e = 0; e < N_GMETHODS; e++)
      for (int k = 0; k < N_GCODES; k++) {
        uint64_t v = atomic_load_explicit(&grpc_calls[m][e][k], memory_order_relaxed);
        if (v || (grpc_zero && m > 0 && e == GMETHOD_MODEL_INFER))
          qs_buf_printf(b, "qatserve_requests_total{model=\"%s\",endpoint=\"%s\",code=\"%s\",protocol=\"grpc\"} %llu\n",
                        slot_names[m], gmethod_names[e], gcode_names[k], (unsigned long long)v);
      }
}

/* One model's latency histogram of kind k. */
static void render_hist(qs_buf *b, int k, int m) {
  hist *h = &lat[m][k];
  uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
  if (!count && m == 0) return; /* model slots: at zero from the load on */
  uint64_t cum = 0;
  for (size_t i = 0; i <= N_BUCKETS; i++) {
    cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    if (i < N_BUCKETS)
      qs_buf_printf(b, "qatserve_%s_latency_seconds_bucket{model=\"%s\",le=\"%g\"} %llu\n",
                    lat_names[k], slot_names[m], buckets_s[i], (unsigned long long)cum);
    else
      qs_buf_printf(b, "qatserve_%s_latency_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n",
                    lat_names[k], slot_names[m], (unsigned long long)cum);
  }
  qs_buf_printf(b, "qatserve_%s_latency_seconds_sum{model=\"%s\"} %.9f\n", lat_names[k],
                slot_names[m],
                (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) * 1e-9);
  qs_buf_printf(b, "qatserve_%s_latency_seconds_count{model=\"%s\"} %llu\n", lat_names[k],
                slot_names[m], (unsigned long long)cum);
}

static void render_latency(qs_buf *b, int n) {
  for (int k = 0; k < QS_LAT_COUNT; k++) {
    qs_buf_printf(b,
                  "# HELP qatserve_%s_latency_seconds %s time per request.\n"
                  "# TYPE qatserve_%s_latency_seconds histogram\n",
                  lat_names[k],
                  k == QS_LAT_INT8   ? "int8 model compute (quantize, integer layers, dequantize)"
                  : k == QS_LAT_FP32 ? "fp32 baseline compute"
                                     : "Whole request (arrival to answer queued)",
                  lat_names[k]);
    for (int m = 0; m < n; m++) render_hist(b, k, m);
  }
}

/* Process-wide gauges and counters: in flight, model loads, build. */
static void render_process(qs_buf *b) {
  qs_buf_printf(b,
                "# HELP qatserve_requests_in_flight Requests being served now.\n"
                "# TYPE qatserve_requests_in_flight gauge\n"
                "qatserve_requests_in_flight %ld\n",
                atomic_load(&qs_g.inflight));
  qs_buf_printf(b,
                "# HELP qatserve_model_loads_total Model files loaded for a new name.\n"
                "# TYPE qatserve_model_loads_total counter\n"
                "qatserve_model_loads_total %llu\n"
                "# HELP qatserve_model_reloads_total Model files reloaded over a serving version.\n"
                "# TYPE qatserve_model_reloads_total counter\n"
                "qatserve_model_reloads_total %llu\n"
                "# HELP qatserve_model_refusals_total Model files refused by validation.\n"
                "# TYPE qatserve_model_refusals_total counter\n"
                "qatserve_model_refusals_total %llu\n"
                "# HELP qatserve_model_unloads_total Models unloaded because their file went away.\n"
                "# TYPE qatserve_model_unloads_total counter\n"
                "qatserve_model_unloads_total %llu\n",
                (unsigned long long)atomic_load(&loads), (unsigned long long)atomic_load(&reloads),
                (unsigned long long)atomic_load(&refusals),
                (unsigned long long)atomic_load(&unloads));
  qs_buf_printf(b,
                "# HELP qatserve_models_loaded Models serving now.\n"
                "# TYPE qatserve_models_loaded gauge\n");
  qs_buf_printf(b, "qatserve_models_loaded %zu\n", atomic_load(&models_loaded));
  qs_buf_printf(b,
                "# HELP qatserve_build_info Version and int8 kernel in use.\n"
                "# TYPE qatserve_build_info gauge\n"
                "qatserve_build_info{version=\"%s\",kernel=\"%s\"} 1\n",
                QAT_VERSION, qat_kernel_name());
}

/* Label values are model names (validated [A-Za-z0-9._-]) and fixed
 * strings, so no escaping is needed. */
void qs_metrics_render(qs_buf *b) {
  int n = atomic_load_explicit(&n_slots, memory_order_acquire);
  render_requests(b, n);
  render_latency(b, n);
  render_drift(b, n);
  render_process(b);
}

const char *qs_endpoint_name(qs_endpoint e) {
  static const char *const names[QS_EP_COUNT] = {
      "predict", "v2_infer", "v2_model", "v2_health", "v2_server", "models", "metrics", "other"};
  return (unsigned)e < QS_EP_COUNT ? names[e] : "other";
}
