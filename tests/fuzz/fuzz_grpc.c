/* fuzz_grpc.c - the gRPC request path below HTTP/2: the 5-byte message
 * framing (fed in fuzzer-chosen pieces, as DATA frames split it), protobuf
 * decoding and every call of the service (grpc/service.c), plus the
 * grpc-timeout parser and the grpc-message encoder.
 *
 * Input: byte 0 picks the method (mod 7, 0 = unknown), byte 1 the piece
 * size, byte 2 the frame limit (small limits exercise the refusal before
 * buffering), then the request stream's bytes. Checks, besides ASan/UBSan:
 *   - the frame reader never holds a message over its limit, and reports
 *     exactly one whole message or an error with a message;
 *   - every call ends with a known status, an error text when not OK, and
 *     when OK a reply whose prefix matches its length and which protobuf-c
 *     reads back as the method's response type;
 *   - ModelInfer OK: one FP32 output of shape [B, out_dim] whose raw bytes
 *     are B * out_dim finite floats, the request id echoed;
 *   - differential: a request an independent reading finds valid (model
 *     "m" or "w", one FP32 input [B, K] with K the model's width, B within
 *     --max-batch, data of exactly B*K finite floats in one of the two forms,
 *     no bad parameters or outputs) must get OK;
 *   - percent-encoding yields printable ASCII that decodes back to a prefix
 *     of the text; grpc-timeout accepts exactly 1-8 digits and a unit. */
#include <ctype.h>

/* Only the registry set-up of the shared header is used here. */
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#include "fuzz_server.h"
#include "api/grpc_frame.h"
#include "api/grpc_service.h"
#include "grpc_predict_v2.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_setup_registry();
  return 0;
}

static void check_text_helpers(const uint8_t *data, size_t size) {
  char text[64], enc[3 * 64 + 1];
  size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  qs_grpc_percent_encode(text, enc, sizeof enc);
  /* Decode and compare: printable ASCII only, and the text itself. */
  size_t o = 0;
  for (size_t i = 0; enc[i]; i++) {
    assert(enc[i] >= 0x20 && enc[i] <= 0x7e);
    char ch = enc[i];
    if (ch == '%') {
      assert(isxdigit((unsigned char)enc[i + 1]) && isxdigit((unsigned char)enc[i + 2]));
      unsigned v;
      sscanf(enc + i + 1, "%2x", &v);
      ch = (char)v;
      i += 2;
    }
    assert(ch == text[o]);
    o++;
  }
  assert(o == strlen(text)); /* the buffer was large enough for all of it */
  uint64_t ns;
  bool ok = qs_grpc_timeout_parse((const char *)data, size < 12 ? size : 12, &ns);
  size_t tn = size < 12 ? size : 12;
  bool want = tn >= 2 && tn <= 9 && strchr("HMSmun", data[tn - 1]) && data[tn - 1];
  for (size_t i = 0; want && i + 1 < tn; i++) want = data[i] >= '0' && data[i] <= '9';
  assert(ok == want);
}

/* 1: must succeed; 0: no opinion. */
static int oracle(const Inference__ModelInferRequest *q) {
  size_t in;
  if (strcmp(q->model_name, "m") == 0)
    in = 8;
  else if (strcmp(q->model_name, "w") == 0)
    in = 3;
  else
    return 0;
  if (q->model_version[0] || q->n_inputs != 1 || q->n_outputs) return 0;
  for (size_t i = 0; i < q->n_parameters; i++)
    if (!strcmp(q->parameters[i]->key, "baseline") || !strcmp(q->parameters[i]->key, "mode")) return 0;
  const Inference__ModelInferRequest__InferInputTensor *t = q->inputs[0];
  if (strcmp(t->datatype, "FP32") || t->n_shape != 2 || t->shape[0] < 1 || t->shape[0] > FZ_MAX_BATCH ||
      t->shape[1] != (int64_t)in)
    return 0;
  size_t n = (size_t)t->shape[0] * in;
  const Inference__InferTensorContents *c = t->contents;
  bool other = c && (c->n_bool_contents || c->n_int_contents || c->n_int64_contents || c->n_uint_contents ||
                     c->n_uint64_contents || c->n_fp64_contents || c->n_bytes_contents);
  const float *x;
  if (q->n_raw_input_contents == 1 && !(c && (c->n_fp32_contents || other))) {
    if (q->raw_input_contents[0].len != n * 4) return 0;
    x = (const float *)(const void *)q->raw_input_contents[0].data;
  } else if (q->n_raw_input_contents == 0 && c && !other && c->n_fp32_contents == n) {
    x = c->fp32_contents;
  } else {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    float v;
    memcpy(&v, (const char *)x + 4 * i, 4);
    if (!isfinite(v)) return 0;
  }
  return 1;
}

static void check_reply(qs_gcall *c, const uint8_t *msg, size_t len) {
  assert((unsigned)c->code < QS_G_NCODES);
  if (c->code != QS_G_OK) {
    assert(c->reply == NULL && c->text[0]);
    return;
  }
  assert(c->reply && c->reply_len >= 5 && c->reply[0] == 0);
  size_t n = (size_t)c->reply[1] << 24 | (size_t)c->reply[2] << 16 | (size_t)c->reply[3] << 8 | c->reply[4];
  assert(n + 5 == c->reply_len);
  const ProtobufCMessageDescriptor *d[] = {
      NULL, &inference__server_live_response__descriptor, &inference__server_ready_response__descriptor,
      &inference__model_ready_response__descriptor, &inference__server_metadata_response__descriptor,
      &inference__model_metadata_response__descriptor, &inference__model_infer_response__descriptor};
  assert(c->method > QS_GM_NONE && c->method < QS_GM_COUNT);
  ProtobufCMessage *r = protobuf_c_message_unpack(d[c->method], NULL, n, c->reply + 5);
  assert(r);
  if (c->method == QS_GM_MODEL_INFER) {
    Inference__ModelInferResponse *ir = (Inference__ModelInferResponse *)r;
    Inference__ModelInferRequest *q = inference__model_infer_request__unpack(NULL, len, msg);
    assert(q);
    assert(ir->n_outputs == 1 && ir->n_raw_output_contents == 1);
    Inference__ModelInferResponse__InferOutputTensor *o = ir->outputs[0];
    size_t out = strcmp(ir->model_name, "m") == 0 ? 3 : 2;
    assert(!strcmp(o->datatype, "FP32") && o->n_shape == 2 && o->shape[0] == q->inputs[0]->shape[0] &&
           o->shape[1] == (int64_t)out);
    assert(ir->raw_output_contents[0].len == (size_t)o->shape[0] * out * 4);
    for (size_t i = 0; i < (size_t)o->shape[0] * out; i++) {
      float v;
      memcpy(&v, ir->raw_output_contents[0].data + 4 * i, 4);
      assert(isfinite(v));
    }
    assert(!strcmp(ir->id, q->id));
    inference__model_infer_request__free_unpacked(q, NULL);
  }
  protobuf_c_message_free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_text_helpers(data, size);
  if (size < 3) return 0;
  qs_gmethod method = (qs_gmethod)(data[0] % QS_GM_COUNT);
  size_t piece = 1 + data[1] % 64;
  size_t limit = data[2] < 128 ? (size_t)data[2] * 4 : (size_t)1 << 20;
  data += 3, size -= 3;
  qs_gframe f;
  qs_gframe_init(&f, limit);
  for (size_t off = 0; off < size; off += piece) {
    size_t k = size - off < piece ? size - off : piece;
    if (qs_gframe_feed(&f, data + off, k) != QS_G_OK) break;
    assert(f.len <= limit || f.msg == NULL);
  }
  const uint8_t *msg;
  size_t len;
  qs_gcode e = qs_gframe_finish(&f, &msg, &len);
  if (e != QS_G_OK) {
    assert(f.errmsg[0] && f.msg == NULL);
    qs_gframe_free(&f);
    return 0;
  }
  assert(len <= limit && len + 5 <= size);
  qs_gcall c = {.method = method, .msg = msg, .len = len, .t0_ns = qs_now_ns()};
  qs_grpc_call(&c);
  check_reply(&c, msg, len);
  if (method == QS_GM_MODEL_INFER) {
    Inference__ModelInferRequest *q = inference__model_infer_request__unpack(NULL, len, msg);
    if (q && oracle(q) && c.code != QS_G_OK) {
      fprintf(stderr, "valid request refused: %s %s\n", qs_gcode_name(c.code), c.text);
      abort();
    }
    if (q) inference__model_infer_request__free_unpacked(q, NULL);
  }
  free(c.reply);
  qs_gframe_free(&f);
  return 0;
}
