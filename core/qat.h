/* qat.h - libqat's serving API: errors, allocation hooks, quantization
 * parameters and quantize/dequantize (bit-exact with PyTorch), the model and
 * its safetensors file, inference (int8, dynamic, fp32 baseline), the
 * machine. Training - data sets, fake quantization, observers, the training
 * net - is in qat_train.h. libqat knows nothing of HTTP; every other global
 * symbol it defines carries the internal prefix qat__ (make symbols-test).
 *
 * Conventions
 *   - Fallible functions return qat_err (QAT_OK == 0) and fill out-parameters
 *     only on success. The message behind the last error on this thread is
 *     qat_errmsg(); it names the file, tensor or key at fault.
 *   - Objects come in _create/_destroy (or _load/_destroy) pairs. _destroy
 *     accepts NULL.
 *   - A qat_model is immutable once made and may be shared by any number of
 *     threads; each thread runs inference with its own qat_ctx.
 */
#ifndef QAT_H
#define QAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QAT_VERSION "0.1.0"
/* Model file versions (docs/model-format.md): 2 = per-tensor SHA-256; 3 = 2 +
 * the `rounding` key. Writes 3 only for a model whose rounding is not
 * PyTorch's (so every other file stays readable by version-2 readers), else
 * 2; reads 1, 2 and 3. */
#define QAT_FORMAT_VERSION 2
#define QAT_FORMAT_VERSION_MAX 3

#if defined(__GNUC__)
#define QAT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define QAT_MUST_CHECK
#endif

/* ---- errors ------------------------------------------------------------ */

/* One table (core/error.c) gives each code its name and message. Loader
 * refusals each have their own code so tests and logs can tell them apart. */
#define QAT_ERR_MAP(X)                                                        \
  X(OK,            "success")                                                 \
  X(ENOMEM,        "out of memory")                                           \
  X(EINVAL,        "invalid argument")                                        \
  X(EIO,           "I/O error")                                               \
  X(ERANGE,        "value out of range")                                      \
  X(ENOTFINITE,    "non-finite number (NaN or infinity)")                     \
  X(EDIM,          "dimension mismatch")                                      \
  X(EDATA,         "malformed data file")                                     \
  X(ETRUNC,        "file truncated")                                          \
  X(EHDRSIZE,      "bad safetensors header length")                           \
  X(EJSON,         "bad safetensors JSON header")                             \
  X(EDTYPE,        "unsupported or unexpected tensor dtype")                  \
  X(ESHAPE,        "tensor shape does not match its size or the model")       \
  X(EOFFSET,       "tensor offsets outside the data section")                 \
  X(EOVERLAP,      "tensor byte ranges overlap or leave gaps")                \
  X(EMISSING,      "required tensor or metadata key missing")                 \
  X(ESCALE,        "scale not finite and positive")                           \
  X(EZEROPOINT,    "zero point out of range")                                 \
  X(ECHAIN,        "layer dimensions do not chain")                           \
  X(ELABELS,       "label count does not match the outputs")                  \
  X(EVERSION,      "unsupported model format version")                        \
  X(EMETA,         "bad metadata value")                                      \
  X(EBIAS,         "integer bias disagrees with the float bias")              \
  X(EUNSUPPORTED,  "unsupported feature")                                    \
  X(ECHECKSUM,     "tensor data does not match its checksum")                 \
  X(ELIMIT,        "model file header exceeds a size or count limit")         \
  X(ENOTREG,       "not a regular file")

typedef enum qat_err {
#define QAT_ERR_ENUM(name, msg) QAT_##name,
  QAT_ERR_MAP(QAT_ERR_ENUM)
#undef QAT_ERR_ENUM
  QAT_ERR_COUNT
} qat_err;

const char *qat_err_name(qat_err e);     /* "QAT_ESHAPE" */
const char *qat_err_str(qat_err e);      /* the table's generic message */
/* Detail of the last error raised on this thread (never NULL; "" if none). */
const char *qat_errmsg(void);

/* ---- allocation -------------------------------------------------------- */

/* Every allocation in libqat goes through these hooks (default: malloc/free),
 * so fault-injection tests can fail the Nth one. Not thread-safe to change
 * while other threads allocate. Passing NULLs restores the defaults. */
typedef void *(*qat_malloc_fn)(size_t n);
typedef void (*qat_free_fn)(void *p);
void qat_set_allocator(qat_malloc_fn m, qat_free_fn f);

/* ---- quantization ------------------------------------------------------ */

/* r = scale * (q - zero_point), q in [qmin, qmax]. */
typedef struct qat_qparams {
  float scale;
  int32_t zero_point;
  int32_t qmin, qmax;
} qat_qparams;

/* Parameters for a range [min, max] (extended to include 0).
 *  symmetric: signed, zero_point 0, q in [-(2^(bits-1)-1), 2^(bits-1)-1]
 *             (8 bits: [-127, 127]); scale = max(|min|, |max|) / qmax.
 *  affine:    unsigned, q in [0, 2^bits - 1]; scale = (max - min) / qmax,
 *             zero_point = clamp(-rint(min / scale), 0, qmax).
 * bits in 2..8. Scales never fall below QAT_MIN_SCALE, so a degenerate
 * range (both 0) gives that scale and zero point 0, as PyTorch does. Errors: EINVAL (bits),
 * ENOTFINITE (min/max). */
#define QAT_MIN_SCALE 1.1920928955078125e-07f /* float32 eps, as PyTorch */
QAT_MUST_CHECK qat_err qat_qparams_from_range(float min, float max, int bits,
                                              bool symmetric, qat_qparams *out);

/* q = clamp(zp + rint(x * (1.0f / scale)), qmin, qmax) in float32, ties to
 * even, the reciprocal multiplied as PyTorch does. NaN maps to qmin (callers
 * that serve requests refuse NaN before this). */
int32_t qat_quantize(float x, const qat_qparams *p);
float qat_dequantize(int32_t q, const qat_qparams *p);
void qat_quantize_u8(const float *x, size_t n, const qat_qparams *p, uint8_t *q);
void qat_quantize_s8(const float *x, size_t n, const qat_qparams *p, int8_t *q);

/* ---- the model --------------------------------------------------------- */

typedef enum qat_act { QAT_ACT_NONE = 0, QAT_ACT_RELU = 1 } qat_act;

/* How the last layer leaves the integer domain. */
typedef enum qat_out_mode {
  /* (float)(acc + bq) * (in_s * w_s[c]): more precise; our own models. */
  QAT_OUT_DEQUANT_ACC = 0,
  /* requantize to the output's uint8 qparams, then dequantize, as PyTorch's
   * quantized Linear + DeQuantStub do; imported models need it to match. */
  QAT_OUT_REQUANT = 1,
} qat_out_mode;

/* Whose float rounding the integer path reproduces (docs/model-format.md,
 * key `rounding`). Only the two places where two runtimes round differently
 * change; the integer arithmetic is the same. */
typedef enum qat_rounding {
  /* PyTorch / qnnpack: input q = rint(x * (1/s)); requantization multiplier
   * M[c] = (w_s[c] * in_s) * (1/out_s). Our own models and PyTorch imports. */
  QAT_ROUND_PYTORCH = 0,
  /* ONNX Runtime's QGemm / QLinearMatMul (and QDQ groups it fuses into them):
   * input q = rint(x / s) (QuantizeLinear divides); M[c] = (in_s * w_s[c]) /
   * out_s. */
  QAT_ROUND_ORT = 1,
  /* ONNX Runtime running MatMulInteger, Add, Cast, Mul, QuantizeLinear: input
   * q = rint(x / s); out = rint(((float)(acc + bq) * (in_s * w_s[c])) / out_s),
   * two roundings where the others have one. */
  QAT_ROUND_ORT_FLOAT = 2,
} qat_rounding;

/* "pytorch", "onnxruntime", "onnxruntime-float" (the metadata value). */
const char *qat_rounding_name(qat_rounding r);

/* Largest layer width we accept. With K <= 32768, |acc| <= 32768*255*128
 * < 2^30, and |bq| <= 2^30, so acc + bq cannot overflow int32. */
#define QAT_MAX_DIM 32768
#define QAT_MAX_LAYERS 64
#define QAT_MAX_BIAS_Q (1 << 30)

/* What a caller (training, import, tests) hands qat_model_create. All arrays
 * are copied; the caller keeps ownership of its own. */
typedef struct qat_layer_spec {
  uint32_t in_dim, out_dim;
  qat_act act;
  const int8_t *wq;       /* [out_dim][in_dim], row-major, symmetric (zp 0) */
  const float *w_scale;   /* [out_dim] per output channel (all equal = per tensor) */
  const float *bias;      /* [out_dim] float bias; NULL = zeros. The int32 bias is
                             bq[c] = rint(bias[c] * (1.0f / (float)((double)w_s[c]
                             * (double)in_s))), computed at create. */
  qat_qparams out;        /* this layer's output activation (uint8 affine, qmax =
                             2^a_bits-1); for the last layer used only with
                             QAT_OUT_REQUANT (with QAT_OUT_DEQUANT_ACC it may be
                             left all zero: the model then keeps {1, 0, 0, 255}) */
  const float *w_fp32;    /* [out_dim][in_dim] fp32 baseline; NULL = dequantized wq */
  const float *b_fp32;    /* [out_dim] fp32 baseline bias; NULL = bias */
  int w_bits;             /* 2..8, informational + validated against wq */
} qat_layer_spec;

typedef struct qat_model_spec {
  uint32_t n_layers;
  const qat_layer_spec *layers;
  qat_qparams input;           /* the network input's uint8 qparams */
  qat_out_mode out_mode;
  uint32_t n_labels;           /* 0 or the last layer's out_dim */
  const char *const *labels;
  uint32_t n_meta;             /* free-form string metadata (training info...) */
  const char *const *meta_keys;
  const char *const *meta_values;
  qat_rounding rounding;       /* zero (QAT_ROUND_PYTORCH) unless imported from ONNX */
} qat_model_spec;

typedef struct qat_model qat_model;
typedef struct qat_ctx qat_ctx;

/* Validates the spec as strictly as the loader validates a file (dims chain,
 * finite positive scales, zero points in range, |wq| within w_bits, labels
 * count) and builds the model: packs weights for the chosen kernel, derives
 * bq, M[c] and in_zp * rowsum. */
QAT_MUST_CHECK qat_err qat_model_create(const qat_model_spec *spec, qat_model **out);
void qat_model_destroy(qat_model *m);

/* Loading trusts nothing in the file; see docs/model-format.md. */
QAT_MUST_CHECK qat_err qat_model_load(const char *path, qat_model **out);
QAT_MUST_CHECK qat_err qat_model_load_mem(const void *buf, size_t len, qat_model **out);
/* What qat_model_load_file saw of the file: its identity when it was opened
 * (filled whenever fstat succeeded, also on a refusal) and the zlib CRC-32 of
 * every byte read (only on success). */
typedef struct qat_file_info {
  uint64_t dev, ino, size;
  int64_t mtime_sec, mtime_nsec;
  uint32_t crc32;
  bool stat_ok;
} qat_file_info;
/* qat_model_load that never blocks on a FIFO or device (opened O_NONBLOCK,
 * regular file required on the open descriptor), reads the header before the
 * data and refuses by the header alone what it can (a sparse 1 GiB file with
 * a small header is never read whole). info may be NULL. */
QAT_MUST_CHECK qat_err qat_model_load_file(const char *path, qat_model **out,
                                           qat_file_info *info);
/* true when the model came from a format-2 file whose per-tensor SHA-256
 * checksums were all verified; false for format-1 files and built models. */
bool qat_model_checksummed(const qat_model *m);
/* Writes atomically (temp file + rename). Save then load is bit-identical. */
QAT_MUST_CHECK qat_err qat_model_save(const qat_model *m, const char *path);

uint32_t qat_model_in_dim(const qat_model *m);
uint32_t qat_model_out_dim(const qat_model *m);
uint32_t qat_model_n_layers(const qat_model *m);
qat_out_mode qat_model_out_mode(const qat_model *m);
qat_rounding qat_model_rounding(const qat_model *m);
qat_qparams qat_model_input_qparams(const qat_model *m);

/* A read-only view of one layer; pointers live as long as the model. */
typedef struct qat_layer_info {
  uint32_t in_dim, out_dim;
  qat_act act;
  int w_bits;
  qat_qparams in, out;
  const int8_t *wq;        /* [out][in] */
  const float *w_scale;    /* [out] */
  const float *bias;       /* [out] */
  const int32_t *bias_q;   /* [out] */
  const float *w_fp32;     /* [out][in] */
  const float *b_fp32;     /* [out] */
} qat_layer_info;
QAT_MUST_CHECK qat_err qat_model_layer(const qat_model *m, uint32_t i, qat_layer_info *out);

/* NULL when the model has no labels or i is out of range. */
const char *qat_model_label(const qat_model *m, uint32_t i);
uint32_t qat_model_n_labels(const qat_model *m);
/* NULL when the key is absent. */
const char *qat_model_meta(const qat_model *m, const char *key);
uint32_t qat_model_n_meta(const qat_model *m);
void qat_model_meta_at(const qat_model *m, uint32_t i, const char **key, const char **value);

/* Per-thread scratch, sized once for batches of up to max_rows rows; larger
 * batches are processed in chunks of max_rows. Inference allocates nothing. */
QAT_MUST_CHECK qat_err qat_ctx_create(const qat_model *m, size_t max_rows, qat_ctx **out);
void qat_ctx_destroy(qat_ctx *c);

/* x: [rows][in_dim] float, y: [rows][out_dim] float. The context must have
 * been made for this model.
 *  int8:    quantize with the trained input qparams, integer layers, output
 *           per the model's out_mode.
 *  dynamic: int8 weights; each layer's input range is measured on this batch
 *           (min/max over all its rows; per chunk of max_rows rows when the
 *           batch is larger), quantized to uint8, multiplied in int32,
 *           dequantized to float, bias added in float, activation.
 *           Non-finite input: QAT_ENOTFINITE.
 *  fp32:    the baseline through OpenBLAS (sgemv for one row, else sgemm),
 *           single-threaded. */
QAT_MUST_CHECK qat_err qat_infer_int8(const qat_model *m, qat_ctx *c, const float *x,
                                      size_t rows, float *y);
QAT_MUST_CHECK qat_err qat_infer_dynamic(const qat_model *m, qat_ctx *c, const float *x,
                                         size_t rows, float *y);
QAT_MUST_CHECK qat_err qat_infer_fp32(const qat_model *m, qat_ctx *c, const float *x,
                                      size_t rows, float *y);

/* ---- the machine ------------------------------------------------------- */

/* Name of the int8 kernel tier in use: "avx512vnni", "avxvnni", "avx2" or
 * "ref" (the fastest this CPU runs), chosen once, on first use.
 * QAT_KERNEL=ref|avx2|avxvnni|avx512vnni in the environment forces one;
 * "none" when QAT_KERNEL names a tier this machine cannot run. */
const char *qat_kernel_name(void);
/* QAT_OK, or why QAT_KERNEL cannot be honoured here (QAT_EUNSUPPORTED with
 * the missing CPU feature, QAT_EINVAL for an unknown name): programs call
 * it at start-up and exit with qat_errmsg(); qat_model_create fails with
 * the same error. */
QAT_MUST_CHECK qat_err qat_kernel_check(void);
/* "x86-64 avx2 fma" etc.: what the CPU and OS offer. */
const char *qat_cpu_features(void);
/* Forces OpenBLAS to one thread (the baseline is single-threaded by design). */
void qat_blas_single_thread(void);
/* OpenBLAS's kernel family in use, e.g. "Haswell", "Cooperlake". */
const char *qat_blas_corename(void);
/* What computes the fp32 baseline of a single row: the kernel tier's own
 * product (e.g. "avx512vnni gemv") or "OpenBLAS sgemv" (batches always go
 * through OpenBLAS sgemm). "none" as qat_kernel_name. */
const char *qat_fp32_row_kernel(void);

#ifdef __cplusplus
}
#endif
#endif /* QAT_H */
