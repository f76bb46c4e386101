/* layer.h - integer and fp32 layer math shared by model.c and the tests.
 * Internal to libqat (never included by server/ or tools/).
 *
 * The integer layer follows PyTorch's qnnpack semantics bit for bit; every
 * float step is float32 in the default rounding mode (see DESIGN.md):
 *   acc[c]  = sum_k (xq[k] - in_zp) * wq[c,k] = raw[c] - in_zp * rowsum[c]
 *   bq[c]   = rint(bias[c] * (1.0f / (float)((double)w_s[c] * (double)in_s)))
 *   M[c]    = ((float)w_s[c] * (float)in_s) * (1.0f / (float)out_s)
 *   out     = clamp(rint((float)(acc[c] + bq[c]) * M[c]) + out_zp,
 *                   relu ? out_zp : 0, qmax)
 * The model folds bq[c] - in_zp * rowsum[c] into one int32 per channel
 * ("bias_adj"), so acc[c] + bq[c] == raw[c] + bias_adj[c] exactly (all three
 * terms stay below 2^30 in magnitude for K <= QAT_MAX_DIM, see qat.h).
 * The uint8 requantization itself is the kernel table's requant_u8. */
#ifndef QAT_LAYER_H
#define QAT_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "qat.h"

/* bq for one channel; returns false when the value is not finite or its
 * magnitude exceeds QAT_MAX_BIAS_Q (the caller refuses the model). */
bool qat__layer_bias_q(float bias, float w_scale, float in_scale, int32_t *bq);
/* M for one channel (float32, as above). */
float qat__layer_multiplier(float w_scale, float in_scale, float out_scale);
/* M as ONNX Runtime's QGemm / QLinearMatMul compute it: (in_s * w_s) / out_s
 * (QAT_ROUND_ORT). Differs from the above by an ulp in some channels. */
float qat__layer_multiplier_ort(float w_scale, float in_scale, float out_scale);

/* QAT_ROUND_ORT*: input quantization as ONNX's QuantizeLinear does it,
 * q = clamp(rint(x / scale) + zp, 0, qmax): a division, not the reciprocal
 * multiply of the kernel table's quantize_u8. NaN maps to 0 (as there). */
void qat__layer_quantize_div(const float *x, size_t n, const qat_qparams *p,
                            uint8_t *q);

/* QAT_ROUND_ORT_FLOAT requantization (MatMulInteger, Add, Cast, Mul,
 * QuantizeLinear in ONNX Runtime): two float roundings,
 * out = clamp(rint(((float)(raw + bias_adj[c]) * scale[c]) / out_s) + zp,
 *             lo, hi), written with row stride ldo. */
void qat__layer_requant_div(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *bias_adj, const float *scale,
                           float out_s, int32_t zp, int32_t lo, int32_t hi,
                           uint8_t *out, size_t ldo);

/* y[r][c] = (float)(raw[r][c] + bias_adj[c]) * scale[c]; relu: max(y, 0). */
void qat__layer_dequant_acc(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *bias_adj, const float *scale,
                           bool relu, float *y);

/* y[i] = (float)(q[i] - zp) * scale. */
void qat__layer_dequant_u8(const uint8_t *q, size_t n, int32_t zp, float scale,
                          float *y);

/* Dynamic mode: y[r][c] = (float)(raw[r][c] - in_zp * rowsum[c]) * scale[c]
 * + bias[c]; relu: max(y, 0). */
void qat__layer_dynamic_out(const int32_t *raw, size_t rows, size_t n,
                           const int32_t *rowsum, int32_t in_zp,
                           const float *scale, const float *bias, bool relu,
                           float *y);

/* min and max of x[0..n); false if any value is not finite. */
bool qat__layer_minmax(const float *x, size_t n, float *min, float *max);

/* fp32 layer: y[rows][N] = x[rows][K] * W^T + b, relu. One row through
 * the tier's gemv_f32 on Wt (W transposed, [K][qat__gemv_f32_ld(N)]) when
 * the tier has one, else OpenBLAS sgemv; more rows through OpenBLAS sgemm
 * on W ([N][K] row-major). */
void qat__layer_fp32(const qat_kernels *k, const float *x, size_t rows, size_t K,
                    const float *W, const float *Wt, const float *b, size_t N, bool relu,
                    float *y);

#endif
