/* model.h - the model's internal layout, shared by model.c and the tests
 * that need to look behind the public accessors. Internal to libqat. */
#ifndef QAT_MODEL_H
#define QAT_MODEL_H

#include "kernels.h"
#include "qat.h"

typedef struct qat_mlayer {
  uint32_t in_dim, out_dim;
  qat_act act;
  int w_bits;
  qat_qparams in, out;
  /* As given (copied) and as saved. */
  int8_t *wq;          /* [out][in] */
  float *w_scale;      /* [out] */
  float *bias;         /* [out] */
  int32_t *bias_q;     /* [out] derived at create */
  float *w_fp32;       /* [out][in], 64-byte aligned */
  float *b_fp32;       /* [out] */
  /* Derived at create for inference. */
  void *wpacked;       /* k->pack layout, 64-byte aligned */
  float *wt_fp32;      /* [in][ldw] w_fp32 transposed, 64-byte aligned:
                        * the single-row fp32 product (gemv_f32.h) */
  int32_t *rowsum;     /* sum_k wq[c][k] (dynamic mode) */
  int32_t *bias_adj;   /* bq[c] - in_zp * rowsum[c] */
  float *mult;         /* requant multiplier M[c] (per the model's rounding) */
  float *deq;          /* in_s * w_s[c] (dequant_acc output) */
} qat_mlayer;

struct qat_model {
  const qat_kernels *k; /* the tier that packed wpacked; used for every call */
  uint32_t n_layers;
  qat_mlayer *layers;
  qat_qparams input;
  qat_out_mode out_mode;
  qat_rounding rounding;
  uint32_t max_dim;     /* widest in/out dim: sizes a context's scratch */
  uint32_t n_labels;
  char **labels;
  uint32_t n_meta;      /* sorted by key (strcmp) */
  char **meta_keys;
  char **meta_values;
  bool checksummed;     /* loaded from a file whose tensor checksums matched */
};

/* Metadata keys the file format owns; a spec cannot set them as free-form. */
bool qat__meta_key_reserved(const char *key);
/* Strict UTF-8 check (no overlongs, no surrogates), for strings that must
 * survive a JSON round trip. */
bool qat__utf8_valid(const char *s);

/* An activation's qparams: uint8 affine, qmin 0, qmax 1..255, zero point
 * inside, finite positive scale (ESCALE / EZEROPOINT naming what[idx]). */
qat_err qat__check_act_qparams(const qat_qparams *q, const char *what, uint32_t idx);

#endif
