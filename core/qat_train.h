/* qat_train.h - libqat's training API (the `qat` CLI, the importers'
 * tests, the unit suites): fake quantization and the straight-through
 * estimator, observers, labelled data sets (IDX, CSV), the training net
 * (QAT and post-training calibration) and its conversion to an int8 model.
 * Serving needs only qat.h. */
#ifndef QAT_TRAIN_H
#define QAT_TRAIN_H

#include "qat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fake quantization and observers ----------------------------------- */

/* Fake quantization: y = dequantize(quantize(x)). If mask is non-NULL,
 * mask[i] = 1 where x lay inside the clamping range [s*(qmin-z), s*(qmax-z)]
 * (the straight-through estimator passes the gradient there), else 0.
 * y may alias x. */
void qat_fake_quant(const float *x, size_t n, const qat_qparams *p, float *y,
                    uint8_t *mask);

/* Observers. min/max keeps the running extremes; moving average keeps
 * min += c * (batch_min - min) (same for max), the first batch setting the
 * range. Non-finite values are ignored. */
typedef struct qat_observer {
  float min, max;
  float averaging_constant; /* 0 = plain min/max */
  bool initialized;
} qat_observer;
void qat_observer_init(qat_observer *o, float averaging_constant);
void qat_observer_update(qat_observer *o, const float *x, size_t n);
/* Qparams of the observed range; degenerate (uninitialised) gives [0, 0]. */
QAT_MUST_CHECK qat_err qat_observer_qparams(const qat_observer *o, int bits,
                                            bool symmetric, qat_qparams *out);

/* ---- data sets (core/data.c) ------------------------------------------- */

/* A labelled data set in memory: x [n][dim] float (IDX pixels / 255, CSV
 * fields / divisor), y [n] class indices < n_classes. Owned by the caller
 * through qat_dataset_destroy. */
typedef struct qat_dataset {
  size_t n;
  uint32_t dim;
  uint32_t n_classes;
  float *x;
  uint32_t *y;
} qat_dataset;

/* Caps that keep a hostile file from sizing huge allocations. */
#define QAT_DATA_MAX_BYTES ((size_t)1 << 31)  /* decompressed file size */
#define QAT_DATA_MAX_CLASSES 65536

/* IDX (the MNIST format): an unsigned-byte images file (magic 0x0803, or
 * 0x08NN with NN dims >= 2) and a labels file (0x0801), each plain or gzip
 * (detected by its magic, inflated with zlib). n_classes: labels must be
 * below it (0 = 256, the count being max label + 1). Errors: EIO (open/read),
 * EDATA (wrong magic, bad gzip, trailing bytes), ETRUNC (shorter than its
 * header says), EDIM (image and label counts disagree), ERANGE (label >=
 * n_classes). The _mem form reads the two files' bytes from memory. */
QAT_MUST_CHECK qat_err qat_dataset_load_idx(const char *images_path,
                                            const char *labels_path,
                                            uint32_t n_classes, qat_dataset **out);
QAT_MUST_CHECK qat_err qat_dataset_load_idx_mem(const void *images, size_t images_len,
                                                const void *labels, size_t labels_len,
                                                uint32_t n_classes, qat_dataset **out);

/* CSV: one sample a line, comma-separated decimal numbers, the label (an
 * integer in 0..n_classes-1) in column label_col; an optional first line
 * that is not all numbers is a header. Features are divided by divisor
 * (> 0; 255 for pixel CSVs). n_classes 0 = max label + 1. Errors: EDATA
 * (bad field, with line and column), EDIM (ragged row), ERANGE (label). */
typedef struct qat_csv_opts {
  uint32_t label_col;
  float divisor;
  uint32_t n_classes;
} qat_csv_opts;
QAT_MUST_CHECK qat_err qat_dataset_load_csv(const char *path, const qat_csv_opts *o,
                                            qat_dataset **out);
QAT_MUST_CHECK qat_err qat_dataset_load_csv_mem(const char *buf, size_t len,
                                                const qat_csv_opts *o, qat_dataset **out);
/* Copies rows [first, first + count) into a new data set. */
QAT_MUST_CHECK qat_err qat_dataset_slice(const qat_dataset *d, size_t first, size_t count,
                                         qat_dataset **out);
void qat_dataset_destroy(qat_dataset *d);

/* ---- training (core/train*.c) ------------------------------------------ */

/* An MLP in training: fp32 (shadow) weights, Adam state, and one
 * moving-average observer per layer input (the network input included) and
 * one on the logits. ReLU between layers, none after the last. Not
 * thread-safe; deterministic for a seed (OpenBLAS is forced to one thread). */
typedef struct qat_net qat_net;

/* dims[0..n_layers]: e.g. {784, 256, 128, 10}. He-normal weights, zero
 * biases, from seed. */
QAT_MUST_CHECK qat_err qat_net_create(const uint32_t *dims, uint32_t n_layers,
                                      uint64_t seed, qat_net **out);
/* A net initialised from a model's fp32 baseline (fine-tuning). */
QAT_MUST_CHECK qat_err qat_net_from_model(const qat_model *m, qat_net **out);
void qat_net_destroy(qat_net *n);
uint32_t qat_net_n_layers(const qat_net *n);
uint32_t qat_net_dim(const qat_net *n, uint32_t i); /* dims[i], i <= n_layers */

typedef enum qat_schedule {
  QAT_SCHED_CONST = 0,
  QAT_SCHED_COSINE = 1, /* lr * (f + (1-f) * (1 + cos(pi t / T)) / 2), per step */
  QAT_SCHED_STEP = 2,   /* lr * 0.1 at 50% and again at 75% of the steps */
} qat_schedule;

typedef struct qat_epoch_stats {
  uint32_t epoch, epochs;   /* 1-based */
  bool qat;                 /* fake quantization on in this epoch */
  bool observers_frozen;
  float lr;                 /* at the end of the epoch */
  double loss, acc;         /* training, over the epoch's batches */
  double val_loss, val_acc; /* NaN without a validation set */
  double seconds;           /* the epoch's training time, validation excluded */
  double cpu_seconds;       /* the same in process CPU time (robust to a busy machine) */
} qat_epoch_stats;

typedef struct qat_train_opts {
  uint32_t epochs;      /* total */
  uint32_t qat_epochs;  /* the last qat_epochs of them train with fake quant */
  uint32_t batch;       /* mini-batch size */
  float lr;             /* Adam's peak learning rate */
  float lr_final;       /* cosine: fraction of lr reached at the end */
  qat_schedule schedule;
  uint32_t warm_restart; /* 1: the QAT phase restarts the schedule at qat_lr */
  float qat_lr;         /* peak lr of a restarted QAT phase */
  float weight_decay;   /* decoupled (AdamW), weights only */
  float dropout_in;     /* dropout rate on the network input (training only) */
  float dropout;        /* dropout rate on each hidden layer's input */
  uint32_t hflip_width; /* > 0: inputs are images this wide; each training
                           sample is mirrored left-right with probability 1/2 */
  uint32_t shift;       /* with hflip_width: also shift each training image by
                           up to this many pixels in x and y (zero fill) */
  float label_smoothing; /* target (1-e) onehot + e/K */
  int w_bits, a_bits;   /* 2..8 */
  float obs_constant;   /* moving-average constant of the observers (0.01) */
  bool freeze_last;     /* observers frozen in the last epoch (QAT) */
  uint64_t seed;        /* shuffling */
  /* Called after each epoch and every few batches; may be NULL. */
  void (*on_epoch)(const qat_epoch_stats *s, void *arg);
  void (*on_batch)(uint32_t epoch, size_t done, size_t total, void *arg);
  void *arg;
} qat_train_opts;
/* Defaults: 10 epochs, 0 QAT, batch 64, lr 1e-3 cosine to 0, 8/8 bits,
 * observers 0.01 frozen in the last epoch. */
void qat_train_opts_default(qat_train_opts *o);

/* Trains in place; val may be NULL. */
QAT_MUST_CHECK qat_err qat_net_train(qat_net *n, const qat_dataset *train,
                                     const qat_dataset *val, const qat_train_opts *o);

/* Post-training static quantization: resets the observers to plain min/max,
 * runs up to n_samples rows of d through the fp32 net to set them, and sets
 * the bit widths. No training. */
QAT_MUST_CHECK qat_err qat_net_calibrate(qat_net *n, const qat_dataset *d,
                                         size_t n_samples, int w_bits, int a_bits);
bool qat_net_quantized(const qat_net *n); /* observers set (QAT or calibrated) */

/* Logits for rows of x: fp32, or the fake-quant forward with the observers
 * as they are (frozen; requires qat_net_quantized). */
QAT_MUST_CHECK qat_err qat_net_forward(qat_net *n, const float *x, size_t rows,
                                       bool fake_quant, float *logits);
/* Accuracy and mean cross-entropy on a data set. */
QAT_MUST_CHECK qat_err qat_net_evaluate(qat_net *n, const qat_dataset *d, bool fake_quant,
                                        double *acc, double *loss);

/* The int8 model with exactly the fake-quant forward's scales and zero
 * points: weight scale per row from max |w|, wq by qat_quantize, layer i's
 * input qparams -> layer i-1's out (the network's -> spec.input), the logits'
 * observer -> the last layer's out, QAT_OUT_DEQUANT_ACC. The fp32 weights
 * become the baseline. labels/meta as in qat_model_spec. */
QAT_MUST_CHECK qat_err qat_net_to_model(const qat_net *n, uint32_t n_labels,
                                        const char *const *labels, uint32_t n_meta,
                                        const char *const *meta_keys,
                                        const char *const *meta_values, qat_model **out);

#ifdef __cplusplus
}
#endif
#endif /* QAT_TRAIN_H */
