/* reply.c - what every API handler writes besides its answer: the error
 * reply and extra reply headers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "base/config.h"

#define QS_XH_CAP 1536 /* room for every X-* header of a binary reply */

void qs_req_header(qs_req *r, const char *name, const char *fmt, ...) {
  char v[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  size_t nl = strlen(name);
  if (n < 0 || (size_t)n >= sizeof v || r->xh_len + nl + 1 + (size_t)n + 1 > QS_XH_CAP) return;
  if (!r->xh && !(r->xh = malloc(QS_XH_CAP))) {
    /* A binary reply without its headers cannot be read (the JSON header's
     * length travels in one): fail the reply, http.c answers 500. */
    r->out.failed = true;
    return;
  }
  memcpy(r->xh + r->xh_len, name, nl + 1);
  r->xh_len += nl + 1;
  memcpy(r->xh + r->xh_len, v, (size_t)n + 1);
  r->xh_len += (size_t)n + 1;
}

void qs_reply_error(qs_req *r, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Messages may quote client bytes (an unknown output's name): keep the
   * reply valid UTF-8 by replacing anything outside printable ASCII. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p >= 0x7f) *p = '?';
  r->status = status;
  r->ctype = NULL; /* errors are JSON, without the success headers */
  r->xh_len = 0;
  r->out.len = 0;
  r->out.failed = false;
  if (r->out.data) r->out.data[0] = '\0';
  qs_buf_puts(&r->out, "{\"error\":");
  qs_buf_json_str(&r->out, msg);
  qs_buf_puts(&r->out, "}\n");
}

void qs_test_delay(void) {
  unsigned ms = qs_g.cfg.test_delay_ms;
  if (!ms) return;
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

void qs_reply_err(qs_req *r, const qs_err *e) { qs_reply_error(r, e->status, "%s", e->msg); }

void qs_req_reset(qs_req *r, size_t keep) {
  char *body = r->body, *xh = r->xh;
  size_t body_size = r->body_size;
  qs_buf out = r->out;
  if (body_size > keep) {
    free(body);
    body = NULL;
    body_size = 0;
  }
  if (out.size > keep || out.failed) qs_buf_free(&out);
  *r = (qs_req){0};
  r->body = body;
  r->body_size = body_size;
  r->xh = xh;
  r->out.data = out.data;
  r->out.size = out.data ? out.size : 0;
  if (r->out.data) r->out.data[0] = '\0';
}

void qs_req_free_buffers(qs_req *r) {
  free(r->body);
  free(r->xh);
  qs_buf_free(&r->out);
  r->body = r->xh = NULL;
  r->body_size = r->body_len = 0;
}

void qs_reply_walk_error(qs_req *r, const qs_jwalk *w, qs_jerr e) {
  if (w->oom)
    qs_reply_error(r, 503, "out of memory");
  else if (e == QS_JDEPTH)
    qs_reply_error(r, 400, "JSON nested too deeply");
  else if (e == QS_JTYPE)
    qs_reply_error(r, 400, "the body must be a JSON object");
  else
    qs_reply_error(r, 400, "malformed JSON: %s at byte %zu", w->msg ? w->msg : "syntax error", w->errpos);
}
