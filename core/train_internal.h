/* train_internal.h - the training net's layout, shared by core/train*.c. */
#ifndef QAT_TRAIN_INTERNAL_H
#define QAT_TRAIN_INTERNAL_H

#include "qat_train.h"
#include "internal.h"

typedef struct qat_tlayer {
  uint32_t in, out;
  float *w, *b;          /* fp32 shadow parameters [out][in], [out] */
  float *mw, *vw, *mb, *vb; /* Adam moments */
  float *gw, *gb;        /* gradients of the last backward pass */
  float *wq;             /* fake-quantized weights of the last QAT forward */
  uint8_t *wmask;        /* their STE mask */
  float *w_scale;        /* per-row scale used for wq */
  float *bq;             /* fake-quantized bias: rint(b / (s_in s_w)) s_in s_w */
  qat_observer obs;      /* this layer's input activation */
} qat_tlayer;

struct qat_net {
  uint32_t n_layers;
  uint32_t dims[QAT_MAX_LAYERS + 1];
  qat_tlayer *L;
  qat_observer out_obs;  /* logits, for the last layer's out qparams */
  int w_bits, a_bits;
  bool quantized;        /* observers hold ranges (QAT ran or calibrated) */
  uint64_t adam_t;
  /* scratch for up to cap_rows rows */
  size_t cap_rows;
  float *act[QAT_MAX_LAYERS + 1];   /* act[0] input, act[l] relu output, act[L] logits */
  float *actq[QAT_MAX_LAYERS];      /* fake-quantized input of layer l */
  uint8_t *amask[QAT_MAX_LAYERS];   /* its STE mask */
  float *g1, *g2;                   /* gradient ping-pong [rows][max dim] */
  uint32_t *labels;                 /* batch labels */
  const float *xin[QAT_MAX_LAYERS]; /* what layer l multiplied in the last forward */
  /* Dropout on each layer's (fake-quantized) input while training: the
   * observers see the activations before it, so ranges are not inflated. */
  float drop[QAT_MAX_LAYERS];       /* rate; 0 = none */
  bool training;                    /* dropout on */
  uint8_t *dmask[QAT_MAX_LAYERS];   /* kept elements of the last forward */
  uint64_t drop_rng[4];
  float label_smoothing;            /* of the training loss */
};

qat_err qat__net_alloc(const uint32_t *dims, uint32_t n_layers, qat_net **out);
/* Scratch for `rows` rows (grown, never shrunk). */
qat_err qat__net_reserve(qat_net *n, size_t rows);
/* Fake-quantizes every layer's weights (per-row symmetric from max |w|). */
qat_err qat__net_quant_weights(qat_net *n);
/* Forward of act[0] (rows rows) into act[L]. fq: fake quantization;
 * observe: update the input observers (and the logits') first. */
qat_err qat__net_fwd(qat_net *n, size_t rows, bool fq, bool observe);
/* Backward from labels, filling gw/gb; returns the summed loss and the
 * number of correct argmaxes. */
void qat__net_bwd(qat_net *n, size_t rows, bool fq, const uint32_t *labels, double *loss_sum,
                 size_t *correct);
/* Layer l's fake-quant weight qparams for row r (what conversion uses). */
qat_err qat__net_row_qparams(const float *row, uint32_t in, int bits, qat_qparams *p);

#endif
