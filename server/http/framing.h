/* framing.h - what a request's headers say about its framing and its media
 * types, decided before a byte of body is read. Pure functions of header
 * values (no libmicrohttpd), so the unit tests and a fuzz target can drive
 * them directly. A leaf.
 *
 * Framing follows RFC 9112 §6: a request whose body length is ambiguous is
 * refused and its connection closed, since a proxy in front of us may have
 * framed it differently (request smuggling):
 *   - more than one Content-Length, or one that is not 1*DIGIT     -> 400
 *   - Transfer-Encoding together with Content-Length                -> 400
 *   - Transfer-Encoding in an HTTP/1.0 request                      -> 400
 *   - a transfer coding other than chunked                          -> 501
 *   - chunked not the last coding, or given twice, or an empty list -> 400 */
#ifndef QS_FRAMING_H
#define QS_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

typedef struct qs_framing {
  unsigned n_cl, n_te;      /* Content-Length / Transfer-Encoding header lines */
  const char *cl;           /* the first Content-Length value */
  char te[256];             /* every Transfer-Encoding value, joined by ',' */
  bool te_long;             /* ... longer than te holds */
} qs_framing;

/* Feeds one request header (any case); call for every header line. */
void qs_framing_add(qs_framing *f, const char *name, const char *value);
/* 0 when the framing is unambiguous, else 400 or 501 with why filled. */
int qs_framing_verdict(const qs_framing *f, bool http10, char *why, size_t why_len);

/* Media types, compared exactly (type/subtype, case-insensitive, parameters
 * ignored): "application/octet-streamX" is not "application/octet-stream". */
typedef enum qs_body_type {
  QS_BODY_JSON,   /* application/json, no Content-Type, or what `curl -d`
                   * sends (application/x-www-form-urlencoded: a browser form
                   * percent-encodes '{' and '"', so it cannot carry JSON) */
  QS_BODY_BINARY, /* application/octet-stream */
  QS_BODY_REFUSED /* anything else (text/plain, multipart/...): 415 */
} qs_body_type;
qs_body_type qs_body_type_of(const char *content_type);

/* Accept negotiation between our two reply types: binary only when
 * application/octet-stream is named with q > 0 and at least the q that
 * application/json gets (from its most specific range: itself, then
 * "application/" + "*", then "*" + "/" + "*"). No Accept, or one naming
 * neither: JSON. q=0 means "not acceptable". */
bool qs_accept_binary(const char *accept);

#endif
