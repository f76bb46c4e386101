/* qat_train.c - `qat train`: data -> trained net (fp32, PTQ, QAT from
 * scratch or QAT fine-tuning) -> int8 model file with its fp32 baseline,
 * labels and the measured test accuracies in its metadata.
 *
 * The test set is used only after training, for the final numbers; epochs
 * report the validation split (the last --val rows of the training file). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qat_train.h"
#include "qat_tool.h"

typedef struct train_args {
  tool_data_opts data;
  const char *arch, *mode, *out, *log, *init;
  uint32_t val, calib;
  bool quiet;
  qat_train_opts o;
} train_args;

static void help(FILE *f) {
  fprintf(f,
          "usage: qat train [options] --out MODEL.safetensors\n"
          "Trains an MLP, converts it to int8 with the ranges it learned, measures it on\n"
          "the test set and saves the model (int8 + fp32 baseline + labels + metadata).\n"
          "%s"
          "model and training:\n"
          "  --arch A-B-...        layer widths, ReLU between layers (default 784-256-128-10)\n"
          "  --mode M              fp32 | ptq | dynamic : fp32 training, then static\n"
          "                        calibration (the file's int8 ranges; eval shows dynamic)\n"
          "                        qat : fake quantization from the first epoch\n"
          "                        qat-finetune : fp32 epochs, then --qat-epochs QAT epochs\n"
          "                        (default qat: the shipped model's recipe)\n"
          "  --epochs N            epochs in all (default 20; 0 with --mode ptq and --init:\n"
          "                        calibrate the model's fp32 weights, no training)\n"
          "  --qat-epochs N        QAT epochs at the end for qat-finetune (default 4)\n"
          "  --init MODEL          start from a model file's fp32 weights (then all epochs\n"
          "                        are QAT for the qat modes)\n"
          "  --batch N             mini-batch size (default 64)\n"
          "  --lr X                Adam peak learning rate (default 1e-3)\n"
          "  --qat-lr X            peak learning rate of the QAT phase (default 1e-4)\n"
          "  --schedule S          cosine | step | const (default cosine, per step;\n"
          "                        qat-finetune restarts it for the QAT phase)\n"
          "  --weight-decay X      decoupled weight decay (default 0)\n"
          "  --label-smoothing X   cross-entropy target (1-X) onehot + X/K (default 0.1)\n"
          "  --dropout X           dropout on hidden layer inputs (default 0)\n"
          "  --dropout-in X        dropout on the network input (default 0)\n"
          "  --flip W              inputs are images W wide: mirror left-right at random\n"
          "  --shift N             with --flip: shift images by up to N pixels at random\n"
          "  --w-bits N --a-bits N weight / activation bit widths, 2..8 (default 8/8)\n"
          "  --seed N              initialisation, shuffling and dropout (default 1)\n"
          "  --val N               validation rows from the end of the training set (5000)\n"
          "  --calib N             calibration rows for PTQ (default 2048)\n"
          "output:\n"
          "  --out FILE            the model file (required)\n"
          "  --log FILE.jsonl      one JSON object per epoch (for qat plot)\n"
          "  --quiet               no per-epoch lines\n",
          tool_data_help);
}

static int parse(train_args *a, int argc, char **argv) {
  tool_data_defaults(&a->data);
  a->arch = "784-256-128-10";
  a->mode = "qat";
  a->val = 5000;
  a->calib = 2048;
  qat_train_opts_default(&a->o);
  a->o.epochs = 20;
  a->o.qat_epochs = 4;
  a->o.label_smoothing = 0.1f;
  a->o.warm_restart = 1;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v;
    int r = tool_data_arg(&a->data, argc, argv, &i);
    if (r < 0) return -1;
    if (r > 0) continue;
    if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
      help(stdout);
      exit(0);
    }
    if (!strcmp(f, "--quiet")) {
      a->quiet = true;
      continue;
    }
    if (!(v = tool_value(argc, argv, &i))) return -1;
    int bad = 0;
    uint32_t u;
    if (!strcmp(f, "--arch")) a->arch = v;
    else if (!strcmp(f, "--mode")) a->mode = v;
    else if (!strcmp(f, "--out")) a->out = v;
    else if (!strcmp(f, "--log")) a->log = v;
    else if (!strcmp(f, "--init")) a->init = v;
    else if (!strcmp(f, "--epochs")) bad = tool_parse_u32(v, 0, 100000, &a->o.epochs);
    else if (!strcmp(f, "--qat-epochs")) bad = tool_parse_u32(v, 0, 100000, &a->o.qat_epochs);
    else if (!strcmp(f, "--batch")) bad = tool_parse_u32(v, 1, 65536, &a->o.batch);
    else if (!strcmp(f, "--lr")) bad = tool_parse_float(v, &a->o.lr);
    else if (!strcmp(f, "--qat-lr")) bad = tool_parse_float(v, &a->o.qat_lr);
    else if (!strcmp(f, "--weight-decay")) bad = tool_parse_float(v, &a->o.weight_decay);
    else if (!strcmp(f, "--dropout")) bad = tool_parse_float(v, &a->o.dropout);
    else if (!strcmp(f, "--dropout-in")) bad = tool_parse_float(v, &a->o.dropout_in);
    else if (!strcmp(f, "--label-smoothing")) bad = tool_parse_float(v, &a->o.label_smoothing);
    else if (!strcmp(f, "--flip")) bad = tool_parse_u32(v, 0, QAT_MAX_DIM, &a->o.hflip_width);
    else if (!strcmp(f, "--shift")) bad = tool_parse_u32(v, 0, 16, &a->o.shift);
    else if (!strcmp(f, "--val")) bad = tool_parse_u32(v, 0, UINT32_MAX, &a->val);
    else if (!strcmp(f, "--calib")) bad = tool_parse_u32(v, 1, UINT32_MAX, &a->calib);
    else if (!strcmp(f, "--w-bits")) bad = tool_parse_u32(v, 2, 8, &u), a->o.w_bits = (int)u;
    else if (!strcmp(f, "--a-bits")) bad = tool_parse_u32(v, 2, 8, &u), a->o.a_bits = (int)u;
    else if (!strcmp(f, "--seed")) bad = tool_parse_u32(v, 0, UINT32_MAX, &u), a->o.seed = u;
    else if (!strcmp(f, "--schedule")) {
      if (!strcmp(v, "cosine")) a->o.schedule = QAT_SCHED_COSINE;
      else if (!strcmp(v, "step")) a->o.schedule = QAT_SCHED_STEP;
      else if (!strcmp(v, "const")) a->o.schedule = QAT_SCHED_CONST;
      else bad = 1, fprintf(stderr, "qat train: unknown schedule '%s'\n", v);
    } else {
      fprintf(stderr, "qat train: unknown option '%s' (see --help)\n", f);
      return -1;
    }
    if (bad) return -1;
  }
  if (!a->out) {
    fprintf(stderr, "qat train: --out FILE is required (see --help)\n");
    return -1;
  }
  const char *modes[] = {"fp32", "ptq", "dynamic", "qat", "qat-finetune"};
  bool known = false;
  for (size_t k = 0; k < 5; k++) known |= !strcmp(a->mode, modes[k]);
  if (!known) {
    fprintf(stderr, "qat train: unknown mode '%s'\n", a->mode);
    return -1;
  }
  bool qat = !strncmp(a->mode, "qat", 3);
  if (!qat) a->o.qat_epochs = 0;
  else if (!strcmp(a->mode, "qat") || a->init) a->o.qat_epochs = a->o.epochs;
  else if (a->o.qat_epochs > a->o.epochs) {
    fprintf(stderr, "qat train: --qat-epochs %u > --epochs %u\n", a->o.qat_epochs,
            a->o.epochs);
    return -1;
  }
  if (a->o.qat_epochs == a->o.epochs) a->o.warm_restart = 0;
  if (a->o.epochs == 0 && (qat || !a->init)) {
    fprintf(stderr, "qat train: --epochs 0 only calibrates (--mode ptq) an --init model\n");
    return -1;
  }
  return 0;
}

static int parse_arch(const char *s, uint32_t *dims, uint32_t *n_layers) {
  uint32_t n = 0;
  const char *p = s;
  while (*p) {
    char buf[16];
    size_t len = strcspn(p, "-");
    if (len == 0 || len >= sizeof buf || n > QAT_MAX_LAYERS) goto bad;
    memcpy(buf, p, len);
    buf[len] = 0;
    if (tool_parse_u32(buf, 1, QAT_MAX_DIM, &dims[n++])) goto bad;
    p += len;
    if (*p == '-' && !*++p) goto bad;
  }
  if (n < 2) goto bad;
  *n_layers = n - 1;
  return 0;
bad:
  fprintf(stderr, "qat train: bad --arch '%s' (want e.g. 784-256-128-10)\n", s);
  return -1;
}

/* ---- progress ---------------------------------------------------------- */

typedef struct progress {
  const train_args *a;
  FILE *log;
  bool tty;
  double t0;
  size_t per_epoch;
} progress;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_batch(uint32_t epoch, size_t done, size_t total, void *arg) {
  progress *p = arg;
  if (!p->tty) return;
  const qat_train_opts *o = &p->a->o;
  double frac_all = ((epoch - 1) + (double)done / total) / o->epochs;
  double el = now_s() - p->t0;
  double rate = (epoch - 1) * (double)p->per_epoch + (double)done / total * p->per_epoch;
  rate /= el > 0 ? el : 1;
  double eta = frac_all > 0 ? el / frac_all - el : 0;
  bool fq = epoch > o->epochs - o->qat_epochs;
  fprintf(stderr, "\r  epoch %u/%u %-4s %3.0f%%  %7.0f samples/s  ETA %4.0fs ", epoch,
          o->epochs, fq ? "qat" : "fp32", 100.0 * done / total, rate, eta);
  fflush(stderr);
}

static void json_num(FILE *f, const char *k, double v, bool comma) {
  if (isfinite(v)) fprintf(f, "\"%s\":%.6g%s", k, v, comma ? "," : "");
  else fprintf(f, "\"%s\":null%s", k, comma ? "," : "");
}

static void on_epoch(const qat_epoch_stats *s, void *arg) {
  progress *p = arg;
  if (p->tty) fprintf(stderr, "\r%70s\r", "");
  if (!p->a->quiet)
    printf("epoch %2u/%u %-4s lr %.2e  loss %.4f acc %.4f  val loss %.4f acc %.4f  %.2fs (cpu %.2fs)%s\n",
           s->epoch, s->epochs, s->qat ? "qat" : "fp32", s->lr, s->loss, s->acc, s->val_loss,
           s->val_acc, s->seconds, s->cpu_seconds, s->observers_frozen ? " (observers frozen)" : "");
  fflush(stdout);
  if (p->log) {
    fprintf(p->log, "{\"epoch\":%u,\"epochs\":%u,\"phase\":\"%s\",\"mode\":\"%s\",", s->epoch,
            s->epochs, s->qat ? "qat" : "fp32", p->a->mode);
    fprintf(p->log, "\"w_bits\":%d,\"a_bits\":%d,", p->a->o.w_bits, p->a->o.a_bits);
    json_num(p->log, "lr", s->lr, true);
    json_num(p->log, "loss", s->loss, true);
    json_num(p->log, "acc", s->acc, true);
    json_num(p->log, "val_loss", s->val_loss, true);
    json_num(p->log, "val_acc", s->val_acc, true);
    json_num(p->log, "seconds", s->seconds, true);
    json_num(p->log, "cpu_seconds", s->cpu_seconds, false);
    fprintf(p->log, "}\n");
    fflush(p->log);
  }
}

/* ---- the command ------------------------------------------------------- */

static double accuracy(const uint32_t *pred, const qat_dataset *d) {
  size_t ok = 0;
  for (size_t i = 0; i < d->n; i++) ok += pred[i] == d->y[i];
  return (double)ok / d->n;
}

#define N_META 24

int cmd_train(int argc, char **argv) {
  train_args a;
  memset(&a, 0, sizeof a);
  if (parse(&a, argc, argv)) return 2;
  uint32_t dims[QAT_MAX_LAYERS + 1], nl;
  if (parse_arch(a.arch, dims, &nl)) return 2;
  int rc = 1;
  qat_dataset *all = NULL, *test = NULL, *tr = NULL, *val = NULL;
  qat_net *net = NULL;
  qat_model *model = NULL, *init = NULL;
  uint32_t *pred = NULL;
  FILE *log = NULL;
  qat_err e = QAT_OK;
  if (tool_data_load(&a.data, &all, &test)) goto out;
  if (all->dim != dims[0] || test->dim != dims[0]) {
    fprintf(stderr, "qat train: data has %u features, --arch starts with %u\n", all->dim,
            dims[0]);
    goto out;
  }
  uint32_t classes = all->n_classes > test->n_classes ? all->n_classes : test->n_classes;
  if (classes > dims[nl]) {
    fprintf(stderr, "qat train: %u classes but %u outputs\n", classes, dims[nl]);
    goto out;
  }
  if (a.val >= all->n) {
    fprintf(stderr, "qat train: --val %u leaves no training rows\n", a.val);
    goto out;
  }
  if ((e = qat_dataset_slice(all, 0, all->n - a.val, &tr))) goto fail;
  if (a.val && (e = qat_dataset_slice(all, all->n - a.val, a.val, &val))) goto fail;
  if (a.init) {
    if ((e = qat_model_load(a.init, &init))) goto fail;
    if ((e = qat_net_from_model(init, &net))) goto fail;
    if (qat_net_n_layers(net) != nl) {
      fprintf(stderr, "qat train: --init model has %u layers, --arch %u\n",
              qat_net_n_layers(net), nl);
      goto out;
    }
    for (uint32_t i = 0; i <= nl; i++)
      if (qat_net_dim(net, i) != dims[i]) {
        fprintf(stderr, "qat train: --init model's widths differ from --arch\n");
        goto out;
      }
  } else if ((e = qat_net_create(dims, nl, a.o.seed, &net))) {
    goto fail;
  }
  if (a.log && !(log = fopen(a.log, "w"))) {
    perror(a.log);
    goto out;
  }
  progress pr = {.a = &a, .log = log, .tty = isatty(2), .t0 = now_s(), .per_epoch = tr->n};
  a.o.on_epoch = on_epoch;
  a.o.on_batch = on_batch;
  a.o.arg = &pr;
  fprintf(stderr, "qat train: %s, %zu train / %zu validation / %zu test rows, %s, mode %s, "
                  "%u epochs (%u QAT), w%d a%d, seed %llu\n",
          tool_data_name(&a.data), tr->n, val ? val->n : 0, test->n, a.arch, a.mode,
          a.o.epochs, a.o.qat_epochs, a.o.w_bits, a.o.a_bits, (unsigned long long)a.o.seed);
  double t_train = now_s();
  if (a.o.epochs && (e = qat_net_train(net, tr, val, &a.o))) goto fail;
  t_train = now_s() - t_train;
  double acc_fp32, acc_fq, loss;
  if ((e = qat_net_evaluate(net, test, false, &acc_fp32, &loss))) goto fail;
  if (!a.o.qat_epochs && (e = qat_net_calibrate(net, tr, a.calib, a.o.w_bits, a.o.a_bits)))
    goto fail;
  if ((e = qat_net_evaluate(net, test, true, &acc_fq, &loss))) goto fail;

  /* Labels: Fashion-MNIST's names for its 10 classes, else none. */
  bool fashion = !a.data.train_csv && !strcmp(a.data.data, "fashion-mnist") && dims[nl] == 10;
  uint32_t n_labels = fashion ? 10 : 0;
  const char *const *labels = fashion ? tool_fashion_labels : NULL;

  /* Metadata: a first model without the int8 numbers measures them. */
  char vals[N_META][64];
  const char *keys[N_META], *values[N_META];
  uint32_t nm = 0;
#define META(k, ...) (keys[nm] = (k), snprintf(vals[nm], 64, __VA_ARGS__), values[nm] = vals[nm], nm++)
  META("trained_with", "qat train %s", QAT_VERSION);
  META("dataset", "%s", tool_data_name(&a.data));
  META("train_architecture", "%s", a.arch);
  META("mode", "%s", a.mode);
  META("seed", "%llu", (unsigned long long)a.o.seed);
  META("epochs", "%u", a.o.epochs);
  META("qat_epochs", "%u", a.o.qat_epochs);
  META("batch", "%u", a.o.batch);
  META("lr", "%g", a.o.lr);
  META("w_bits", "%d", a.o.w_bits);
  META("a_bits", "%d", a.o.a_bits);
  META("init", "%s", a.init ? a.init : "he-normal");
  META("label_smoothing", "%g", a.o.label_smoothing);
  META("accuracy_fp32", "%.4f", acc_fp32);
  META("accuracy_fakequant", "%.4f", acc_fq);
  uint32_t nm_base = nm;
  if ((e = qat_net_to_model(net, n_labels, labels, nm, keys, values, &model))) goto fail;
  if (!(pred = malloc(test->n * sizeof *pred))) goto out;
  if (tool_predict(model, TOOL_INT8, test, pred)) goto out;
  double acc_int8 = accuracy(pred, test);
  uint32_t *pf = malloc(test->n * sizeof *pf);
  if (!pf || tool_predict(model, TOOL_FP32, test, pf)) {
    free(pf);
    goto out;
  }
  size_t agree = 0;
  for (size_t i = 0; i < test->n; i++) agree += pf[i] == pred[i];
  free(pf);
  if (tool_predict(model, TOOL_DYNAMIC, test, pred)) goto out;
  double acc_dyn = accuracy(pred, test);
  qat_model_destroy(model);
  model = NULL;
  nm = nm_base;
  META("accuracy_int8", "%.4f", acc_int8);
  META("accuracy_dynamic", "%.4f", acc_dyn);
  META("int8_fp32_agreement", "%.4f", (double)agree / test->n);
  META("test_rows", "%zu", test->n);
#undef META
  if ((e = qat_net_to_model(net, n_labels, labels, nm, keys, values, &model))) goto fail;
  if ((e = qat_model_save(model, a.out))) goto fail;
  if (log) {
    fprintf(log, "{\"final\":true,\"mode\":\"%s\",\"test_rows\":%zu,", a.mode, test->n);
    json_num(log, "test_fp32", acc_fp32, true);
    json_num(log, "test_fakequant", acc_fq, true);
    json_num(log, "test_int8", acc_int8, true);
    json_num(log, "test_dynamic", acc_dyn, true);
    json_num(log, "train_seconds", t_train, false);
    fprintf(log, "}\n");
  }
  printf("test accuracy (%zu rows): fp32 %.4f  fake-quant %.4f  int8 %.4f  dynamic %.4f  "
         "int8/fp32 agreement %.4f\n",
         test->n, acc_fp32, acc_fq, acc_int8, acc_dyn, (double)agree / test->n);
  printf("trained in %.1fs; wrote %s\n", t_train, a.out);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "qat train: %s: %s\n", qat_err_name(e), qat_errmsg());
out:
  if (log) fclose(log);
  free(pred);
  qat_model_destroy(model);
  qat_model_destroy(init);
  qat_net_destroy(net);
  qat_dataset_destroy(all);
  qat_dataset_destroy(test);
  qat_dataset_destroy(tr);
  qat_dataset_destroy(val);
  return rc;
}
