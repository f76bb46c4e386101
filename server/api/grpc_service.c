/* grpc_service.c - KServe v2 gRPC calls: decode (protobuf-c), validate, run the
 * infer step, encode.
 *
 * Decoding allocates only from a per-thread arena that is rewound after each
 * call (protobuf-c takes an allocator), so a warm thread unpacks a request
 * without malloc. The reply is packed straight into one buffer behind its
 * 5-byte gRPC prefix; its output tensor points at the infer result's floats
 * (no copy before the pack). */
#include "api/grpc_service.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "grpc_predict_v2.pb-c.h"
#include "infer/infer.h"
#include "model/registry.h"

#define QS_PLATFORM "qatserve_int8"
#define PREFIX "/inference.GRPCInferenceService/"

/* ---- arena ------------------------------------------------------------ */

/* Chunks are kept between calls up to KEEP bytes in all; bigger ones (a
 * large request's raw tensor) are freed when the call ends. */
#define CHUNK (64u * 1024)
#define KEEP (1u * 1024 * 1024)

typedef struct chunk {
  struct chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} chunk;

typedef struct arena {
  chunk *head; /* chunk being filled first; the rest follow */
  bool failed;
} arena;

static _Thread_local arena t_arena;

static void *arena_alloc(void *data, size_t n) {
  arena *a = data;
  n = (n + 15) & ~(size_t)15;
  for (chunk *c = a->head; c; c = c->next)
    if (c->size - c->used >= n) {
      void *p = c->data + c->used;
      c->used += n;
      return p;
    }
  size_t sz = n > CHUNK ? n : CHUNK;
  chunk *c = malloc(sizeof *c + sz);
  if (!c) {
    a->failed = true;
    return NULL;
  }
  c->size = sz;
  c->used = n;
  c->next = a->head;
  a->head = c;
  return c->data;
}

static void arena_free(void *data, void *p) {
  (void)data;
  (void)p; /* rewound as a whole */
}

static void arena_rewind(arena *a) {
  size_t kept = 0;
  chunk **pp = &a->head;
  while (*pp) {
    chunk *c = *pp;
    if (kept + c->size > KEEP) {
      *pp = c->next;
      free(c);
      continue;
    }
    kept += c->size;
    c->used = 0;
    pp = &c->next;
  }
  a->failed = false;
}

void qs_grpc_thread_done(void) {
  while (t_arena.head) {
    chunk *c = t_arena.head;
    t_arena.head = c->next;
    free(c);
  }
}

/* ---- methods ---------------------------------------------------------- */

static const char *const method_names[QS_GM_COUNT] = {
    "", "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"};

const char *qs_gmethod_name(qs_gmethod m) { return (unsigned)m < QS_GM_COUNT ? method_names[m] : ""; }

qs_gmethod qs_grpc_method(const char *path, size_t n) {
  size_t pl = sizeof PREFIX - 1;
  if (n <= pl || memcmp(path, PREFIX, pl) != 0) return QS_GM_NONE;
  for (int m = 1; m < QS_GM_COUNT; m++)
    if (n - pl == strlen(method_names[m]) && memcmp(path + pl, method_names[m], n - pl) == 0)
      return (qs_gmethod)m;
  return QS_GM_NONE;
}

static void fail(qs_gcall *c, qs_gcode code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(qs_gcall *c, qs_gcode code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->text, sizeof c->text, fmt, ap);
  va_end(ap);
  c->code = code;
}

/* The infer step speaks HTTP status classes; gRPC clients want codes. */
static qs_gcode code_for(const qs_err *e) {
  switch (e->status) {
    case 400:
    case 422: return QS_G_INVALID_ARGUMENT;
    case 404: return QS_G_NOT_FOUND;
    case 413: return QS_G_RESOURCE_EXHAUSTED;
    case 503: return strstr(e->msg, "memory") ? QS_G_RESOURCE_EXHAUSTED : QS_G_UNAVAILABLE;
    default: return QS_G_INTERNAL;
  }
}

static void pack(qs_gcall *c, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (n > UINT32_MAX - 5) {
    fail(c, QS_G_RESOURCE_EXHAUSTED, "reply too large");
    return;
  }
  c->reply = malloc(n + 5);
  if (!c->reply) {
    fail(c, QS_G_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  qs_gframe_prefix(c->reply, (uint32_t)n);
  protobuf_c_message_pack(m, c->reply + 5);
  c->reply_len = n + 5;
  c->code = QS_G_OK;
}

/* A model by name and optional version ("" = the one serving). */
static qs_model *find_model(qs_gcall *c, const char *name, const char *version) {
  /* No name: the --default-model, else the only one loaded (as REST). */
  qs_model *m;
  qs_err err;
  if (!qs_infer_model(name, "model_name", &m, &err)) {
    fail(c, code_for(&err), "%s", err.msg);
    return NULL;
  }
  c->model_slot = m->metrics_slot;
  if (version && *version) {
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->version);
    if (strcmp(v, version) != 0) {
      fail(c, QS_G_NOT_FOUND, "model '%s' has no version '%.40s' (serving version %s)", name, version, v);
      qs_model_release(m);
      return NULL;
    }
  }
  return m;
}

static bool server_ready(void) {
  return atomic_load(&qs_g.ready) && !atomic_load(&qs_g.draining) && qs_registry_count() > 0;
}

#define UNPACK(type, fn)                                                                   \
  type *req = fn##__unpack(&alloc, c->len, c->msg);                                        \
  if (!req) {                                                                              \
    fail(c, t_arena.failed ? QS_G_RESOURCE_EXHAUSTED : QS_G_INVALID_ARGUMENT,              \
         t_arena.failed ? "out of memory" : "malformed request message");                  \
    return;                                                                                \
  }

static void model_metadata(qs_gcall *c, ProtobufCAllocator alloc) {
  UNPACK(Inference__ModelMetadataRequest, inference__model_metadata_request)
  qs_model *m = find_model(c, req->name, req->version);
  if (!m) return;
  char ver[24];
  snprintf(ver, sizeof ver, "%llu", (unsigned long long)m->version);
  char *versions[1] = {ver};
  int64_t ishape[2] = {-1, qat_model_in_dim(m->model)}, oshape[2] = {-1, qat_model_out_dim(m->model)};
  Inference__ModelMetadataResponse__TensorMetadata in = INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT,
                                                  out = INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT;
  in.name = "input", in.datatype = "FP32", in.n_shape = 2, in.shape = ishape;
  out.name = "output", out.datatype = "FP32", out.n_shape = 2, out.shape = oshape;
  Inference__ModelMetadataResponse__TensorMetadata *ins[1] = {&in}, *outs[1] = {&out};
  Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
  r.name = m->name;
  r.n_versions = 1, r.versions = versions;
  r.platform = QS_PLATFORM;
  r.n_inputs = 1, r.inputs = ins;
  r.n_outputs = 1, r.outputs = outs;
  pack(c, &r.base);
  qs_model_release(m);
}

static void model_ready(qs_gcall *c, ProtobufCAllocator alloc) {
  UNPACK(Inference__ModelReadyRequest, inference__model_ready_request)
  /* Like Triton: an unknown model is "not ready", not an error (clients'
   * is_model_ready() returns false for it). */
  Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
  qs_model *m = qs_name_valid(req->name) ? qs_registry_get(req->name) : NULL;
  if (m) {
    c->model_slot = m->metrics_slot;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->version);
    r.ready = !*req->version || strcmp(v, req->version) == 0;
    qs_model_release(m);
  }
  pack(c, &r.base);
}

/* ---- ModelInfer ------------------------------------------------------- */

/* Reads the request parameters the infer step knows: "baseline" (bool) and
 * "mode" ("static" | "dynamic"). Others are ignored, as Triton does with
 * parameters a model does not use. */
static bool read_params(qs_gcall *c, const Inference__ModelInferRequest *req, bool *baseline, bool *dynamic) {
  for (size_t i = 0; i < req->n_parameters; i++) {
    const Inference__ModelInferRequest__ParametersEntry *e = req->parameters[i];
    const Inference__InferParameter *v = e->value;
    if (strcmp(e->key, "baseline") == 0) {
      if (!v || v->parameter_choice_case != INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM) {
        fail(c, QS_G_INVALID_ARGUMENT, "parameter \"baseline\" must be a bool_param");
        return false;
      }
      *baseline = v->bool_param;
    } else if (strcmp(e->key, "mode") == 0) {
      const char *s = v && v->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM
                          ? v->string_param : NULL;
      if (s && strcmp(s, "static") == 0)
        *dynamic = false;
      else if (s && strcmp(s, "dynamic") == 0)
        *dynamic = true;
      else {
        fail(c, QS_G_INVALID_ARGUMENT, "parameter \"mode\" must be the string_param \"static\" or \"dynamic\"");
        return false;
      }
    }
  }
  return true;
}

static bool contents_other_than_fp32(const Inference__InferTensorContents *t) {
  return t->n_bool_contents || t->n_int_contents || t->n_int64_contents || t->n_uint_contents ||
         t->n_uint64_contents || t->n_fp64_contents || t->n_bytes_contents;
}

static bool check_finite(qs_gcall *c, const float *x, size_t n, size_t width) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) {
      fail(c, QS_G_INVALID_ARGUMENT, "non-finite number at row %zu, column %zu", i / width, i % width);
      return false;
    }
  return true;
}

typedef struct pbuild {
  Inference__ModelInferResponse__ParametersEntry e[10];
  Inference__ModelInferResponse__ParametersEntry *ep[10];
  Inference__InferParameter v[10];
  size_t n;
} pbuild;

static Inference__InferParameter *param(pbuild *p, const char *key) {
  size_t i = p->n++;
  p->e[i] = (Inference__ModelInferResponse__ParametersEntry)INFERENCE__MODEL_INFER_RESPONSE__PARAMETERS_ENTRY__INIT;
  p->v[i] = (Inference__InferParameter)INFERENCE__INFER_PARAMETER__INIT;
  p->e[i].key = (char *)key;
  p->e[i].value = &p->v[i];
  p->ep[i] = &p->e[i];
  return &p->v[i];
}

static void pdouble(pbuild *p, const char *key, double d) {
  Inference__InferParameter *v = param(p, key);
  v->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
  v->double_param = d;
}

/* The input tensor's data: raw_input_contents (one entry, exactly the
 * shape's bytes) or contents.fp32_contents (exactly the shape's numbers),
 * never both. n = rows * in. */
static bool input_data(qs_gcall *c, const Inference__ModelInferRequest *req, size_t rows, size_t in,
                       const float **x) {
  const Inference__ModelInferRequest__InferInputTensor *t = req->inputs[0];
  size_t n = rows * in;
  bool has_contents = t->contents && (t->contents->n_fp32_contents || contents_other_than_fp32(t->contents));
  if (req->n_raw_input_contents) {
    if (req->n_raw_input_contents != 1) {
      fail(c, QS_G_INVALID_ARGUMENT, "raw_input_contents has %zu entries for 1 input", req->n_raw_input_contents);
      return false;
    }
    if (has_contents) {
      fail(c, QS_G_INVALID_ARGUMENT, "input has both contents and raw_input_contents");
      return false;
    }
    const ProtobufCBinaryData *raw = &req->raw_input_contents[0];
    if (raw->len != n * sizeof(float)) {
      fail(c, QS_G_INVALID_ARGUMENT, "raw_input_contents holds %zu bytes, but shape [%zu, %zu] of FP32 is %zu",
           raw->len, rows, in, n * sizeof(float));
      return false;
    }
    /* Arena blocks are 16-byte aligned, and the wire is little-endian as
     * the host (binary.c refuses to build otherwise): the bytes are floats. */
    *x = (const float *)(const void *)raw->data;
    return true;
  }
  if (t->contents && t->contents->n_fp32_contents) {
    if (contents_other_than_fp32(t->contents)) {
      fail(c, QS_G_INVALID_ARGUMENT, "FP32 input data goes in contents.fp32_contents only");
      return false;
    }
    if (t->contents->n_fp32_contents != n) {
      fail(c, QS_G_INVALID_ARGUMENT, "contents.fp32_contents holds %zu numbers, but shape [%zu, %zu] is %zu",
           t->contents->n_fp32_contents, rows, in, n);
      return false;
    }
    *x = t->contents->fp32_contents;
    return true;
  }
  fail(c, QS_G_INVALID_ARGUMENT,
       has_contents ? "FP32 input data goes in contents.fp32_contents or raw_input_contents"
                    : "input has no data (contents.fp32_contents or raw_input_contents)");
  return false;
}

/* The one input tensor against model m: FP32, [batch, features] with the
 * model's width, at most --max-batch rows, its data (finite). */
static bool input_tensor(qs_gcall *c, const Inference__ModelInferRequest *req, const qs_model *m,
                         const float **x, size_t *rows_out) {
  if (req->n_inputs != 1) {
    fail(c, QS_G_INVALID_ARGUMENT, "the model takes exactly one input tensor, got %zu", req->n_inputs);
    return false;
  }
  const Inference__ModelInferRequest__InferInputTensor *t = req->inputs[0];
  if (strcmp(t->datatype, "FP32") != 0) {
    fail(c, QS_G_INVALID_ARGUMENT, "input datatype must be FP32, not '%.32s'", t->datatype);
    return false;
  }
  if (t->n_shape != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
    fail(c, QS_G_INVALID_ARGUMENT, "input shape must be [batch, features], two positive integers");
    return false;
  }
  size_t in = qat_model_in_dim(m->model);
  int64_t B = t->shape[0], K = t->shape[1];
  if ((uint64_t)K != in) {
    fail(c, QS_G_INVALID_ARGUMENT, "wrong input width: shape [%lld, %lld], model '%s' wants [-1, %zu]",
         (long long)B, (long long)K, m->name, in);
    return false;
  }
  if ((uint64_t)B > qs_g.cfg.max_batch) {
    fail(c, QS_G_RESOURCE_EXHAUSTED, "batch of %lld rows is larger than %zu (--max-batch)", (long long)B,
         qs_g.cfg.max_batch);
    return false;
  }
  /* B <= max_batch (<= 1e6) and K <= QAT_MAX_DIM: n * 4 stays far from overflow. */
  size_t rows = (size_t)B;
  if (!input_data(c, req, rows, in, x)) return false;
  if (!check_finite(c, *x, rows * in, in)) return false;
  *rows_out = rows;
  return true;
}

/* The reply: mode, timings and drift as parameters, the int8 outputs as one
 * raw FP32 tensor. */
static void infer_reply(qs_gcall *c, const Inference__ModelInferRequest *req, const qs_infer_res *res,
                        size_t rows, bool baseline, bool dynamic) {
  char ver[24];
  snprintf(ver, sizeof ver, "%llu", (unsigned long long)res->m->version);
  pbuild pb = {.n = 0};
  Inference__InferParameter *mode = param(&pb, "mode");
  mode->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
  mode->string_param = dynamic ? "dynamic" : "static";
  double us8 = (double)res->ns_int8 * 1e-3, us32 = (double)res->ns_fp32 * 1e-3;
  pdouble(&pb, "int8_us", us8);
  if (baseline) {
    pdouble(&pb, "fp32_us", us32);
    pdouble(&pb, "speedup", us8 > 0 ? us32 / us8 : 0.0);
    pdouble(&pb, "max_abs_diff", (double)res->max_abs_diff);
    pdouble(&pb, "argmax_agreement", (double)res->argmax_agree / (double)rows);
  }
  pdouble(&pb, "total_us", (double)(qs_now_ns() - c->t0_ns) * 1e-3);

  int64_t oshape[2] = {(int64_t)rows, (int64_t)res->out};
  Inference__ModelInferResponse__InferOutputTensor o = INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
  o.name = "output", o.datatype = "FP32", o.n_shape = 2, o.shape = oshape;
  Inference__ModelInferResponse__InferOutputTensor *outs[1] = {&o};
  ProtobufCBinaryData raw = {.len = rows * res->out * sizeof(float), .data = (uint8_t *)(uintptr_t)res->y8};
  Inference__ModelInferResponse r = INFERENCE__MODEL_INFER_RESPONSE__INIT;
  r.model_name = res->m->name;
  r.model_version = ver;
  r.id = req->id;
  r.n_parameters = pb.n, r.parameters = pb.ep;
  r.n_outputs = 1, r.outputs = outs;
  r.n_raw_output_contents = 1, r.raw_output_contents = &raw;
  pack(c, &r.base);
}

/* Phases: decode (parameters, outputs asked for, the model, the input
 * tensor), infer, encode. */
static void model_infer(qs_gcall *c, ProtobufCAllocator alloc) {
  UNPACK(Inference__ModelInferRequest, inference__model_infer_request)
  bool baseline = true, dynamic = false;
  if (!read_params(c, req, &baseline, &dynamic)) return;
  for (size_t i = 0; i < req->n_outputs; i++)
    if (strcmp(req->outputs[i]->name, "output") != 0) {
      fail(c, QS_G_INVALID_ARGUMENT, "unknown output '%.64s' (the model has one: \"output\")", req->outputs[i]->name);
      return;
    }
  qs_model *m = find_model(c, req->model_name, req->model_version);
  if (!m) return;
  const float *x = NULL;
  size_t rows = 0;
  if (!input_tensor(c, req, m, &x, &rows)) {
    qs_model_release(m);
    return;
  }
  qs_infer_req ir = {.model = m->name, .x = x, .rows = rows, .cols = qat_model_in_dim(m->model),
                     .baseline = baseline, .dynamic = dynamic, .id = req->id, .t0_ns = c->t0_ns};
  qs_infer_res res;
  qs_err err;
  if (!qs_infer_run(m, &ir, &res, &err)) {
    /* On failure qs_infer_run leaves the reference with the caller. */
    fail(c, code_for(&err), "%s", err.msg);
    qs_model_release(m);
    return;
  }
  /* The result holds the model reference now. */
  infer_reply(c, req, &res, rows, baseline, dynamic);
  qs_infer_res_done(&res);
}

void qs_grpc_call(qs_gcall *c) {
  c->code = QS_G_OK;
  c->text[0] = '\0';
  c->reply = NULL;
  c->reply_len = 0;
  c->model_slot = -1;
  ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &t_arena};
  switch (c->method) {
    case QS_GM_SERVER_LIVE: {
      UNPACK(Inference__ServerLiveRequest, inference__server_live_request)
      (void)req;
      Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
      r.live = true;
      pack(c, &r.base);
      break;
    }
    case QS_GM_SERVER_READY: {
      UNPACK(Inference__ServerReadyRequest, inference__server_ready_request)
      (void)req;
      Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
      r.ready = server_ready();
      pack(c, &r.base);
      break;
    }
    case QS_GM_SERVER_METADATA: {
      UNPACK(Inference__ServerMetadataRequest, inference__server_metadata_request)
      (void)req;
      Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
      r.name = QS_NAME;
      r.version = QAT_VERSION;
      pack(c, &r.base);
      break;
    }
    case QS_GM_MODEL_READY: model_ready(c, alloc); break;
    case QS_GM_MODEL_METADATA: model_metadata(c, alloc); break;
    case QS_GM_MODEL_INFER: model_infer(c, alloc); break;
    default: fail(c, QS_G_UNIMPLEMENTED, "no such method in inference.GRPCInferenceService"); break;
  }
  arena_rewind(&t_arena);
}
