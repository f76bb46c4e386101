/* grpc_frame.c - gRPC message framing, timeouts, status names, grpc-message. */
#include "api/grpc_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *qs_gcode_name(qs_gcode c) {
  static const char *const names[QS_G_NCODES] = {
      "OK",        "CANCELLED",          "UNKNOWN",          "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",     "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",     "UNIMPLEMENTED",    "INTERNAL",
      "UNAVAILABLE", "DATA_LOSS",        "UNAUTHENTICATED"};
  return (unsigned)c < QS_G_NCODES ? names[c] : "UNKNOWN";
}

void qs_gframe_init(qs_gframe *f, size_t max) {
  memset(f, 0, sizeof *f);
  f->max = max;
}

void qs_gframe_free(qs_gframe *f) {
  free(f->msg);
  f->msg = NULL;
}

static qs_gcode fail(qs_gframe *f, qs_gcode c, const char *msg) {
  f->err = c;
  snprintf(f->errmsg, sizeof f->errmsg, "%s", msg);
  qs_gframe_free(f);
  return c;
}

qs_gcode qs_gframe_feed(qs_gframe *f, const uint8_t *p, size_t n) {
  while (n && f->err == QS_G_OK) {
    if (f->nmsg) return fail(f, QS_G_INVALID_ARGUMENT, "more than one request message in a unary call");
    if (f->hlen < 5) {
      size_t k = 5 - f->hlen < n ? 5 - f->hlen : n;
      memcpy(f->hdr + f->hlen, p, k);
      f->hlen += k, p += k, n -= k;
      if (f->hlen < 5) break;
      if (f->hdr[0] & 1) return fail(f, QS_G_UNIMPLEMENTED, "compressed messages are not supported (send grpc-encoding identity)");
      if (f->hdr[0] != 0) return fail(f, QS_G_INVALID_ARGUMENT, "bad message flags");
      f->len = (size_t)f->hdr[1] << 24 | (size_t)f->hdr[2] << 16 | (size_t)f->hdr[3] << 8 | f->hdr[4];
      if (f->len > f->max) {
        /* Refused from the prefix alone: nothing of it is buffered. */
        snprintf(f->errmsg, sizeof f->errmsg, "message of %zu bytes is larger than the limit of %zu (--max-body)",
                 f->len, f->max);
        f->err = QS_G_RESOURCE_EXHAUSTED;
        return f->err;
      }
      f->got = 0;
      if (f->reserve && !f->reserve(f->ctx, f->len))
        return fail(f, QS_G_RESOURCE_EXHAUSTED, "server busy: too many request bytes in flight, retry");
      f->msg = malloc(f->len ? f->len : 1);
      if (!f->msg) return fail(f, QS_G_RESOURCE_EXHAUSTED, "out of memory");
    }
    size_t k = f->len - f->got < n ? f->len - f->got : n;
    memcpy(f->msg + f->got, p, k);
    f->got += k, p += k, n -= k;
    if (f->got == f->len) f->nmsg++; /* any byte after this is a second message */
  }
  return f->err;
}

qs_gcode qs_gframe_finish(qs_gframe *f, const uint8_t **msg, size_t *len) {
  if (f->err != QS_G_OK) return f->err;
  if (f->nmsg != 1 || f->hlen != 5 || f->got != f->len)
    return fail(f, QS_G_INVALID_ARGUMENT, f->nmsg == 0 && f->hlen == 0 ? "no request message" : "request message cut off");
  *msg = f->msg;
  *len = f->len;
  return QS_G_OK;
}

bool qs_grpc_timeout_parse(const char *v, size_t n, uint64_t *ns) {
  if (n < 2 || n > 9) return false;
  uint64_t x = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (v[i] < '0' || v[i] > '9') return false;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  /* x < 1e8, so even hours (3.6e12 ns each) stay below 2^64. */
  uint64_t mul;
  switch (v[n - 1]) {
    case 'H': mul = 3600ull * 1000000000ull; break;
    case 'M': mul = 60ull * 1000000000ull; break;
    case 'S': mul = 1000000000ull; break;
    case 'm': mul = 1000000ull; break;
    case 'u': mul = 1000ull; break;
    case 'n': mul = 1; break;
    default: return false;
  }
  *ns = x * mul;
  return true;
}

void qs_grpc_percent_encode(const char *msg, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
    bool plain = *p >= 0x20 && *p <= 0x7e && *p != '%';
    size_t need = plain ? 1 : 3;
    if (o + need + 1 > cap) break;
    if (plain) {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  if (cap) out[o < cap ? o : cap - 1] = '\0';
}

void qs_gframe_prefix(uint8_t out[5], uint32_t len) {
  out[0] = 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}
