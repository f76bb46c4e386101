/* qat_common.c - data options, number parsing and batch prediction shared
 * by the qat subcommands. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qat_train.h"
#include "qat_tool.h"

const char *const tool_fashion_labels[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                             "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                             "Bag",         "Ankle boot"};

const char tool_data_help[] =
    "data:\n"
    "  --data NAME|DIR       fashion-mnist (" QAT_FASHION_DIR ", the default) or a\n"
    "                        directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "  --train-csv FILE      CSV instead: one sample a line, label column + features\n"
    "  --test-csv FILE\n"
    "  --csv-label-col N     label column (default 0)\n"
    "  --csv-divide D        features are divided by D (default 255: pixels -> [0,1])\n";

void tool_data_defaults(tool_data_opts *o) {
  memset(o, 0, sizeof *o);
  o->data = "fashion-mnist";
  o->csv.label_col = 0;
  o->csv.divisor = 255.0f;
  o->csv.n_classes = 0;
}

const char *tool_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "qat: %s needs a value\n", argv[*i]);
    return NULL;
  }
  return argv[++*i];
}

int tool_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "qat: '%s' is not an integer in %u..%u\n", s, lo, hi);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

int tool_parse_float(const char *s, float *out) {
  char *end;
  errno = 0;
  float v = strtof(s, &end);
  if (!*s || *end || errno || !isfinite(v)) {
    fprintf(stderr, "qat: '%s' is not a number\n", s);
    return -1;
  }
  *out = v;
  return 0;
}

int tool_data_arg(tool_data_opts *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], *v;
  if (!strcmp(a, "--data")) {
    if (!(v = tool_value(argc, argv, i))) return -1;
    o->data = v;
    return 1;
  }
  if (!strcmp(a, "--train-csv")) {
    if (!(v = tool_value(argc, argv, i))) return -1;
    o->train_csv = v;
    return 1;
  }
  if (!strcmp(a, "--test-csv")) {
    if (!(v = tool_value(argc, argv, i))) return -1;
    o->test_csv = v;
    return 1;
  }
  if (!strcmp(a, "--csv-label-col")) {
    if (!(v = tool_value(argc, argv, i))) return -1;
    return tool_parse_u32(v, 0, 1u << 20, &o->csv.label_col) ? -1 : 1;
  }
  if (!strcmp(a, "--csv-divide")) {
    if (!(v = tool_value(argc, argv, i))) return -1;
    if (tool_parse_float(v, &o->csv.divisor) || !(o->csv.divisor > 0)) return -1;
    return 1;
  }
  return 0;
}

const char *tool_data_name(const tool_data_opts *o) {
  if (o->train_csv || o->test_csv) return o->train_csv ? o->train_csv : o->test_csv;
  return o->data;
}

static int load_idx(const char *dir, const char *prefix, qat_dataset **out) {
  char ip[1024], lp[1024];
  for (int gz = 1; gz >= 0; gz--) {
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    FILE *f = fopen(ip, "rb");
    if (!f && gz) continue;
    if (f) fclose(f);
    qat_err e = qat_dataset_load_idx(ip, lp, 0, out);
    if (e) {
      fprintf(stderr, "qat: %s: %s\n", qat_err_name(e), qat_errmsg());
      return -1;
    }
    return 0;
  }
  return -1;
}

int tool_data_load(const tool_data_opts *o, qat_dataset **train, qat_dataset **test) {
  if (o->train_csv || o->test_csv) {
    const char *paths[2] = {o->train_csv, o->test_csv};
    qat_dataset **outs[2] = {train, test};
    for (int k = 0; k < 2; k++) {
      if (!outs[k]) continue;
      if (!paths[k]) {
        fprintf(stderr, "qat: --%s-csv missing\n", k ? "test" : "train");
        return -1;
      }
      qat_err e = qat_dataset_load_csv(paths[k], &o->csv, outs[k]);
      if (e) {
        fprintf(stderr, "qat: %s: %s\n", qat_err_name(e), qat_errmsg());
        return -1;
      }
    }
    return 0;
  }
  const char *dir = !strcmp(o->data, "fashion-mnist") ? QAT_FASHION_DIR : o->data;
  if (train && load_idx(dir, "train", train)) return -1;
  if (test && load_idx(dir, "t10k", test)) {
    if (train) qat_dataset_destroy(*train);
    return -1;
  }
  return 0;
}

int tool_predict(const qat_model *m, tool_path p, const qat_dataset *d, uint32_t *argmax) {
  const size_t chunk = 256;
  const uint32_t K = qat_model_out_dim(m);
  if (d->dim != qat_model_in_dim(m)) {
    fprintf(stderr, "qat: data has %u features, the model takes %u\n", d->dim,
            qat_model_in_dim(m));
    return -1;
  }
  qat_ctx *c;
  qat_err e = qat_ctx_create(m, chunk, &c);
  float *y = e ? NULL : malloc(chunk * K * sizeof(float));
  if (e || !y) {
    fprintf(stderr, "qat: context: %s\n", e ? qat_errmsg() : "out of memory");
    qat_ctx_destroy(c);
    return -1;
  }
  for (size_t lo = 0; lo < d->n && !e; lo += chunk) {
    size_t rows = d->n - lo < chunk ? d->n - lo : chunk;
    const float *x = d->x + lo * d->dim;
    e = p == TOOL_FP32   ? qat_infer_fp32(m, c, x, rows, y)
        : p == TOOL_INT8 ? qat_infer_int8(m, c, x, rows, y)
                         : qat_infer_dynamic(m, c, x, rows, y);
    for (size_t r = 0; r < rows && !e; r++) {
      uint32_t a = 0;
      for (uint32_t k = 1; k < K; k++)
        if (y[r * K + k] > y[r * K + a]) a = k;
      argmax[lo + r] = a;
    }
  }
  free(y);
  qat_ctx_destroy(c);
  if (e) {
    fprintf(stderr, "qat: inference: %s: %s\n", qat_err_name(e), qat_errmsg());
    return -1;
  }
  return 0;
}
