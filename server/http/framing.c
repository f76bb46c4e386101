/* framing.c - see framing.h. */
#include "http/framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

void qs_framing_add(qs_framing *f, const char *name, const char *value) {
  if (!name || !value) return;
  if (strcasecmp(name, "Content-Length") == 0) {
    if (f->n_cl++ == 0) f->cl = value;
  } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
    size_t have = strlen(f->te), n = strlen(value);
    if (have + (have ? 1 : 0) + n >= sizeof f->te) {
      f->te_long = true;
    } else {
      if (have) f->te[have++] = ',';
      memcpy(f->te + have, value, n + 1);
    }
    f->n_te++;
  }
}

/* The next list element of s (split on ','), trimmed of OWS; false at end. */
static bool next_elem(const char **s, const char **b, size_t *n) {
  const char *p = *s;
  if (!*p) return false;
  const char *e = strchr(p, ',');
  const char *end = e ? e : p + strlen(p);
  while (p < end && is_ows(*p)) p++;
  const char *q = end;
  while (q > p && is_ows(q[-1])) q--;
  *b = p;
  *n = (size_t)(q - p);
  *s = e ? e + 1 : end;
  return true;
}

int qs_framing_verdict(const qs_framing *f, bool http10, char *why, size_t why_len) {
  if (f->n_te) {
    if (http10) {
      snprintf(why, why_len, "Transfer-Encoding in an HTTP/1.0 request");
      return 400;
    }
    if (f->n_cl) {
      snprintf(why, why_len, "both Content-Length and Transfer-Encoding: the body's length "
               "is ambiguous");
      return 400;
    }
    if (f->te_long) {
      snprintf(why, why_len, "Transfer-Encoding too long");
      return 400;
    }
    const char *s = f->te, *b;
    size_t n, codings = 0, chunked = 0;
    bool last_chunked = false;
    while (next_elem(&s, &b, &n)) {
      if (n == 0) continue; /* list syntax allows empty elements */
      codings++;
      last_chunked = n == 7 && strncasecmp(b, "chunked", 7) == 0;
      if (last_chunked) {
        chunked++;
      } else {
        size_t k = 0;
        while (k < n && b[k] != ';' && !is_ows(b[k])) k++;
        snprintf(why, why_len, "transfer coding '%.*s' is not implemented (only chunked)",
                 (int)(k < 40 ? k : 40), b);
        return 501;
      }
    }
    if (codings == 0 || chunked != 1 || !last_chunked) {
      snprintf(why, why_len, "Transfer-Encoding must be exactly 'chunked'");
      return 400;
    }
    return 0;
  }
  if (f->n_cl > 1) {
    snprintf(why, why_len, "more than one Content-Length: the body's length is ambiguous");
    return 400;
  }
  if (f->n_cl == 1) {
    const char *p = f->cl;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) digits++;
    if (digits == 0 || *p || digits > 19) {
      snprintf(why, why_len, "Content-Length is not a decimal byte count");
      return 400;
    }
  }
  return 0;
}

/* type/subtype of a header value, lowercased, without parameters or OWS;
 * false when it does not look like one. */
static bool media_type(const char *h, size_t n, char *out, size_t cap) {
  size_t i = 0, k = 0;
  while (i < n && is_ows(h[i])) i++;
  bool slash = false;
  for (; i < n && h[i] != ';' && !is_ows(h[i]); i++) {
    char c = h[i];
    if (c == '/') {
      if (slash) return false;
      slash = true;
    }
    if (k + 1 >= cap) return false;
    out[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
  }
  out[k] = '\0';
  return slash && k >= 3 && out[0] != '/' && out[k - 1] != '/';
}

qs_body_type qs_body_type_of(const char *ct) {
  if (!ct) return QS_BODY_JSON;
  char mt[128];
  if (!media_type(ct, strlen(ct), mt, sizeof mt)) return QS_BODY_REFUSED;
  if (strcmp(mt, "application/json") == 0) return QS_BODY_JSON;
  if (strcmp(mt, "application/x-www-form-urlencoded") == 0) return QS_BODY_JSON;
  if (strcmp(mt, "application/octet-stream") == 0) return QS_BODY_BINARY;
  return QS_BODY_REFUSED;
}

/* The q parameter of a media range's parameters (b..b+n after the type):
 * 1000 when absent, -1 when malformed, else 0..1000. */
static int qvalue(const char *b, size_t n) {
  const char *p = b, *end = b + n;
  while (p < end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (!semi) break;
    p = semi + 1;
    while (p < end && is_ows(*p)) p++;
    if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      p += 2;
      int v;
      if (p < end && *p == '0') v = 0;
      else if (p < end && *p == '1') v = 1000;
      else return -1;
      p++;
      if (p < end && *p == '.') {
        p++;
        int scale = 100, digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 3) {
          v += (*p - '0') * scale;
          scale /= 10;
          p++;
          digits++;
        }
      }
      while (p < end && is_ows(*p)) p++;
      if ((p < end && *p != ';') || v > 1000) return -1;
      return v;
    }
  }
  return 1000;
}

bool qs_accept_binary(const char *accept) {
  if (!accept) return false;
  int q_bin = -1, q_json[3] = {-1, -1, -1}; /* exact, application wildcard, any */
  const char *s = accept, *b;
  size_t n;
  while (next_elem(&s, &b, &n)) {
    char mt[128];
    if (n == 0 || !media_type(b, n, mt, sizeof mt)) continue;
    int q = qvalue(b, n);
    if (q < 0) continue;
    if (strcmp(mt, "application/octet-stream") == 0) {
      if (q > q_bin) q_bin = q;
    } else {
      int k = strcmp(mt, "application/json") == 0 ? 0
              : strcmp(mt, "application/*") == 0  ? 1
              : strcmp(mt, "*/*") == 0            ? 2
                                                  : -1;
      if (k >= 0 && q > q_json[k]) q_json[k] = q;
    }
  }
  int qj = q_json[0] >= 0 ? q_json[0] : q_json[1] >= 0 ? q_json[1] : q_json[2];
  return q_bin > 0 && q_bin >= qj;
}
