/* qat_info.c - `qat info MODEL`: what a model file holds. */
#include <math.h>
#include <string.h>

#include "qat_tool.h"

static const char *meta_or(const qat_model *m, const char *key, const char *dflt) {
  const char *v = qat_model_meta(m, key);
  return v ? v : dflt;
}

/* Where the model came from, from the metadata keys docs/model-format.md
 * lists under Provenance (older files: trained_with alone). */
static void print_provenance(const qat_model *m) {
  const char *from = qat_model_meta(m, "imported_from");
  const char *tw = qat_model_meta(m, "trained_with");
  const char *base = qat_model_meta(m, "baseline");
  printf("source: ");
  if ((from && !strcmp(from, "pytorch")) || (!from && tw && !strncmp(tw, "pytorch", 7)))
    printf("imported from PyTorch, %s engine (%s)", meta_or(m, "engine", "unknown"),
           meta_or(m, "source", "file unknown"));
  else if (from && !strcmp(from, "onnx"))
    printf("imported from ONNX, %s form, opset %s (%s)", meta_or(m, "onnx_form", "unknown"),
           meta_or(m, "onnx_opset", "?"), meta_or(m, "source", "file unknown"));
  else if (from)
    printf("imported from %s", from);
  else if (tw && (!strncmp(tw, "qat train", 9) || !strcmp(tw, "qatserve")))
    printf("trained here (%s)", tw);
  else if (tw)
    printf("trained with %s", tw);
  else
    printf("unknown (no trained_with or imported_from metadata)");
  if (base) printf(", fp32 baseline %s", base);
  printf("\n");
  qat_rounding r = qat_model_rounding(m);
  printf("rounding: %s (%s)\n", qat_rounding_name(r),
         r == QAT_ROUND_PYTORCH ? "input x * (1/s); multiplier (w_s * in_s) * (1/out_s)"
         : r == QAT_ROUND_ORT   ? "ONNX Runtime QGemm: input x / s; multiplier (in_s * w_s) / out_s"
                                : "ONNX Runtime integer ops: input x / s; "
                                  "((acc + bq) * (in_s * w_s)) / out_s");
}

int cmd_info(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    FILE *f = argc == 2 ? stdout : stderr;
    fprintf(f, "usage: qat info MODEL.safetensors\n"
               "Layers, quantization parameters, sizes, labels and metadata of a model.\n");
    return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 2;
  }
  qat_model *m;
  qat_err e = qat_model_load(argv[1], &m);
  if (e) {
    fprintf(stderr, "qat info: %s: %s: %s\n", argv[1], qat_err_name(e), qat_errmsg());
    return 1;
  }
  uint32_t nl = qat_model_n_layers(m);
  qat_qparams in = qat_model_input_qparams(m);
  printf("model %s: %u layers, %u -> %u, output %s\n", argv[1], nl, qat_model_in_dim(m),
         qat_model_out_dim(m),
         qat_model_out_mode(m) == QAT_OUT_DEQUANT_ACC ? "dequantized int32 accumulator"
                                                      : "requantized uint8");
  print_provenance(m);
  printf("input: scale %.6g zero point %d (q %d..%d)\n", in.scale, in.zero_point, in.qmin,
         in.qmax);
  size_t int_bytes = 0, fp_bytes = 0;
  for (uint32_t l = 0; l < nl; l++) {
    qat_layer_info li;
    if ((e = qat_model_layer(m, l, &li))) break;
    size_t nw = (size_t)li.in_dim * li.out_dim;
    float smin = INFINITY, smax = 0;
    for (uint32_t c = 0; c < li.out_dim; c++) {
      smin = fminf(smin, li.w_scale[c]);
      smax = fmaxf(smax, li.w_scale[c]);
    }
    int_bytes += nw + li.out_dim * (4 + 4);
    fp_bytes += (nw + li.out_dim) * 4;
    printf("layer %u: %u -> %u %s, w%d per-channel scale %.3g..%.3g\n", l, li.in_dim,
           li.out_dim, li.act == QAT_ACT_RELU ? "relu" : "none", li.w_bits, smin, smax);
    printf("         in  scale %.6g zp %d; out scale %.6g zp %d (q %d..%d)\n", li.in.scale,
           li.in.zero_point, li.out.scale, li.out.zero_point, li.out.qmin, li.out.qmax);
  }
  if (e) {
    fprintf(stderr, "qat info: %s\n", qat_errmsg());
    qat_model_destroy(m);
    return 1;
  }
  printf("weights: int8 %zu bytes (with int32 bias and scales), fp32 %zu bytes (%.1fx)\n",
         int_bytes, fp_bytes, (double)fp_bytes / int_bytes);
  printf("tensor checksums: %s\n", qat_model_checksummed(m)
                                        ? "sha256, every tensor verified"
                                        : "none (format 1: data corruption goes undetected)");
  uint32_t nlab = qat_model_n_labels(m);
  if (nlab) {
    printf("labels:");
    for (uint32_t i = 0; i < nlab; i++) printf("%s %u=%s", i ? "," : "", i, qat_model_label(m, i));
    printf("\n");
  }
  uint32_t nm = qat_model_n_meta(m);
  if (nm) printf("metadata:\n");
  for (uint32_t i = 0; i < nm; i++) {
    const char *k, *v;
    qat_model_meta_at(m, i, &k, &v);
    printf("  %-22s %s\n", k, v);
  }
  qat_model_destroy(m);
  return 0;
}
