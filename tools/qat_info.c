/* qat_info.c - `qat info MODEL`: what a model file holds. */
#include <math.h>
#include <string.h>

#include "qat_tool.h"

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
