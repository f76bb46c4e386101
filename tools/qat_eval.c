/* qat_eval.c - `qat eval MODEL`: test-set accuracy of the three paths a
 * model file offers (fp32 baseline, static int8 = what the fake-quant
 * forward computed in training, dynamic int8), int8-vs-fp32 argmax
 * agreement and the int8 confusion matrix. */
#include <stdlib.h>
#include <string.h>

#include "qat_train.h"
#include "qat_tool.h"

static void help(FILE *f) {
  fprintf(f,
          "usage: qat eval MODEL.safetensors [options]\n"
          "Accuracy on the test set of the fp32 baseline, the int8 model (static ranges, as\n"
          "the fake-quant forward of training), dynamic int8; int8/fp32 agreement; the\n"
          "int8 confusion matrix.\n%s"
          "  --no-confusion        skip the confusion matrix\n",
          tool_data_help);
}

int cmd_eval(int argc, char **argv) {
  tool_data_opts d;
  tool_data_defaults(&d);
  const char *path = NULL;
  bool confusion = true;
  for (int i = 1; i < argc; i++) {
    int r = tool_data_arg(&d, argc, argv, &i);
    if (r < 0) return 2;
    if (r > 0) continue;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--no-confusion")) confusion = false;
    else if (argv[i][0] != '-' && !path) path = argv[i];
    else {
      fprintf(stderr, "qat eval: unknown argument '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (!path) {
    help(stderr);
    return 2;
  }
  if (d.train_csv && !d.test_csv) d.test_csv = d.train_csv;
  qat_model *m = NULL;
  qat_err e = qat_model_load(path, &m);
  if (e) {
    fprintf(stderr, "qat eval: %s: %s: %s\n", path, qat_err_name(e), qat_errmsg());
    return 1;
  }
  qat_dataset *test = NULL;
  int rc = 1;
  uint32_t *p[3] = {NULL, NULL, NULL};
  if (tool_data_load(&d, NULL, &test)) goto out;
  const uint32_t K = qat_model_out_dim(m);
  for (size_t i = 0; i < test->n; i++)
    if (test->y[i] >= K) {
      fprintf(stderr, "qat eval: label %u but the model has %u outputs\n", test->y[i], K);
      goto out;
    }
  const char *names[3] = {"fp32", "int8", "dynamic"};
  size_t ok[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    if (!(p[k] = malloc(test->n * sizeof(uint32_t)))) goto out;
    if (tool_predict(m, (tool_path)k, test, p[k])) goto out;
    for (size_t i = 0; i < test->n; i++) ok[k] += p[k][i] == test->y[i];
  }
  size_t agree = 0, agree_dyn = 0;
  for (size_t i = 0; i < test->n; i++) {
    agree += p[0][i] == p[1][i];
    agree_dyn += p[0][i] == p[2][i];
  }
  printf("model %s on %s (%zu rows), kernel %s\n", path, tool_data_name(&d), test->n,
         qat_kernel_name());
  for (int k = 0; k < 3; k++)
    printf("  accuracy %-8s %.4f  (%zu/%zu)\n", names[k], (double)ok[k] / test->n, ok[k],
           test->n);
  const char *fq = qat_model_meta(m, "accuracy_fakequant");
  if (fq) printf("  fake-quant accuracy recorded in training: %s\n", fq);
  printf("  int8 / fp32 argmax agreement    %.4f\n", (double)agree / test->n);
  printf("  dynamic / fp32 argmax agreement %.4f\n", (double)agree_dyn / test->n);
  if (confusion && K <= 32) {
    printf("confusion matrix (int8; rows = true class, columns = predicted)\n%14s", "");
    for (uint32_t c = 0; c < K; c++) printf(" %5u", c);
    printf("\n");
    for (uint32_t t = 0; t < K; t++) {
      const char *lab = qat_model_label(m, t);
      char name[16];
      snprintf(name, sizeof name, "%s", lab ? lab : "");
      printf("%2u %-11s", t, name);
      for (uint32_t c = 0; c < K; c++) {
        size_t cnt = 0;
        for (size_t i = 0; i < test->n; i++) cnt += test->y[i] == t && p[1][i] == c;
        printf(" %5zu", cnt);
      }
      printf("\n");
    }
  }
  rc = 0;
out:
  for (int k = 0; k < 3; k++) free(p[k]);
  qat_dataset_destroy(test);
  qat_model_destroy(m);
  return rc;
}
