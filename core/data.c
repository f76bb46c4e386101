/* data.c - labelled data sets from IDX (the MNIST format, plain or gzip)
 * and CSV files.
 *
 * Both readers work on a whole file in memory: the file entry points read
 * the bytes and hand them to the _mem entry points, which the fuzzer calls
 * directly. Nothing read from a file sizes an allocation before it has been
 * checked against the bytes actually present (an IDX header claiming 2^32
 * images in a 100-byte file is refused as truncated, not allocated). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "qat_train.h"
#include "internal.h"

void qat_dataset_destroy(qat_dataset *d) {
  if (!d) return;
  qat__free(d->x);
  qat__free(d->y);
  qat__free(d);
}

static qat_err dataset_alloc(size_t n, uint32_t dim, qat_dataset **out) {
  qat_dataset *d = qat__calloc(1, sizeof *d);
  if (!d) return qat__fail(QAT_ENOMEM, "data set header");
  d->n = n;
  d->dim = dim;
  d->x = qat__calloc(n, (size_t)dim * sizeof(float));
  d->y = qat__calloc(n, sizeof(uint32_t));
  if (!d->x || !d->y) {
    qat_dataset_destroy(d);
    return qat__fail(QAT_ENOMEM, "data set of %zu x %u", n, dim);
  }
  *out = d;
  return QAT_OK;
}

qat_err qat_dataset_slice(const qat_dataset *d, size_t first, size_t count,
                          qat_dataset **out) {
  if (!d || !out || first > d->n || count > d->n - first || count == 0)
    return qat__fail(QAT_EINVAL, "slice [%zu, +%zu) of %zu rows", first, count,
                    d ? d->n : 0);
  qat_dataset *s;
  qat_err e = dataset_alloc(count, d->dim, &s);
  if (e) return e;
  s->n_classes = d->n_classes;
  memcpy(s->x, d->x + first * d->dim, count * d->dim * sizeof(float));
  memcpy(s->y, d->y + first, count * sizeof(uint32_t));
  *out = s;
  return QAT_OK;
}

/* ---- whole files ------------------------------------------------------- */

static qat_err read_file(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return qat__fail(QAT_EIO, "%s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = qat__malloc(cap);
  if (!b) {
    fclose(f);
    return qat__fail(QAT_ENOMEM, "%s: read buffer", path);
  }
  for (;;) {
    if (n == cap) {
      if (cap >= QAT_DATA_MAX_BYTES) {
        qat__free(b);
        fclose(f);
        return qat__fail(QAT_EDATA, "%s: larger than %zu bytes", path,
                        (size_t)QAT_DATA_MAX_BYTES);
      }
      uint8_t *nb = qat__malloc(cap * 2);
      if (!nb) {
        qat__free(b);
        fclose(f);
        return qat__fail(QAT_ENOMEM, "%s: read buffer", path);
      }
      memcpy(nb, b, n);
      qat__free(b);
      b = nb;
      cap *= 2;
    }
    size_t got = fread(b + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    qat__free(b);
    return qat__fail(QAT_EIO, "%s: read error", path);
  }
  *buf = b;
  *len = n;
  return QAT_OK;
}

/* Inflates a gzip member into a new buffer, capped at QAT_DATA_MAX_BYTES. */
static qat_err gunzip(const uint8_t *in, size_t in_len, const char *what,
                      uint8_t **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    return qat__fail(QAT_ENOMEM, "%s: zlib init", what);
  size_t cap = in_len * 4 + 1024, n = 0;
  if (cap > QAT_DATA_MAX_BYTES) cap = QAT_DATA_MAX_BYTES;
  uint8_t *b = qat__malloc(cap);
  qat_err err = QAT_OK;
  if (!b) {
    err = qat__fail(QAT_ENOMEM, "%s: inflate buffer", what);
    goto done;
  }
  zs.next_in = (Bytef *)in; /* zlib's API is not const-correct */
  size_t in_left = in_len;
  for (;;) {
    if (n == cap) {
      if (cap >= QAT_DATA_MAX_BYTES) {
        err = qat__fail(QAT_EDATA, "%s: inflates to more than %zu bytes", what,
                       (size_t)QAT_DATA_MAX_BYTES);
        goto done;
      }
      size_t ncap = cap * 2 > QAT_DATA_MAX_BYTES ? QAT_DATA_MAX_BYTES : cap * 2;
      uint8_t *nb = qat__malloc(ncap);
      if (!nb) {
        err = qat__fail(QAT_ENOMEM, "%s: inflate buffer", what);
        goto done;
      }
      memcpy(nb, b, n);
      qat__free(b);
      b = nb;
      cap = ncap;
    }
    /* avail_in/avail_out are uInt: feed at most 1 GiB at a time. */
    uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
    uInt chunk_out = cap - n > (1u << 30) ? (1u << 30) : (uInt)(cap - n);
    zs.avail_in = chunk_in;
    zs.next_out = b + n;
    zs.avail_out = chunk_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= chunk_in - zs.avail_in;
    n += chunk_out - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (in_left != 0)
        err = qat__fail(QAT_EDATA, "%s: %zu bytes after the gzip stream", what, in_left);
      break;
    }
    if (rc == Z_BUF_ERROR && in_left == 0) {
      err = qat__fail(QAT_ETRUNC, "%s: gzip stream ends early", what);
      goto done;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      err = qat__fail(QAT_EDATA, "%s: bad gzip data (%s)", what,
                     zs.msg ? zs.msg : "inflate failed");
      goto done;
    }
  }
done:
  inflateEnd(&zs);
  if (err) {
    qat__free(b);
    return err;
  }
  *out = b;
  *out_len = n;
  return QAT_OK;
}

/* ---- IDX --------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct idx_view {
  const uint8_t *data;
  uint32_t count;    /* first dimension */
  uint32_t row;      /* product of the others (1 for labels) */
} idx_view;

/* Parses an IDX header of unsigned bytes; want_dims 1 = labels, 0 = >= 2. */
static qat_err idx_parse(const uint8_t *b, size_t len, int want_dims, const char *what,
                         idx_view *v) {
  if (len < 4) return qat__fail(QAT_ETRUNC, "%s: %zu bytes, no IDX magic", what, len);
  if (b[0] != 0 || b[1] != 0 || b[2] != 0x08)
    return qat__fail(QAT_EDATA, "%s: wrong magic %02x%02x%02x%02x (want 000008xx, "
                    "unsigned-byte IDX)", what, b[0], b[1], b[2], b[3]);
  unsigned nd = b[3];
  if (want_dims == 1 ? nd != 1 : (nd < 2 || nd > 4))
    return qat__fail(QAT_EDATA, "%s: wrong magic 0x%08x: %u dimensions, want %s", what,
                    be32(b), nd, want_dims == 1 ? "1 (labels)" : "2..4 (images)");
  size_t hdr = 4 + 4 * (size_t)nd;
  if (len < hdr) return qat__fail(QAT_ETRUNC, "%s: header truncated", what);
  uint64_t row = 1;
  for (unsigned i = 1; i < nd; i++) {
    uint32_t d = be32(b + 4 + 4 * i);
    if (d == 0) return qat__fail(QAT_EDATA, "%s: dimension %u is 0", what, i);
    row *= d;
    if (row > QAT_MAX_DIM)
      return qat__fail(QAT_EDATA, "%s: %llu values per sample exceed %d", what,
                      (unsigned long long)row, QAT_MAX_DIM);
  }
  uint32_t count = be32(b + 4);
  if (count == 0) return qat__fail(QAT_EDATA, "%s: no samples", what);
  uint64_t need = (uint64_t)count * row;
  uint64_t have = len - hdr;
  if (have < need)
    return qat__fail(QAT_ETRUNC, "%s: truncated: header says %u x %llu bytes, %llu present",
                    what, count, (unsigned long long)row, (unsigned long long)have);
  if (have > need)
    return qat__fail(QAT_EDATA, "%s: %llu bytes after the last sample", what,
                    (unsigned long long)(have - need));
  v->data = b + hdr;
  v->count = count;
  v->row = (uint32_t)row;
  return QAT_OK;
}

/* Gives the raw IDX bytes, inflating if the buffer starts with gzip magic. */
static qat_err maybe_gunzip(const void *buf, size_t len, const char *what,
                            const uint8_t **raw, size_t *raw_len, uint8_t **owned) {
  const uint8_t *b = buf;
  *owned = NULL;
  if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
    qat_err e = gunzip(b, len, what, owned, raw_len);
    if (e) return e;
    *raw = *owned;
    return QAT_OK;
  }
  *raw = b;
  *raw_len = len;
  return QAT_OK;
}

qat_err qat_dataset_load_idx_mem(const void *images, size_t images_len, const void *labels,
                                 size_t labels_len, uint32_t n_classes,
                                 qat_dataset **out) {
  if (!out || (!images && images_len) || (!labels && labels_len))
    return qat__fail(QAT_EINVAL, "qat_dataset_load_idx_mem: NULL argument");
  if (n_classes > 256)
    return qat__fail(QAT_EINVAL, "n_classes %u > 256 for byte labels", n_classes);
  const uint8_t *ri, *rl;
  size_t li, ll;
  uint8_t *oi = NULL, *ol = NULL;
  qat_dataset *d = NULL;
  qat_err e = maybe_gunzip(images, images_len, "images", &ri, &li, &oi);
  if (e) goto done;
  e = maybe_gunzip(labels, labels_len, "labels", &rl, &ll, &ol);
  if (e) goto done;
  idx_view vi, vl;
  if ((e = idx_parse(ri, li, 0, "images", &vi))) goto done;
  if ((e = idx_parse(rl, ll, 1, "labels", &vl))) goto done;
  if (vi.count != vl.count) {
    e = qat__fail(QAT_EDIM, "%u images but %u labels", vi.count, vl.count);
    goto done;
  }
  uint32_t maxl = 0;
  for (uint32_t i = 0; i < vl.count; i++) {
    if (n_classes && vl.data[i] >= n_classes) {
      e = qat__fail(QAT_ERANGE, "label %u of sample %u outside 0..%u", vl.data[i], i,
                   n_classes - 1);
      goto done;
    }
    if (vl.data[i] > maxl) maxl = vl.data[i];
  }
  if ((e = dataset_alloc(vi.count, vi.row, &d))) goto done;
  d->n_classes = n_classes ? n_classes : maxl + 1;
  size_t total = (size_t)vi.count * vi.row;
  for (size_t i = 0; i < total; i++) d->x[i] = (float)vi.data[i] / 255.0f;
  for (uint32_t i = 0; i < vl.count; i++) d->y[i] = vl.data[i];
  *out = d;
done:
  qat__free(oi);
  qat__free(ol);
  return e;
}

qat_err qat_dataset_load_idx(const char *images_path, const char *labels_path,
                             uint32_t n_classes, qat_dataset **out) {
  if (!images_path || !labels_path || !out)
    return qat__fail(QAT_EINVAL, "qat_dataset_load_idx: NULL argument");
  uint8_t *bi = NULL, *bl = NULL;
  size_t li = 0, ll = 0;
  qat_err e = read_file(images_path, &bi, &li);
  if (!e) e = read_file(labels_path, &bl, &ll);
  if (!e) {
    e = qat_dataset_load_idx_mem(bi, li, bl, ll, n_classes, out);
    /* Name the file in the message, keeping the reader's detail. */
    if (e) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", qat_errmsg());
      bool lab = strncmp(msg, "labels", 6) == 0;
      qat__fail(e, "%s (%s)", msg, lab ? labels_path : images_path);
    }
  }
  qat__free(bi);
  qat__free(bl);
  return e;
}

/* ---- CSV --------------------------------------------------------------- */

typedef struct csv_cursor {
  const char *p, *end;
  size_t line;
} csv_cursor;

/* Parses one field [s, e) as a finite decimal number. */
static bool parse_number(const char *s, const char *e, double *v) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
  size_t n = (size_t)(e - s);
  if (n == 0 || n >= 64) return false;
  char tmp[64];
  memcpy(tmp, s, n);
  tmp[n] = 0;
  /* Only digits, sign, point and exponent: strtod alone would also take
   * "nan", "inf" and hex floats. */
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789+-.eE", tmp[i])) return false;
  char *endp;
  errno = 0;
  double d = strtod(tmp, &endp);
  if (endp != tmp + n || errno == ERANGE || !isfinite(d)) return false;
  *v = d;
  return true;
}

/* The next line [*ls, *le) without its line ending; false at the end. */
static bool next_line(csv_cursor *c, const char **ls, const char **le) {
  if (c->p >= c->end) return false;
  const char *s = c->p, *nl = memchr(s, '\n', (size_t)(c->end - s));
  const char *e = nl ? nl : c->end;
  c->p = nl ? nl + 1 : c->end;
  c->line++;
  if (e > s && e[-1] == '\r') e--;
  *ls = s;
  *le = e;
  return true;
}

static bool blank(const char *s, const char *e) {
  for (; s < e; s++)
    if (*s != ' ' && *s != '\t') return false;
  return true;
}

static size_t count_fields(const char *s, const char *e) {
  size_t n = 1;
  for (; s < e; s++) n += *s == ',';
  return n;
}

static bool all_numbers(const char *s, const char *e) {
  while (s <= e) {
    const char *c = memchr(s, ',', (size_t)(e - s));
    const char *fe = c ? c : e;
    double v;
    if (!parse_number(s, fe, &v)) return false;
    s = fe + 1;
  }
  return true;
}

qat_err qat_dataset_load_csv_mem(const char *buf, size_t len, const qat_csv_opts *o,
                                 qat_dataset **out) {
  if (!o || !out || (!buf && len))
    return qat__fail(QAT_EINVAL, "qat_dataset_load_csv_mem: NULL argument");
  if (!(o->divisor > 0.0f) || !isfinite(o->divisor))
    return qat__fail(QAT_EINVAL, "CSV divisor %g not finite and positive", o->divisor);
  if (o->n_classes > QAT_DATA_MAX_CLASSES)
    return qat__fail(QAT_EINVAL, "n_classes %u > %d", o->n_classes, QAT_DATA_MAX_CLASSES);
  if (len > QAT_DATA_MAX_BYTES)
    return qat__fail(QAT_EDATA, "CSV larger than %zu bytes", (size_t)QAT_DATA_MAX_BYTES);
  /* Pass 1: the first data line fixes the column count; count the rows. */
  csv_cursor c = {buf, buf + len, 0};
  const char *ls, *le;
  size_t cols = 0, rows = 0, first_data_line = 0;
  while (next_line(&c, &ls, &le)) {
    if (blank(ls, le)) continue;
    if (cols == 0) {
      if (first_data_line == 0 && c.line == 1 && !all_numbers(ls, le)) {
        first_data_line = 2; /* a header: skip it */
        continue;
      }
      cols = count_fields(ls, le);
    }
    rows++;
  }
  if (rows == 0) return qat__fail(QAT_EDATA, "CSV has no data rows");
  if (cols < 2) return qat__fail(QAT_EDATA, "CSV has %zu column(s); want a label and features", cols);
  if (cols - 1 > QAT_MAX_DIM)
    return qat__fail(QAT_EDATA, "CSV has %zu features, more than %d", cols - 1, QAT_MAX_DIM);
  if (o->label_col >= cols)
    return qat__fail(QAT_EINVAL, "label column %u but only %zu columns", o->label_col, cols);
  qat_dataset *d;
  qat_err e = dataset_alloc(rows, (uint32_t)(cols - 1), &d);
  if (e) return e;
  /* Pass 2: parse. */
  c = (csv_cursor){buf, buf + len, 0};
  size_t r = 0;
  uint32_t maxl = 0;
  uint32_t limit = o->n_classes ? o->n_classes : QAT_DATA_MAX_CLASSES;
  while (next_line(&c, &ls, &le)) {
    if (blank(ls, le) || (first_data_line && c.line == 1)) continue;
    size_t nf = count_fields(ls, le);
    if (nf != cols) {
      e = qat__fail(QAT_EDIM, "CSV line %zu: %zu fields, the first row has %zu", c.line, nf,
                   cols);
      goto fail;
    }
    const char *s = ls;
    float *xr = d->x + r * d->dim;
    for (size_t col = 0, fcol = 0; col < cols; col++) {
      const char *cm = memchr(s, ',', (size_t)(le - s));
      const char *fe = cm ? cm : le;
      double v;
      if (!parse_number(s, fe, &v)) {
        int flen = (int)(fe - s > 32 ? 32 : fe - s);
        e = qat__fail(QAT_EDATA, "CSV line %zu column %zu: bad number '%.*s'", c.line,
                     col + 1, flen, s);
        goto fail;
      }
      if (col == o->label_col) {
        if (v != floor(v) || v < 0 || v >= (double)limit) {
          e = qat__fail(QAT_ERANGE, "CSV line %zu: label %g is not an integer in 0..%u",
                       c.line, v, limit - 1);
          goto fail;
        }
        d->y[r] = (uint32_t)v;
        if (d->y[r] > maxl) maxl = d->y[r];
      } else {
        float f = (float)(v / (double)o->divisor);
        if (!isfinite(f)) {
          e = qat__fail(QAT_EDATA, "CSV line %zu column %zu: value out of float range",
                       c.line, col + 1);
          goto fail;
        }
        xr[fcol++] = f;
      }
      s = fe + 1;
    }
    r++;
  }
  d->n_classes = o->n_classes ? o->n_classes : maxl + 1;
  *out = d;
  return QAT_OK;
fail:
  qat_dataset_destroy(d);
  return e;
}

qat_err qat_dataset_load_csv(const char *path, const qat_csv_opts *o, qat_dataset **out) {
  if (!path) return qat__fail(QAT_EINVAL, "qat_dataset_load_csv: NULL path");
  uint8_t *b;
  size_t n;
  qat_err e = read_file(path, &b, &n);
  if (e) return e;
  /* A gzip-compressed CSV is inflated first. */
  const uint8_t *raw;
  size_t raw_len;
  uint8_t *owned = NULL;
  e = maybe_gunzip(b, n, path, &raw, &raw_len, &owned);
  if (!e) e = qat_dataset_load_csv_mem((const char *)raw, raw_len, o, out);
  if (e) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    qat__fail(e, "%s: %s", path, msg);
  }
  qat__free(owned);
  qat__free(b);
  return e;
}
