/* http.c - libmicrohttpd set-up, routing, body caps, replies, access log.
 *
 * libmicrohttpd calls on_request several times per request: once with the
 * headers (we route, check the method and Content-Length, and may answer at
 * once), once per chunk of body (we append, never past --max-body), and once
 * more with no data (we run the handler and queue the reply). on_completed
 * runs when the request ends for any reason: it writes the access-log line,
 * counts the request and frees its state. Inference runs on the pool thread
 * that owns the connection; it takes microseconds, so suspending the
 * connection would cost more than it saves. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/exchange.h"
#include "base/budget.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/scratch.h"
#include "http/deadline.h"
#include "http/framing.h"
#include "http/http.h"
#include "http/page.h"
#include "model/registry.h"

#define OUT_CAP (64u * 1024 * 1024) /* largest reply we build */

enum route {
  R_NONE = 0,
  R_PREDICT,
  R_V2_SERVER,
  R_V2_LIVE,
  R_V2_READY,
  R_V2_MODEL,
  R_V2_MODEL_READY,
  R_V2_INFER,
  R_MODELS,
  R_MODEL,
  R_METRICS,
  R_PAGE, /* the embedded browser page (page.c) */
};

/* Takes the model name from url segment s (up to '/' or end) into r->name.
 * Returns the rest of the url after the name. */
static const char *take_name(qs_req *r, const char *s) {
  const char *e = strchr(s, '/');
  size_t n = e ? (size_t)(e - s) : strlen(s);
  if (n == 0 || n >= sizeof r->name) {
    r->name_bad = true;
    r->name[0] = '\0';
  } else {
    memcpy(r->name, s, n);
    r->name[n] = '\0';
    r->name_bad = !qs_name_valid(r->name);
  }
  return s + n;
}

/* Sets r->route/ep, or an error status (404/405). */
static void route(qs_req *r, const char *method, const char *url) {
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  bool post = strcmp(method, "POST") == 0;
  bool want_post = false;
  r->ep = QS_EP_OTHER;
  if (strcmp(url, "/predict") == 0) {
    r->route = R_PREDICT, r->ep = QS_EP_PREDICT, want_post = true;
  } else if (strcmp(url, "/v2") == 0 || strcmp(url, "/v2/") == 0) {
    r->route = R_V2_SERVER, r->ep = QS_EP_V2_SERVER;
  } else if (strcmp(url, "/v2/health/live") == 0) {
    r->route = R_V2_LIVE, r->ep = QS_EP_V2_HEALTH;
  } else if (strcmp(url, "/v2/health/ready") == 0) {
    r->route = R_V2_READY, r->ep = QS_EP_V2_HEALTH;
  } else if (strncmp(url, "/v2/models/", 11) == 0) {
    const char *rest = take_name(r, url + 11);
    r->ep = QS_EP_V2_MODEL;
    if (*rest == '\0')
      r->route = R_V2_MODEL;
    else if (strcmp(rest, "/ready") == 0)
      r->route = R_V2_MODEL_READY;
    else if (strcmp(rest, "/infer") == 0)
      r->route = R_V2_INFER, r->ep = QS_EP_V2_INFER, want_post = true;
  } else if (strcmp(url, "/models") == 0 || strcmp(url, "/models/") == 0) {
    r->route = R_MODELS, r->ep = QS_EP_MODELS;
  } else if (strncmp(url, "/models/", 8) == 0) {
    const char *rest = take_name(r, url + 8);
    r->ep = QS_EP_MODELS;
    if (*rest == '\0') r->route = R_MODEL;
  } else if (strcmp(url, "/metrics") == 0) {
    r->route = R_METRICS, r->ep = QS_EP_METRICS;
  } else if (qs_page_find(url)) {
    r->route = R_PAGE;
  }
  if (r->route == R_NONE) {
    qs_reply_error(r, 404, "no such route");
    return;
  }
  if (want_post ? !post : !get) {
    r->allow = want_post ? "POST" : "GET, HEAD";
    qs_reply_error(r, 405, "method %s not allowed here (allowed: %s)", r->method, r->allow);
    return;
  }
  if (r->name_bad) {
    qs_reply_error(r, 400, "invalid model name (1-128 of A-Z a-z 0-9 . _ -, no leading dot)");
    return;
  }
}

static void dispatch(qs_req *r) {
  switch (r->route) {
    case R_PREDICT:
      if (r->bin_in)
        qs_handle_predict_binary(r);
      else
        qs_handle_predict(r);
      break;
    case R_V2_INFER: qs_handle_v2_infer(r); break;
    case R_V2_SERVER: qs_handle_v2_server(r); break;
    case R_V2_LIVE:
      r->status = 200;
      qs_buf_puts(&r->out, "{\"live\":true}\n");
      break;
    case R_V2_READY:
      if (atomic_load(&qs_g.ready) && !atomic_load(&qs_g.draining) && qs_registry_count() > 0) {
        r->status = 200;
        qs_buf_puts(&r->out, "{\"ready\":true}\n");
      } else {
        qs_reply_error(r, 503, atomic_load(&qs_g.draining) ? "shutting down"
                               : !atomic_load(&qs_g.ready) ? "starting"
                                                            : "no models loaded");
      }
      break;
    case R_V2_MODEL: qs_handle_v2_model(r); break;
    case R_V2_MODEL_READY: qs_handle_v2_model_ready(r); break;
    case R_MODELS: qs_handle_models(r); break;
    case R_MODEL: qs_handle_model(r); break;
    case R_METRICS:
      r->status = 200;
      qs_metrics_render(&r->out);
      break;
    default: qs_reply_error(r, 404, "no such route"); break;
  }
}

static enum MHD_Result send_reply(struct MHD_Connection *c, qs_req *r) {
  if (r->out.failed || !r->out.data) {
    qs_buf_free(&r->out);
    qs_buf_init(&r->out, 128, 4096);
    qs_reply_error(r, 500, "reply too large or out of memory");
    if (r->out.failed) return MHD_NO;
  }
  /* The reply stays in r->out, which r keeps until on_completed: the
   * request is complete only once its reply has been sent. */
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(r->out.len, r->out.data, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  r->bytes_out = r->out.len;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          r->ctype ? r->ctype
                          : r->route == R_METRICS && r->status == 200
                              ? "text/plain; version=0.0.4; charset=utf-8"
                              : "application/json");
  for (size_t i = 0; i < r->xh_len;) { /* binary replies' X-* headers */
    const char *name = r->xh + i, *value = name + strlen(name) + 1;
    MHD_add_response_header(resp, name, value);
    i = (size_t)(value + strlen(value) + 1 - r->xh);
  }
  if (r->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
  /* Draining: no more requests on this connection. */
  /* Draining, or a request whose framing we refused (its body's extent is
   * unknown, so nothing after it on this connection can be trusted): no
   * more requests on this connection. */
  if (r->close || atomic_load(&qs_g.draining))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  r->queued = true;
  qs_deadline_clear(c);
  return ret;
}

static void copy_clean(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[i] = (ch <= 0x20 || ch >= 0x7f) ? '?' : (char)ch;
  }
  dst[i] = '\0';
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  (void)kind;
  qs_framing_add(cls, key, value);
  return MHD_YES;
}

/* RFC 9112 framing (framing.h): refused before any body byte is read, with
 * the connection closed after the reply. */
static bool framing_refused(qs_req *r, struct MHD_Connection *c, const char *version) {
  qs_framing f;
  memset(&f, 0, sizeof f);
  MHD_get_connection_values(c, MHD_HEADER_KIND, framing_header, &f);
  char why[160];
  int st = qs_framing_verdict(&f, strcmp(version, MHD_HTTP_VERSION_1_0) == 0, why, sizeof why);
  if (!st) return false;
  qs_reply_error(r, st, "%s", why);
  r->close = true;
  return true;
}

static void copy_arg(char *dst, size_t cap, const char *v) {
  if (!v) return;
  size_t n = strlen(v);
  if (n >= cap) n = cap - 1; /* a longer value stays invalid: cap-1 bytes of it */
  memcpy(dst, v, n);
  dst[n] = '\0';
  if (strlen(v) >= cap) dst[0] = '\x01'; /* marks "too long" so it is refused */
}

/* Reads the binary-payload headers and query arguments into r (the
 * decoders in api/ see only the values). */
static void read_binary_headers(qs_req *r, struct MHD_Connection *c) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
  r->bin_in = qs_body_type_of(ct) == QS_BODY_BINARY;
  r->bin_out = qs_accept_binary(acc);
  const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
  if (!m) m = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Model");
  copy_arg(r->qmodel, sizeof r->qmodel, m);
  copy_arg(r->qbaseline, sizeof r->qbaseline,
           MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "baseline"));
  copy_arg(r->qmode, sizeof r->qmode, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode"));
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
  if (h) {
    char *end;
    unsigned long long v = strtoull(h, &end, 10);
    r->v2_bin = true;
    /* Anything unparsable is answered 400 by the handler. */
    r->v2_hlen_bad = !(*h >= '0' && *h <= '9' && !*end && v <= (1ULL << 40));
    r->v2_hlen = r->v2_hlen_bad ? 0 : (size_t)v;
  }
}

static bool is_post_route(int rt) { return rt == R_PREDICT || rt == R_V2_INFER; }

/* ---- request records ------------------------------------------------ */

/* Each pool thread keeps a few finished request records with their buffers
 * (body, reply, extra headers): a connection's requests all run on the
 * thread that owns it, so a warm thread allocates no record, body buffer or
 * reply buffer per request. Buffers above KEEP_BYTES are not kept. */
#define KEEP_RECORDS 8
#define KEEP_BYTES (64u * 1024)

typedef struct req_pool {
  qs_req *free[KEEP_RECORDS];
  int n;
} req_pool;

static void req_pool_free(void *p) {
  req_pool *pool = p;
  for (int i = 0; i < pool->n; i++) {
    qs_req_free_buffers(pool->free[i]);
    free(pool->free[i]);
  }
  free(pool);
}

static qs_tls pool_tls = {.free_fn = req_pool_free};

static qs_req *req_take(void) {
  req_pool *pool = qs_tls_get(&pool_tls, sizeof *pool);
  qs_req *r = pool && pool->n ? pool->free[--pool->n] : calloc(1, sizeof *r);
  if (!r) return NULL;
  qs_req_reset(r, KEEP_BYTES);
  if (r->out.data) {
    r->out.cap = OUT_CAP;
  } else {
    qs_buf_init(&r->out, 1024, OUT_CAP);
  }
  return r;
}

/* Back to this thread's pool (the thread that took it: libmicrohttpd
 * completes a request on the thread that owns its connection). */
static void req_give(qs_req *r) {
  req_pool *pool = qs_tls_peek(&pool_tls);
  if (pool && pool->n < KEEP_RECORDS) {
    qs_req_reset(r, KEEP_BYTES); /* big buffers go now, not at the next request */
    pool->free[pool->n++] = r;
    return;
  }
  qs_req_free_buffers(r);
  free(r);
}

/* ---- one request, by phase ------------------------------------------- */

/* Reserves the first body buffer for a POST with a Content-Length (checked
 * against --max-body before a byte is read). False with a reply set. */
static bool body_start(qs_req *r, struct MHD_Connection *c) {
  const qs_config *cfg = &qs_g.cfg;
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  size_t first = 0;
  if (cl) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    if (errno || end == cl || *end || v > cfg->max_body) {
      /* Refused before a byte of it is read or buffered. */
      qs_reply_error(r, 413, "body larger than %zu bytes", cfg->max_body);
      return false;
    }
    /* Sized by a header already checked against the cap, but only up to
     * 64 KiB: beyond that the buffer grows as bytes really arrive, so
     * clients that announce big bodies and send slowly hold no more memory
     * than they sent. */
    first = v < 65536 ? (size_t)v : 65536;
  }
  /* The buffer this record kept from an earlier request counts too. */
  size_t held = r->body_size > first ? r->body_size : first;
  if (held && !qs_budget_take(&r->accounted, held)) {
    qs_reply_error(r, 503, "server busy: too many request bodies in flight, retry");
    return false;
  }
  if (first > r->body_size) {
    char *nb = realloc(r->body, first + 1);
    if (!nb) {
      qs_reply_error(r, 503, "out of memory");
      return false;
    }
    r->body = nb;
    r->body_size = first;
  }
  if (first) qs_deadline_body(c, true);
  return true;
}

/* First callback: the headers are in. Routes, checks the method and the
 * body's announced size, and may answer at once. */
static enum MHD_Result on_headers(struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, void **con_cls) {
  qs_req *r = req_take();
  if (!r) return MHD_NO;
  r->t0_ns = qs_now_ns();
  r->model_slot = -1;
  qs_inflight_begin();
  *con_cls = r;
  copy_clean(r->method, sizeof r->method, method);
  copy_clean(r->path, sizeof r->path, url);
  r->head = strcmp(method, "HEAD") == 0;
  if (framing_refused(r, c, version)) return send_reply(c, r);
  route(r, method, url);
  if (r->status) return send_reply(c, r);
  if (r->route == R_PAGE) return qs_page_send(c, r, url);
  if (is_post_route(r->route)) {
    /* While draining, a request on a connection accepted before the signal
     * is still served (it may have waited in a busy thread's queue since
     * before SIGTERM); its reply closes the connection. */
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (qs_body_type_of(ct) == QS_BODY_REFUSED) {
      /* Exact media types only: text/plain (what a form on another site can
       * post without a CORS preflight) and look-alikes such as
       * application/octet-streamX are refused. */
      qs_reply_error(r, 415, "send the body as application/json or application/octet-stream");
      return send_reply(c, r);
    }
    read_binary_headers(r, c);
    if (!body_start(r, c)) return send_reply(c, r);
  }
  return MHD_YES;
}

/* Frees the body of a request that will be refused at its end. */
static void body_drop(qs_req *r, size_t n) {
  free(r->body);
  r->body = NULL;
  r->body_len = r->body_size = 0;
  r->discarded = n;
}

/* A chunk of body: appended, never past --max-body or the process-wide
 * --max-inflight-bytes. */
static enum MHD_Result on_body_chunk(struct MHD_Connection *c, qs_req *r, const char *upload,
                                     size_t n) {
  const qs_config *cfg = &qs_g.cfg;
  if (r->queued) return MHD_YES;
  if (r->too_big || r->busy) {
    /* libmicrohttpd cannot answer in the middle of a body: discard the
     * rest (nothing is kept) and answer 413/503 at its end, unless the
     * client keeps sending far past the cap: then close the connection. */
    r->discarded += n;
    return r->discarded > 16 * (uint64_t)cfg->max_body ? MHD_NO : MHD_YES;
  }
  if (n > cfg->max_body - r->body_len) {
    /* A chunked body (no Content-Length) went past the cap. */
    r->too_big = true;
    body_drop(r, n);
    return MHD_YES;
  }
  if (r->body_len + n > r->body_size) {
    size_t ns = r->body_size ? r->body_size : 4096;
    while (ns < r->body_len + n) ns = ns > cfg->max_body / 2 ? cfg->max_body : ns * 2;
    if (!qs_budget_take(&r->accounted, ns - r->body_size)) {
      /* Every body in flight together is capped too: this one waits its
       * turn (503) rather than pushing the process out of memory. */
      r->busy = true;
      body_drop(r, n);
      qs_budget_release(&r->accounted);
      qs_deadline_body(c, false); /* holds nothing now */
      return MHD_YES;
    }
    char *nb = realloc(r->body, ns + 1);
    if (!nb) return MHD_NO; /* out of memory: drop this connection only */
    r->body = nb;
    r->body_size = ns;
  }
  memcpy(r->body + r->body_len, upload, n);
  r->body_len += n;
  qs_deadline_body(c, true);
  return MHD_YES;
}

/* The last callback: the body is complete. Runs the handler on this thread
 * and queues its reply. */
static enum MHD_Result on_request_done(struct MHD_Connection *c, qs_req *r) {
  const qs_config *cfg = &qs_g.cfg;
  if (r->queued) return MHD_YES;
  if (r->too_big) {
    qs_reply_error(r, 413, "body larger than %zu bytes", cfg->max_body);
    return send_reply(c, r);
  }
  if (r->busy) {
    qs_reply_error(r, 503, "server busy: too many request bodies in flight, retry");
    return send_reply(c, r);
  }
  if (r->body) r->body[r->body_len] = '\0';
  qs_deadline_clear(c); /* the request is in: its run is not the client's delay */
  dispatch(r);
  return send_reply(c, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
  (void)cls;
  qs_req *r = *con_cls;
  if (!r) return on_headers(c, url, method, version, con_cls);
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    return on_body_chunk(c, r, upload, n);
  }
  return on_request_done(c, r);
}

/* After a request that held a lot of memory (a big body and its parse),
 * give the freed pages back to the OS: glibc keeps freed small blocks in its
 * arenas, so a burst of big requests would otherwise leave the process at
 * its peak for good. At most once a second; costs ~a millisecond. */
#define TRIM_AFTER_BYTES ((size_t)1 << 20)
static _Atomic uint64_t last_trim_ns;

static void trim_after_peak(size_t held) {
  if (held < TRIM_AFTER_BYTES) return;
  uint64_t now = qs_now_ns(), last = atomic_load(&last_trim_ns);
  if (now - last < 1000000000u) return;
  if (!atomic_compare_exchange_strong(&last_trim_ns, &last, now)) return;
  malloc_trim(0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  qs_req *r = *con_cls;
  qs_deadline_rearm(c);
  if (!r) return;
  *con_cls = NULL;
  uint64_t dt = qs_now_ns() - r->t0_ns;
  int status = r->queued ? r->status : 0;
  qs_metrics_request(r->model_slot, r->ep, status);
  if (r->model_slot >= 0 && (r->ep == QS_EP_PREDICT || r->ep == QS_EP_V2_INFER) && status == 200)
    qs_metrics_observe(r->model_slot, QS_LAT_TOTAL, dt);
  if (!qs_g.cfg.quiet)
    qs_log("%s %s %d %zu %llu%s", r->method, r->path, status, r->bytes_out,
           (unsigned long long)(dt / 1000),
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
  size_t held = r->body_size;
  qs_budget_release(&r->accounted);
  req_give(r);
  qs_inflight_end();
  trim_after_peak(held);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX in the URL in place, except %00: libmicrohttpd's own
 * unescaper turns it into a NUL that silently cuts the path, so
 * GET /models/fm%00x answered for "fm". Left as "%00", it is a character
 * no model name or route has, and the request is refused. */
static size_t unescape_url(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  char *w = s;
  for (const char *p = s; *p; p++) {
    int hi, lo;
    if (p[0] == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0 && (hi | lo)) {
      *w++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *w++ = *p;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  qs_log("libmicrohttpd: %s", msg);
}

struct MHD_Daemon *qs_http_start(void) {
  const qs_config *cfg = &qs_g.cfg;
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  char port[16];
  snprintf(port, sizeof port, "%u", cfg->port);
  int gai = getaddrinfo(cfg->host, port, &hints, &ai);
  if (gai != 0) {
    qs_log("cannot use --host %s: %s (give a numeric address, e.g. 0.0.0.0 or ::)", cfg->host,
           gai_strerror(gai));
    return NULL;
  }
  /* Big blocks (request bodies past 256 KiB) always come from mmap and go
   * back to the OS when freed: a fixed threshold also stops glibc from
   * raising it after the first big free, which put later 4 MB bodies in
   * arenas that never shrank. */
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  /* Before the daemon: its threads read the deadline settings. */
  qs_deadline_start(cfg->conn_timeout_s);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_DUAL_STACK; /* "::" takes IPv4 too */
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, (uint16_t)cfg->port, NULL, NULL, on_request, NULL,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, ai->ai_addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 1),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
      /* libmicrohttpd counts this listener's connections against the cap
       * itself (grpc/h2.c, which accepts its own, counts its own). */
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->conn_limit,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_NOTIFY_CONNECTION, qs_deadline_notify, NULL,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
      /* The strictest client discipline 0.9.75 has (MHD_OPTION_CLIENT_
       * DISCIPLINE_LVL came in 0.9.77): HTTP/1.1 requests need Host, no
       * spaces in the URL or in header names. Framing is checked in
       * framing.c. */
      MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
      MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!d) {
    qs_log("cannot listen on %s:%u: %s", cfg->host, cfg->port, strerror(errno));
    qs_deadline_stop();
  }
  return d;
}

unsigned qs_http_port(struct MHD_Daemon *d) {
  const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  return i ? i->port : 0;
}

void qs_http_quiesce(struct MHD_Daemon *d) {
  MHD_socket fd = MHD_quiesce_daemon(d);
  if (fd != MHD_INVALID_SOCKET) close(fd);
}

void qs_http_stop(struct MHD_Daemon *d) {
  MHD_stop_daemon(d);
  qs_deadline_stop();
}
