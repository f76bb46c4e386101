/* safetensors.c - the model file (format v2, v3 with `rounding`; reads v1;
 * docs/model-format.md).
 *
 * Loading trusts nothing: every length, offset, shape and number is checked
 * before use, and each refusal has its own qat_err with a message naming the
 * tensor or key. Saving is deterministic (fixed tensor order, sorted JSON
 * keys) and atomic (temp file, fsync, rename), so save -> load -> save gives
 * the same bytes.
 *
 * The data section is read with memcpy-free direct pointers where the
 * alignment allows, else copied; all numbers are little-endian, which the
 * build pins below (every platform we target is). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "model.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the safetensors code assumes a little-endian host");
_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");

#define ST_MAX_HEADER ((uint64_t)16 << 20) /* 16 MiB of JSON */
#define ST_MAX_FILE ((uint64_t)1 << 30)    /* 1 GiB per model file */
#define ST_MAX_NDIM 8
/* A tree parser allocates per JSON value: a 16 MiB header of "[],[],..."
 * would build millions of nodes (hundreds of MB). The structure outside
 * strings is counted first and capped far above what a real header needs
 * (~20 per tensor, 2 per metadata key). */
#define ST_MAX_NODES 65536
#define ST_MAX_META 4096 /* metadata keys, reserved and checksums included */
#define ST_SUM_PREFIX "sha256."

typedef enum { DT_I8, DT_I32, DT_F32 } st_dtype;
static const char *const dt_name[] = {"I8", "I32", "F32"};
static const size_t dt_size[] = {1, 4, 4};

/* Per-layer tensors: name suffix, dtype, and whether it is [out, in]. */
enum { F_WQ, F_WS, F_B, F_BQ, F_WF, F_BF, N_LF };
static const struct {
  const char *name;
  st_dtype dt;
  bool matrix;
} lf[N_LF] = {
    [F_WQ] = {"weight_q", DT_I8, true},      [F_WS] = {"weight_scale", DT_F32, false},
    [F_B] = {"bias", DT_F32, false},         [F_BQ] = {"bias_q", DT_I32, false},
    [F_WF] = {"weight_fp32", DT_F32, true},  [F_BF] = {"bias_fp32", DT_F32, false},
};
/* Whole-model tensors, each [n_layers + 1]. */
enum { A_SCALE, A_ZP, A_QMAX, N_AF };
static const struct {
  const char *name;
  st_dtype dt;
} af[N_AF] = {
    [A_SCALE] = {"activations.scale", DT_F32},
    [A_ZP] = {"activations.zero_point", DT_I32},
    [A_QMAX] = {"activations.qmax", DT_I32},
};

typedef struct st_tensor {
  const char *name; /* key inside the parsed JSON (lives as long as it) */
  bool present;
  st_dtype dt;
  size_t ndim;
  uint64_t shape[ST_MAX_NDIM];
  uint64_t begin, end;
} st_tensor;

/* ---- small parsers (no atoi/strtol surprises) ------------------------ */

/* Separators and containers outside strings ({ [ , :), which bound the
 * number of values a JSON text can hold; an unterminated string just ends
 * the count (the parser refuses it). Linear, no allocation. */
static size_t json_nodes(const char *s, size_t n) {
  size_t k = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[' || c == ',' || c == ':') {
      k++;
    }
  }
  return k;
}

/* A decimal without sign or leading zeros, at most max; *end past it. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *v, const char **end) {
  if (*s < '0' || *s > '9') return false;
  if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') return false;
  uint64_t x = 0;
  while (*s >= '0' && *s <= '9') {
    x = x * 10 + (uint64_t)(*s - '0');
    if (x > max) return false;
    s++;
  }
  *v = x;
  *end = s;
  return true;
}

/* Slot of a tensor name: layer i field f -> i * N_LF + f; activations.* ->
 * n_layers * N_LF + a; -1 when the name is not one of ours. */
static long tensor_slot(const char *name, uint32_t n_layers) {
  for (int a = 0; a < N_AF; a++)
    if (strcmp(name, af[a].name) == 0) return (long)n_layers * N_LF + a;
  if (strncmp(name, "layers.", 7) != 0) return -1;
  uint64_t i;
  const char *p;
  if (!parse_uint(name + 7, QAT_MAX_LAYERS, &i, &p) || i >= n_layers || *p != '.')
    return -1;
  for (int f = 0; f < N_LF; f++)
    if (strcmp(p + 1, lf[f].name) == 0) return (long)i * N_LF + f;
  return -1;
}

static const char *meta_str(json_t *meta, const char *key) {
  return json_string_value(json_object_get(meta, key));
}

/* Splits a comma list "a,b,c" into exactly n items (each item copied into
 * its own bounded buffer by the callback). */
typedef bool (*item_fn)(const char *item, size_t len, uint32_t idx, void *arg);
static bool split_list(const char *s, uint32_t n, item_fn fn, void *arg) {
  uint32_t idx = 0;
  for (;;) {
    const char *c = strchr(s, ',');
    size_t len = c ? (size_t)(c - s) : strlen(s);
    if (idx >= n || !fn(s, len, idx, arg)) return false;
    idx++;
    if (!c) break;
    s = c + 1;
  }
  return idx == n;
}

static bool act_item(const char *s, size_t len, uint32_t i, void *arg) {
  qat_act *acts = arg;
  if (len == 4 && strncmp(s, "relu", 4) == 0) acts[i] = QAT_ACT_RELU;
  else if (len == 4 && strncmp(s, "none", 4) == 0) acts[i] = QAT_ACT_NONE;
  else return false;
  return true;
}

static bool bits_item(const char *s, size_t len, uint32_t i, void *arg) {
  int *bits = arg;
  if (len != 1 || s[0] < '2' || s[0] > '8') return false;
  bits[i] = s[0] - '0';
  return true;
}

/* "784-256-10" -> dims, count (2..QAT_MAX_LAYERS + 1 numbers). */
static bool parse_arch(const char *s, uint32_t *dims, uint32_t *count) {
  uint32_t n = 0;
  for (;;) {
    uint64_t v;
    const char *e;
    if (n > QAT_MAX_LAYERS || !parse_uint(s, QAT_MAX_DIM, &v, &e) || v < 1) return false;
    dims[n++] = (uint32_t)v;
    if (*e == '\0') break;
    if (*e != '-') return false;
    s = e + 1;
  }
  if (n < 2) return false;
  *count = n;
  return true;
}

/* ---- tensor entries --------------------------------------------------- */

/* The entry's fields: only dtype, shape and data_offsets, of the right
 * JSON types, and the dtype the slot expects. */
static qat_err entry_fields(const char *name, json_t *v, st_dtype want, json_t **shape,
                            json_t **offs) {
  if (!json_is_object(v))
    return qat__fail(QAT_EJSON, "tensor %s: entry is not a JSON object", name);
  const char *k;
  json_t *x;
  json_object_foreach(v, k, x) {
    if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
      return qat__fail(QAT_EJSON, "tensor %s: unknown field '%s'", name, k);
  }
  const char *dt = json_string_value(json_object_get(v, "dtype"));
  *shape = json_object_get(v, "shape");
  *offs = json_object_get(v, "data_offsets");
  if (!dt || !json_is_array(*shape) || !json_is_array(*offs) || json_array_size(*offs) != 2)
    return qat__fail(QAT_EJSON, "tensor %s: needs dtype (string), shape (array) and "
                    "data_offsets ([begin, end])", name);
  int d = -1;
  for (int i = 0; i < 3; i++)
    if (strcmp(dt, dt_name[i]) == 0) d = i;
  if (d < 0) return qat__fail(QAT_EDTYPE, "tensor %s: dtype '%s' is not I8, I32 or F32",
                             name, dt);
  if ((st_dtype)d != want)
    return qat__fail(QAT_EDTYPE, "tensor %s: dtype %s, expected %s", name, dt,
                    dt_name[want]);
  return QAT_OK;
}

/* The shape into t, and the bytes it needs (overflow-checked). */
static qat_err entry_shape(const char *name, json_t *shape, st_tensor *t, uint64_t *bytes) {
  t->ndim = json_array_size(shape);
  if (t->ndim > ST_MAX_NDIM)
    return qat__fail(QAT_ESHAPE, "tensor %s: %zu dimensions", name, t->ndim);
  uint64_t n = dt_size[t->dt];
  for (size_t i = 0; i < t->ndim; i++) {
    json_t *e = json_array_get(shape, i);
    if (!json_is_integer(e))
      return qat__fail(QAT_EJSON, "tensor %s: shape[%zu] is not an integer", name, i);
    json_int_t s = json_integer_value(e);
    if (s < 0) return qat__fail(QAT_ESHAPE, "tensor %s: shape[%zu] is negative", name, i);
    t->shape[i] = (uint64_t)s;
    /* Overflow-checked product; anything past the data size is wrong anyway. */
    if (t->shape[i] && n > UINT64_MAX / t->shape[i])
      return qat__fail(QAT_ESHAPE, "tensor %s: shape product overflows", name);
    n *= t->shape[i];
  }
  *bytes = n;
  return QAT_OK;
}

/* data_offsets into t: an ascending pair inside the data section, exactly
 * the bytes the shape needs. */
static qat_err entry_offsets(const char *name, json_t *offs, uint64_t bytes, uint64_t dsize,
                             st_tensor *t) {
  for (int i = 0; i < 2; i++)
    if (!json_is_integer(json_array_get(offs, i)))
      return qat__fail(QAT_EJSON, "tensor %s: data_offsets[%d] is not an integer", name, i);
  json_int_t b = json_integer_value(json_array_get(offs, 0));
  json_int_t e = json_integer_value(json_array_get(offs, 1));
  if (b < 0 || e < b)
    return qat__fail(QAT_EOFFSET, "tensor %s: data_offsets [%lld, %lld] are not an "
                    "ascending pair", name, (long long)b, (long long)e);
  if ((uint64_t)e > dsize)
    return qat__fail(QAT_EOFFSET, "tensor %s: data_offsets end %lld is past the %llu-byte "
                    "data section (file truncated?)", name, (long long)e,
                    (unsigned long long)dsize);
  t->begin = (uint64_t)b;
  t->end = (uint64_t)e;
  if (bytes != t->end - t->begin)
    return qat__fail(QAT_ESHAPE, "tensor %s: shape needs %llu bytes, data_offsets give %llu",
                    name, (unsigned long long)bytes,
                    (unsigned long long)(t->end - t->begin));
  return QAT_OK;
}

/* One header entry: fields, shape, offsets, in the order errors are
 * reported. */
static qat_err parse_entry(const char *name, json_t *v, st_dtype want,
                           uint64_t dsize, st_tensor *t) {
  json_t *shape = NULL, *offs = NULL;
  uint64_t bytes = 0;
  qat_err e;
  if ((e = entry_fields(name, v, want, &shape, &offs))) return e;
  t->dt = want;
  if ((e = entry_shape(name, shape, t, &bytes))) return e;
  if ((e = entry_offsets(name, offs, bytes, dsize, t))) return e;
  t->name = name;
  t->present = true;
  return QAT_OK;
}

static int cmp_begin(const void *a, const void *b) {
  const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Tensors must tile the data section: sorted by offset, each begins where
 * the previous ended, the last ends at the section's end. */
static qat_err check_tiling(st_tensor *t, size_t n, uint64_t dsize) {
  st_tensor **s = qat__calloc(n, sizeof *s);
  if (!s) return qat__fail(QAT_ENOMEM, "out of memory checking tensor offsets");
  for (size_t i = 0; i < n; i++) s[i] = &t[i];
  qsort(s, n, sizeof *s, cmp_begin);
  uint64_t at = 0;
  qat_err e = QAT_OK;
  for (size_t i = 0; i < n && !e; i++) {
    if (s[i]->begin < at)
      e = qat__fail(QAT_EOVERLAP, "tensor %s: bytes [%llu, %llu) overlap tensor %s",
                   s[i]->name, (unsigned long long)s[i]->begin,
                   (unsigned long long)s[i]->end, s[i - 1]->name);
    else if (s[i]->begin > at)
      e = qat__fail(QAT_EOVERLAP, "tensor %s: begins at %llu, leaving a gap after %llu",
                   s[i]->name, (unsigned long long)s[i]->begin, (unsigned long long)at);
    at = s[i]->end;
  }
  if (!e && at != dsize)
    e = qat__fail(QAT_EOVERLAP, "data section has %llu bytes after the last tensor (%s)",
                 (unsigned long long)(dsize - at), n ? s[n - 1]->name : "none");
  qat__free(s);
  return e;
}

/* ---- load ------------------------------------------------------------- */

/* Pointer to a tensor's data, or an aligned copy when the file's offset is
 * not aligned for the element type (copies are freed by the caller). */
typedef struct st_views {
  void *copies[QAT_MAX_LAYERS * N_LF + N_AF];
  size_t n;
} st_views;

static const void *view(const uint8_t *data, const st_tensor *t, st_views *v) {
  const uint8_t *p = data + t->begin;
  size_t bytes = (size_t)(t->end - t->begin);
  if ((uintptr_t)p % dt_size[t->dt] == 0) return p;
  void *c = qat__malloc(bytes);
  if (!c) return NULL;
  memcpy(c, p, bytes);
  v->copies[v->n++] = c;
  return c;
}

typedef struct st_load {
  json_t *root, *labels_json;
  st_tensor *t;
  qat_layer_spec *layers;
  const char **meta_keys, **meta_values, **labels;
  st_views views;
  uint8_t *data_owned; /* the data section when read from a descriptor */
} st_load;

/* Where the data section comes from: memory, or a descriptor read only once
 * the header has been checked against the file size. */
typedef struct st_src {
  const uint8_t *data; /* NULL: read dsize bytes from fd */
  uint64_t dsize;
  int fd;
  uint32_t *crc;       /* when set, what is read from fd is folded in */
} st_src;

static void load_free(st_load *L) {
  json_decref(L->root);
  json_decref(L->labels_json);
  qat__free(L->t);
  qat__free(L->layers);
  qat__free((void *)L->meta_keys);
  qat__free((void *)L->meta_values);
  qat__free((void *)L->labels);
  for (size_t i = 0; i < L->views.n; i++) qat__free(L->views.copies[i]);
  qat__free(L->data_owned);
}

static ssize_t read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

/* The data section from the descriptor: exactly dsize bytes, then EOF (one
 * byte more means the file grew while read). */
static qat_err read_data(st_src *src, st_load *L) {
  size_t n = (size_t)src->dsize;
  L->data_owned = qat__malloc(n + 1);
  if (!L->data_owned)
    return qat__fail(QAT_ENOMEM, "out of memory for the %zu-byte data section", n);
  ssize_t got = read_full(src->fd, L->data_owned, n + 1);
  if (got < 0) return qat__fail(QAT_EIO, "reading the data section: %s", strerror(errno));
  if ((size_t)got != n) return qat__fail(QAT_EIO, "file changed size while being read");
  if (src->crc) {
    size_t off = 0;
    while (off < n) {
      uInt chunk = n - off > (1u << 30) ? (1u << 30) : (uInt)(n - off);
      *src->crc = (uint32_t)crc32(*src->crc, L->data_owned + off, chunk);
      off += chunk;
    }
  }
  src->data = L->data_owned;
  return QAT_OK;
}

/* Format 2: "sha256.<tensor>" = 64 lowercase hex digits for every tensor,
 * and for nothing else. Verified before any number is looked at, so a
 * flipped bit anywhere is reported as what it is, naming the tensor. */
static qat_err check_sums(json_t *meta, bool v2, const st_tensor *t, size_t n,
                          uint32_t nl, const uint8_t *data) {
  const size_t plen = sizeof ST_SUM_PREFIX - 1;
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (strncmp(k, ST_SUM_PREFIX, plen) != 0) continue;
    if (!v2)
      return qat__fail(QAT_EMETA, "metadata '%.200s': checksums need format_version 2", k);
    if (tensor_slot(k + plen, nl) < 0)
      return qat__fail(QAT_EMETA, "metadata '%.200s' names no tensor of this model", k);
    const char *h = json_string_value(v);
    bool ok = strlen(h) == 64;
    for (size_t i = 0; ok && i < 64; i++)
      ok = (h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f');
    if (!ok)
      return qat__fail(QAT_EMETA, "metadata '%.200s' is not 64 lowercase hex digits", k);
  }
  if (!v2) return QAT_OK;
  char key[128], hex[65];
  for (size_t i = 0; i < n; i++) {
    snprintf(key, sizeof key, "%s%s", ST_SUM_PREFIX, t[i].name);
    const char *want = json_string_value(json_object_get(meta, key));
    if (!want) return qat__fail(QAT_EMISSING, "metadata key '%s' is missing", key);
    qat__sha256_hex(data + t[i].begin, (size_t)(t[i].end - t[i].begin), hex);
    if (strcmp(hex, want) != 0)
      return qat__fail(QAT_ECHECKSUM, "tensor %s: data SHA-256 %.16s... differs from the "
                      "file's %.16s... (corrupted or edited data)", t[i].name, hex, want);
  }
  return QAT_OK;
}

static qat_err load_meta_list(json_t *meta, const char *key, uint32_t n, item_fn fn,
                              void *arg) {
  const char *s = meta_str(meta, key);
  if (!s) return qat__fail(QAT_EMISSING, "metadata key '%s' is missing", key);
  if (!split_list(s, n, fn, arg))
    return qat__fail(QAT_EMETA, "metadata '%s' = '%.100s': expected %u comma-separated "
                    "items", key, s, n);
  return QAT_OK;
}

static qat_err load_labels(json_t *meta, st_load *L, qat_model_spec *spec) {
  const char *s = meta_str(meta, "labels");
  if (!s) return QAT_OK; /* optional */
  size_t nodes = json_nodes(s, strlen(s));
  if (nodes > 2 * (size_t)QAT_MAX_DIM + 8)
    return qat__fail(QAT_ELIMIT, "metadata 'labels' has %zu JSON separators; at most %d "
                    "labels fit", nodes, QAT_MAX_DIM);
  json_error_t err;
  L->labels_json = json_loads(s, JSON_REJECT_DUPLICATES, &err);
  if (!L->labels_json) {
    /* jansson 2.14 leaves the message empty when its first allocation
     * fails (lex_init), and codes only later failures out_of_memory. */
    if (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0')
      return qat__fail(QAT_ENOMEM, "out of memory parsing metadata 'labels'");
    return qat__fail(QAT_EMETA, "metadata 'labels' is not JSON: %s", err.text);
  }
  if (!json_is_array(L->labels_json))
    return qat__fail(QAT_EMETA, "metadata 'labels' is not a JSON array");
  size_t n = json_array_size(L->labels_json);
  if (n > QAT_MAX_DIM)
    return qat__fail(QAT_ELABELS, "metadata 'labels' has %zu entries", n);
  if (n == 0) return QAT_OK;
  L->labels = qat__calloc(n, sizeof(char *));
  if (!L->labels) return qat__fail(QAT_ENOMEM, "out of memory reading labels");
  for (size_t i = 0; i < n; i++) {
    L->labels[i] = json_string_value(json_array_get(L->labels_json, i));
    if (!L->labels[i])
      return qat__fail(QAT_EMETA, "metadata 'labels'[%zu] is not a string", i);
  }
  spec->n_labels = (uint32_t)n;
  spec->labels = L->labels;
  return QAT_OK;
}

/* hlen from the first 8 bytes, checked against the file size and the cap
 * before anything else is read. */
static qat_err header_len(const uint8_t *b8, uint64_t len, uint64_t *hlen) {
  memcpy(hlen, b8, 8);
  if (*hlen < 2 || *hlen > len - 8 || *hlen > ST_MAX_HEADER)
    return qat__fail(QAT_EHDRSIZE, "header length %llu outside [2, %llu] (file has %llu "
                    "bytes, cap %llu)", (unsigned long long)*hlen,
                    (unsigned long long)(len - 8), (unsigned long long)len,
                    (unsigned long long)ST_MAX_HEADER);
  return QAT_OK;
}

/* What the metadata says about the model's shape (load_meta). */
typedef struct st_meta {
  json_t *meta;
  bool v2;                         /* format 2: tensors carry checksums */
  const char *arch;
  uint32_t dims[QAT_MAX_LAYERS + 1], nd, nl;
  qat_act acts[QAT_MAX_LAYERS];
  int bits[QAT_MAX_LAYERS];
} st_meta;

/* The header text into L->root: bounded in size first, strict JSON. */
static qat_err load_json(const uint8_t *hdr, uint64_t hlen, st_load *L) {
  size_t nodes = json_nodes((const char *)hdr, (size_t)hlen);
  if (nodes > ST_MAX_NODES)
    return qat__fail(QAT_ELIMIT, "JSON header has %zu separators, more than the %d a "
                    "model can need", nodes, ST_MAX_NODES);
  json_error_t jerr;
  L->root = json_loadb((const char *)hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!L->root) {
    if (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')
      return qat__fail(QAT_ENOMEM, "out of memory parsing the JSON header");
    return qat__fail(QAT_EJSON, "JSON header: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);
  }
  if (!json_is_object(L->root)) return qat__fail(QAT_EJSON, "JSON header is not an object");
  return QAT_OK;
}

/* Metadata first: it says how many layers to expect. */
static qat_err load_meta(st_load *L, qat_model_spec *spec, st_meta *M) {
  json_t *meta = json_object_get(L->root, "__metadata__");
  if (!meta) return qat__fail(QAT_EMISSING, "'__metadata__' is missing");
  if (!json_is_object(meta)) return qat__fail(QAT_EMETA, "'__metadata__' is not an object");
  if (json_object_size(meta) > ST_MAX_META)
    return qat__fail(QAT_ELIMIT, "'__metadata__' has %zu keys, more than %d",
                    json_object_size(meta), ST_MAX_META);
  M->meta = meta;
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (!json_is_string(v))
      return qat__fail(QAT_EMETA, "metadata '%s' is not a string", k);
  }
  const char *fmt = meta_str(meta, "format");
  if (!fmt) return qat__fail(QAT_EMISSING, "metadata key 'format' is missing");
  if (strcmp(fmt, "qatserve") != 0)
    return qat__fail(QAT_EMETA, "metadata 'format' = '%.100s', expected 'qatserve'", fmt);
  const char *ver = meta_str(meta, "format_version");
  if (!ver) return qat__fail(QAT_EMISSING, "metadata key 'format_version' is missing");
  if (strcmp(ver, "1") != 0 && strcmp(ver, "2") != 0 && strcmp(ver, "3") != 0)
    return qat__fail(QAT_EVERSION, "metadata 'format_version' = '%.100s'; this build "
                    "reads versions 1 to %d", ver, QAT_FORMAT_VERSION_MAX);
  /* Version 3 is version 2 (checksums) plus the `rounding` key. */
  M->v2 = ver[0] == '2' || ver[0] == '3';
  M->arch = meta_str(meta, "architecture");
  if (!M->arch) return qat__fail(QAT_EMISSING, "metadata key 'architecture' is missing");
  if (!parse_arch(M->arch, M->dims, &M->nd))
    return qat__fail(QAT_EMETA, "metadata 'architecture' = '%.100s': expected 2..%d "
                    "dims in 1..%d joined by '-'", M->arch, QAT_MAX_LAYERS + 1, QAT_MAX_DIM);
  M->nl = M->nd - 1;
  qat_err e;
  if ((e = load_meta_list(meta, "activations", M->nl, act_item, M->acts))) return e;
  if ((e = load_meta_list(meta, "weight_bits", M->nl, bits_item, M->bits))) return e;
  const char *om = meta_str(meta, "output_mode");
  if (!om) return qat__fail(QAT_EMISSING, "metadata key 'output_mode' is missing");
  if (strcmp(om, "dequant_acc") == 0) spec->out_mode = QAT_OUT_DEQUANT_ACC;
  else if (strcmp(om, "requant") == 0) spec->out_mode = QAT_OUT_REQUANT;
  else return qat__fail(QAT_EMETA, "metadata 'output_mode' = '%.100s', expected "
                       "'dequant_acc' or 'requant'", om);
  /* `rounding` needs version 3: an older reader would take it as free-form
   * metadata and round differently. */
  const char *rnd = meta_str(meta, "rounding");
  spec->rounding = QAT_ROUND_PYTORCH;
  if (rnd) {
    if (ver[0] != '3')
      return qat__fail(QAT_EVERSION, "metadata 'rounding' needs format_version 3 (the file "
                      "says %s)", ver);
    if (strcmp(rnd, "pytorch") == 0) spec->rounding = QAT_ROUND_PYTORCH;
    else if (strcmp(rnd, "onnxruntime") == 0) spec->rounding = QAT_ROUND_ORT;
    else if (strcmp(rnd, "onnxruntime-float") == 0) spec->rounding = QAT_ROUND_ORT_FLOAT;
    else return qat__fail(QAT_EMETA, "metadata 'rounding' = '%.100s', expected 'pytorch', "
                         "'onnxruntime' or 'onnxruntime-float'", rnd);
  }
  return load_labels(meta, L, spec);
}

/* Tensor entries: every one known, present, typed, tiling the data. */
static qat_err load_entries(st_load *L, uint32_t nl, uint64_t dsize) {
  const size_t nslots = (size_t)nl * N_LF + N_AF;
  L->t = qat__calloc(nslots, sizeof *L->t);
  if (!L->t) return qat__fail(QAT_ENOMEM, "out of memory reading the header");
  const char *k;
  json_t *v;
  qat_err e;
  json_object_foreach(L->root, k, v) {
    if (strcmp(k, "__metadata__") == 0) continue;
    long s = tensor_slot(k, nl);
    if (s < 0) return qat__fail(QAT_EJSON, "unexpected tensor '%.200s' for a %u-layer "
                               "model", k, nl);
    st_dtype want = (size_t)s < (size_t)nl * N_LF ? lf[s % N_LF].dt : af[s - nl * N_LF].dt;
    if ((e = parse_entry(k, v, want, dsize, &L->t[s]))) return e;
  }
  for (size_t s = 0; s < nslots; s++)
    if (!L->t[s].present) {
      if (s < (size_t)nl * N_LF)
        return qat__fail(QAT_EMISSING, "tensor layers.%zu.%s is missing", s / N_LF,
                        lf[s % N_LF].name);
      return qat__fail(QAT_EMISSING, "tensor %s is missing", af[s - nl * N_LF].name);
    }
  return check_tiling(L->t, nslots, dsize);
}

/* Shapes against the model: weight_q says [out, in]; layers chain; every
 * other tensor agrees; the architecture string agrees. */
static qat_err check_shapes(const st_load *L, const st_meta *M) {
  const uint32_t nl = M->nl;
  for (uint32_t i = 0; i < nl; i++) {
    const st_tensor *w = &L->t[i * N_LF + F_WQ];
    if (w->ndim != 2 || w->shape[0] < 1 || w->shape[0] > QAT_MAX_DIM ||
        w->shape[1] < 1 || w->shape[1] > QAT_MAX_DIM)
      return qat__fail(QAT_ESHAPE, "tensor %s: expected [out, in] with dims in 1..%d",
                      w->name, QAT_MAX_DIM);
    if (i > 0 && w->shape[1] != L->t[(i - 1) * N_LF + F_WQ].shape[0])
      return qat__fail(QAT_ECHAIN, "tensor %s: in dim %llu != layer %u's out dim %llu",
                      w->name, (unsigned long long)w->shape[1], i - 1,
                      (unsigned long long)L->t[(i - 1) * N_LF + F_WQ].shape[0]);
    for (int f = 0; f < N_LF; f++) {
      const st_tensor *t = &L->t[i * N_LF + f];
      bool ok = lf[f].matrix ? t->ndim == 2 && t->shape[0] == w->shape[0] &&
                                   t->shape[1] == w->shape[1]
                             : t->ndim == 1 && t->shape[0] == w->shape[0];
      if (!ok) return qat__fail(QAT_ESHAPE, "tensor %s: shape does not match %s [%llu, %llu]",
                               t->name, w->name, (unsigned long long)w->shape[0],
                               (unsigned long long)w->shape[1]);
    }
  }
  for (int a = 0; a < N_AF; a++) {
    const st_tensor *t = &L->t[(size_t)nl * N_LF + a];
    if (t->ndim != 1 || t->shape[0] != (uint64_t)nl + 1)
      return qat__fail(QAT_ESHAPE, "tensor %s: expected shape [%u]", t->name, nl + 1);
  }
  for (uint32_t i = 0; i < nl; i++) {
    const st_tensor *w = &L->t[i * N_LF + F_WQ];
    if (w->shape[1] != M->dims[i] || w->shape[0] != M->dims[i + 1])
      return qat__fail(QAT_EMETA, "metadata 'architecture' = '%.100s' disagrees with "
                      "tensor %s", M->arch, w->name);
  }
  return QAT_OK;
}

/* The numbers: activation qparams checked, each layer's tensors viewed. */
static qat_err load_layers(const uint8_t *data, st_load *L, const st_meta *M, qat_model_spec *spec,
                           const int32_t **bias_q) {
  const uint32_t nl = M->nl;
  qat_err e;
  const float *as = view(data, &L->t[(size_t)nl * N_LF + A_SCALE], &L->views);
  const int32_t *az = view(data, &L->t[(size_t)nl * N_LF + A_ZP], &L->views);
  const int32_t *aq = view(data, &L->t[(size_t)nl * N_LF + A_QMAX], &L->views);
  if (!as || !az || !aq) return qat__fail(QAT_ENOMEM, "out of memory reading tensors");
  for (uint32_t i = 0; i <= nl; i++) {
    qat_qparams q = {as[i], az[i], 0, aq[i]};
    if ((e = qat__check_act_qparams(&q, "activations", i))) return e;
  }
  spec->input = (qat_qparams){as[0], az[0], 0, aq[0]};
  L->layers = qat__calloc(nl, sizeof *L->layers);
  if (!L->layers) return qat__fail(QAT_ENOMEM, "out of memory reading layers");
  for (uint32_t i = 0; i < nl; i++) {
    qat_layer_spec *ls = &L->layers[i];
    const st_tensor *t = &L->t[i * N_LF];
    ls->out_dim = (uint32_t)t[F_WQ].shape[0];
    ls->in_dim = (uint32_t)t[F_WQ].shape[1];
    ls->act = M->acts[i];
    ls->w_bits = M->bits[i];
    ls->out = (qat_qparams){as[i + 1], az[i + 1], 0, aq[i + 1]};
    ls->wq = view(data, &t[F_WQ], &L->views);
    ls->w_scale = view(data, &t[F_WS], &L->views);
    ls->bias = view(data, &t[F_B], &L->views);
    bias_q[i] = view(data, &t[F_BQ], &L->views);
    ls->w_fp32 = view(data, &t[F_WF], &L->views);
    ls->b_fp32 = view(data, &t[F_BF], &L->views);
    if (!ls->wq || !ls->w_scale || !ls->bias || !bias_q[i] || !ls->w_fp32 || !ls->b_fp32)
      return qat__fail(QAT_ENOMEM, "out of memory reading tensors");
  }
  spec->n_layers = nl;
  spec->layers = L->layers;
  return QAT_OK;
}

/* Free-form metadata: every key the format does not own. */
static qat_err load_free_meta(json_t *meta, st_load *L, qat_model_spec *spec) {
  size_t nm = json_object_size(meta);
  L->meta_keys = qat__calloc(nm ? nm : 1, sizeof(char *));
  L->meta_values = qat__calloc(nm ? nm : 1, sizeof(char *));
  if (!L->meta_keys || !L->meta_values)
    return qat__fail(QAT_ENOMEM, "out of memory reading metadata");
  const char *k;
  json_t *v;
  json_object_foreach(meta, k, v) {
    if (qat__meta_key_reserved(k)) continue;
    L->meta_keys[spec->n_meta] = k;
    L->meta_values[spec->n_meta++] = json_string_value(v);
  }
  spec->meta_keys = L->meta_keys;
  spec->meta_values = L->meta_values;
  return QAT_OK;
}

/* Phases: the JSON header, the metadata, the tensor entries, the data
 * (read only once the header holds up), checksums, shapes, the numbers,
 * free-form metadata; then the model, whose derived integer bias must be the
 * stored one. */
static qat_err load_parse(const uint8_t *hdr, uint64_t hlen, st_src *src, st_load *L,
                          qat_model_spec *spec, qat_model **out) {
  st_meta M = {0};
  qat_err e;
  if ((e = load_json(hdr, hlen, L))) return e;
  if ((e = load_meta(L, spec, &M))) return e;
  const uint32_t nl = M.nl;
  if ((e = load_entries(L, nl, src->dsize))) return e;
  /* Only now is the data section worth reading. */
  if (!src->data && (e = read_data(src, L))) return e;
  const uint8_t *data = src->data;
  if ((e = check_sums(M.meta, M.v2, L->t, (size_t)nl * N_LF + N_AF, nl, data))) return e;
  if ((e = check_shapes(L, &M))) return e;
  const int32_t *bias_q[QAT_MAX_LAYERS];
  if ((e = load_layers(data, L, &M, spec, bias_q))) return e;
  if ((e = load_free_meta(M.meta, L, spec))) return e;

  qat_model *m;
  if ((e = qat_model_create(spec, &m))) return e;
  m->checksummed = M.v2;
  /* The stored integer bias must be the one the float bias derives. */
  for (uint32_t i = 0; i < nl; i++)
    for (uint32_t c = 0; c < m->layers[i].out_dim; c++)
      if (bias_q[i][c] != m->layers[i].bias_q[c]) {
        int32_t got = bias_q[i][c], want = m->layers[i].bias_q[c];
        qat_model_destroy(m);
        return qat__fail(QAT_EBIAS, "tensor layers.%u.bias_q[%u] = %d, but layers.%u.bias "
                        "derives %d", i, c, got, i, want);
      }
  *out = m;
  return QAT_OK;
}

qat_err qat_model_load_mem(const void *buf, size_t len, qat_model **out) {
  if ((!buf && len) || !out) return qat__fail(QAT_EINVAL, "qat_model_load_mem: NULL argument");
  if (len < 8) return qat__fail(QAT_ETRUNC, "file has %zu bytes, less than the 8-byte "
                               "header length", len);
  uint64_t hlen;
  qat_err e = header_len(buf, len, &hlen);
  if (e) return e;
  st_load L;
  memset(&L, 0, sizeof L);
  qat_model_spec spec;
  memset(&spec, 0, sizeof spec);
  st_src src = {(const uint8_t *)buf + 8 + hlen, len - 8 - hlen, -1, NULL};
  e = load_parse((const uint8_t *)buf + 8, hlen, &src, &L, &spec, out);
  load_free(&L);
  return e;
}

/* Opens without blocking (a FIFO or device swapped in after the caller's
 * stat() must not hang the caller in open()), then decides on the open
 * descriptor: regular file, size within the cap, header length within the
 * size and the cap, header parsed and checked, and only then the data. */
static qat_err load_fd(int fd, qat_model **out, qat_file_info *info) {
  struct stat st;
  if (fstat(fd, &st) != 0) return qat__fail(QAT_EIO, "fstat: %s", strerror(errno));
  if (info) {
    info->dev = (uint64_t)st.st_dev;
    info->ino = (uint64_t)st.st_ino;
    info->size = (uint64_t)st.st_size;
    info->mtime_sec = (int64_t)st.st_mtim.tv_sec;
    info->mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
    info->stat_ok = true;
  }
  if (!S_ISREG(st.st_mode)) return qat__fail(QAT_ENOTREG, "not a regular file");
  /* Back to blocking reads: a regular file never blocks, and this way the
   * reads below need no EAGAIN handling. */
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  const uint64_t len = (uint64_t)st.st_size;
  if (len > ST_MAX_FILE)
    return qat__fail(QAT_ERANGE, "%llu bytes, more than the 1 GiB cap",
                    (unsigned long long)len);
  if (len < 8) return qat__fail(QAT_ETRUNC, "file has %llu bytes, less than the 8-byte "
                               "header length", (unsigned long long)len);
  uint8_t b8[8];
  ssize_t got = read_full(fd, b8, 8);
  if (got != 8) return qat__fail(QAT_EIO, "reading the header length: %s",
                                got < 0 ? strerror(errno) : "file shrank");
  uint64_t hlen;
  qat_err e = header_len(b8, len, &hlen);
  if (e) return e;
  uint8_t *hdr = qat__malloc((size_t)hlen);
  if (!hdr) return qat__fail(QAT_ENOMEM, "out of memory for a %llu-byte header",
                            (unsigned long long)hlen);
  got = read_full(fd, hdr, (size_t)hlen);
  if (got != (ssize_t)hlen) {
    int err = errno;
    qat__free(hdr);
    return qat__fail(QAT_EIO, "reading the header: %s", got < 0 ? strerror(err) : "file shrank");
  }
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  crc = (uint32_t)crc32(crc, b8, 8);
  crc = (uint32_t)crc32(crc, hdr, (uInt)hlen); /* hlen <= 16 MiB */
  st_load L;
  memset(&L, 0, sizeof L);
  qat_model_spec spec;
  memset(&spec, 0, sizeof spec);
  st_src src = {NULL, len - 8 - hlen, fd, &crc};
  e = load_parse(hdr, hlen, &src, &L, &spec, out);
  load_free(&L);
  qat__free(hdr);
  if (!e && info) info->crc32 = crc;
  return e;
}

qat_err qat_model_load_file(const char *path, qat_model **out, qat_file_info *info) {
  if (!path || !out) return qat__fail(QAT_EINVAL, "qat_model_load: NULL argument");
  if (info) memset(info, 0, sizeof *info);
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return qat__fail(QAT_EIO, "%s: %s", path, strerror(errno));
  qat_err e = load_fd(fd, out, info);
  close(fd);
  if (e) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    return qat__fail(e, "%s: %s", path, msg);
  }
  return QAT_OK;
}

qat_err qat_model_load(const char *path, qat_model **out) {
  return qat_model_load_file(path, out, NULL);
}

/* ---- save ------------------------------------------------------------- */

typedef struct st_out {
  const void *data;
  size_t bytes;
} st_out;

/* Fixed tensor order: every 4-byte tensor first (layers in order, then the
 * activations), the I8 weights last, so with an 8-byte-padded header every
 * F32/I32 tensor is 4-byte aligned in the file. */
static bool add_tensor(json_t *root, json_t *meta, const char *name, st_dtype dt,
                       uint64_t d0, uint64_t d1, int ndim, uint64_t *off, const void *p,
                       st_out *outs, size_t *no) {
  uint64_t bytes = d0 * (ndim == 2 ? d1 : 1) * dt_size[dt];
  char key[128], hex[65];
  snprintf(key, sizeof key, "%s%s", ST_SUM_PREFIX, name);
  qat__sha256_hex(p, (size_t)bytes, hex);
  if (json_object_set_new(meta, key, json_string(hex)) != 0) return false;
  json_t *shape = ndim == 2 ? json_pack("[II]", (json_int_t)d0, (json_int_t)d1)
                            : json_pack("[I]", (json_int_t)d0);
  json_t *e = json_pack("{s:s, s:o, s:[II]}", "dtype", dt_name[dt], "shape", shape,
                        "data_offsets", (json_int_t)*off, (json_int_t)(*off + bytes));
  if (!e || json_object_set_new(root, name, e) != 0) return false;
  outs[*no] = (st_out){p, (size_t)bytes};
  (*no)++;
  *off += bytes;
  return true;
}

static bool write_full(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

static bool append(char *dst, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > cap) return false;
  memcpy(dst + *len, s, n + 1);
  *len += n;
  return true;
}

static json_t *build_meta(const qat_model *m) {
  json_t *meta = json_object();
  if (!meta) return NULL;
  /* Longest strings: 65 dims of 5 digits + '-', 64 * "relu,". */
  char arch[QAT_MAX_LAYERS * 8 + 16], acts[QAT_MAX_LAYERS * 8], bits[QAT_MAX_LAYERS * 4];
  size_t la = 0, lc = 0, lb = 0;
  arch[0] = acts[0] = bits[0] = '\0';
  char num[16];
  snprintf(num, sizeof num, "%u", m->layers[0].in_dim);
  bool ok = append(arch, sizeof arch, &la, num);
  for (uint32_t i = 0; i < m->n_layers; i++) {
    snprintf(num, sizeof num, "-%u", m->layers[i].out_dim);
    ok &= append(arch, sizeof arch, &la, num);
    ok &= append(acts, sizeof acts, &lc, i ? "," : "");
    ok &= append(acts, sizeof acts, &lc, m->layers[i].act == QAT_ACT_RELU ? "relu" : "none");
    snprintf(num, sizeof num, "%s%d", i ? "," : "", m->layers[i].w_bits);
    ok &= append(bits, sizeof bits, &lb, num);
  }
  ok = ok && json_object_set_new(meta, "format", json_string("qatserve")) == 0;
  /* Version 3 only where the rounding key is needed. */
  snprintf(num, sizeof num, "%d", m->rounding == QAT_ROUND_PYTORCH ? QAT_FORMAT_VERSION : 3);
  ok = ok && json_object_set_new(meta, "format_version", json_string(num)) == 0;
  if (m->rounding != QAT_ROUND_PYTORCH)
    ok = ok && json_object_set_new(meta, "rounding",
                                   json_string(qat_rounding_name(m->rounding))) == 0;
  ok = ok && json_object_set_new(meta, "architecture", json_string(arch)) == 0;
  ok = ok && json_object_set_new(meta, "activations", json_string(acts)) == 0;
  ok = ok && json_object_set_new(meta, "weight_bits", json_string(bits)) == 0;
  ok = ok && json_object_set_new(meta, "output_mode",
                                 json_string(m->out_mode == QAT_OUT_REQUANT ? "requant"
                                                                           : "dequant_acc")) == 0;
  if (ok && m->n_labels) {
    json_t *arr = json_array();
    for (uint32_t i = 0; ok && arr && i < m->n_labels; i++)
      ok = json_array_append_new(arr, json_string(m->labels[i])) == 0;
    char *s = ok && arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    ok = s && json_object_set_new(meta, "labels", json_string(s)) == 0;
    free(s); /* jansson's allocator: malloc */
  }
  for (uint32_t i = 0; ok && i < m->n_meta; i++)
    ok = json_object_set_new(meta, m->meta_keys[i], json_string(m->meta_values[i])) == 0;
  if (!ok) {
    json_decref(meta);
    return NULL;
  }
  return meta;
}

/* The whole file as (header, list of tensor byte ranges). */
static qat_err build_file(const qat_model *m, char **header, size_t *hlen,
                          st_out *outs, size_t *no, float *as, int32_t *az,
                          int32_t *aq) {
  json_t *root = json_object();
  json_t *meta = build_meta(m);
  bool ok = root && meta && json_object_set_new(root, "__metadata__", meta) == 0;
  if (!ok && !root) json_decref(meta);
  uint64_t off = 0;
  char name[64];
  for (uint32_t i = 0; ok && i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    const uint64_t N = L->out_dim, K = L->in_dim;
#define T(f, d0, d1, nd, p)                                                     \
  (snprintf(name, sizeof name, "layers.%u.%s", i, lf[f].name),                  \
   add_tensor(root, meta, name, lf[f].dt, d0, d1, nd, &off, p, outs, no))
    ok = T(F_WS, N, 0, 1, L->w_scale) && T(F_B, N, 0, 1, L->bias) &&
         T(F_BQ, N, 0, 1, L->bias_q) && T(F_WF, N, K, 2, L->w_fp32) &&
         T(F_BF, N, 0, 1, L->b_fp32);
  }
  as[0] = m->input.scale;
  az[0] = m->input.zero_point;
  aq[0] = m->input.qmax;
  for (uint32_t i = 0; i < m->n_layers; i++) {
    as[i + 1] = m->layers[i].out.scale;
    az[i + 1] = m->layers[i].out.zero_point;
    aq[i + 1] = m->layers[i].out.qmax;
  }
  const uint64_t na = m->n_layers + 1;
  ok = ok && add_tensor(root, meta, af[A_SCALE].name, DT_F32, na, 0, 1, &off, as, outs, no) &&
       add_tensor(root, meta, af[A_ZP].name, DT_I32, na, 0, 1, &off, az, outs, no) &&
       add_tensor(root, meta, af[A_QMAX].name, DT_I32, na, 0, 1, &off, aq, outs, no);
  for (uint32_t i = 0; ok && i < m->n_layers; i++) {
    const qat_mlayer *L = &m->layers[i];
    ok = T(F_WQ, L->out_dim, L->in_dim, 2, L->wq);
  }
#undef T
  char *js = ok ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(root);
  if (!js) return qat__fail(QAT_ENOMEM, "out of memory building the JSON header");
  /* Pad with spaces (as the safetensors library does) so the data section
   * starts 8-byte aligned. */
  size_t n = strlen(js), padded = (n + 7) & ~(size_t)7;
  char *h = qat__malloc(padded);
  if (!h) {
    free(js);
    return qat__fail(QAT_ENOMEM, "out of memory building the JSON header");
  }
  memcpy(h, js, n);
  memset(h + n, ' ', padded - n);
  free(js);
  *header = h;
  *hlen = padded;
  return QAT_OK;
}

static void fsync_dir_of(const char *path) {
  /* Best effort: make the rename itself durable. */
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) < sizeof dir)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  else return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

qat_err qat_model_save(const qat_model *m, const char *path) {
  if (!m || !path) return qat__fail(QAT_EINVAL, "qat_model_save: NULL argument");
  st_out outs[QAT_MAX_LAYERS * N_LF + N_AF];
  size_t no = 0, hlen = 0;
  float as[QAT_MAX_LAYERS + 1];
  int32_t az[QAT_MAX_LAYERS + 1], aq[QAT_MAX_LAYERS + 1];
  char *header = NULL;
  qat_err e = build_file(m, &header, &hlen, outs, &no, as, az, aq);
  if (e) return e;

  size_t plen = strlen(path);
  char *tmp = qat__malloc(plen + 12);
  if (!tmp) {
    qat__free(header);
    return qat__fail(QAT_ENOMEM, "out of memory saving %s", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    e = qat__fail(QAT_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    goto out;
  }
  uint64_t h64 = hlen;
  bool ok = fchmod(fd, 0644) == 0 && write_full(fd, &h64, 8) &&
            write_full(fd, header, hlen);
  for (size_t i = 0; ok && i < no; i++) ok = write_full(fd, outs[i].data, outs[i].bytes);
  ok = ok && fsync(fd) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(tmp);
    e = qat__fail(QAT_EIO, "%s: write failed: %s", path, strerror(err));
    goto out;
  }
  fsync_dir_of(path);
out:
  qat__free(tmp);
  qat__free(header);
  return e;
}
