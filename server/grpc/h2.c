/* h2.c - the gRPC transport: HTTP/2 (libnghttp2, server sessions, cleartext
 * with prior knowledge, as gRPC clients connect) on epoll I/O threads of its
 * own. Each thread accepts from the shared listening socket (EPOLLEXCLUSIVE)
 * and owns the connections it accepted; a unary call runs on that thread
 * the moment its request stream ends (inference takes microseconds, as on
 * the HTTP pool threads), and the reply is queued to the session.
 *
 * Per stream: the headers pick the method and the deadline (grpc-timeout);
 * DATA goes through the frame reader, which refuses a message longer than
 * --max-body from its 5-byte prefix, before buffering any of it: the error
 * is answered at once (trailers-only) and the stream reset with NO_ERROR
 * so the client stops sending. Errors are gRPC statuses in trailers
 * (grpc-status, percent-encoded grpc-message).
 *
 * Limits as on HTTP: --conn-limit connections (of this listener), idle or
 * slow connections closed after --conn-timeout, request bytes counted in
 * the --max-inflight-bytes budget, 100 streams per connection. A client
 * that does not read its replies stops being read (no unbounded queue).
 *
 * Drain (qs_grpc_quiesce, from the control loop on SIGTERM): the listening
 * socket is closed, every connection gets GOAWAY (streams already started
 * finish), a stream that starts anyway is answered UNAVAILABLE, and a
 * connection closes once its streams are done. In-flight streams count in
 * qs_g.inflight, which the drain waits for. */
#include "grpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "api/grpc_frame.h"
#include "api/grpc_service.h"
#include "base/budget.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"

#define MAX_STREAMS 100
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define READ_CHUNK (64 * 1024)
#define WBUF_HIGH (256 * 1024) /* stop pulling frames from nghttp2 past this */
#define TICK_MS 50

typedef struct gconn gconn;

typedef struct gstream {
  int32_t id;
  gconn *c;
  struct gstream *prev, *next;
  qs_gmethod method;
  bool post, ctype_ok, path_seen;
  bool answered;     /* a response is submitted */
  bool rst_after;    /* reset once the response is out: the client is still sending */
  bool pending;      /* a ModelInfer call not yet run */
  uint64_t t0_ns, deadline_ns;
  qs_gframe fr;
  size_t accounted;  /* bytes of qs_g.body_bytes this stream holds */
  qs_gcode code;
  char text[256];
  uint8_t *reply;
  size_t reply_len, reply_off;
  int model_slot;
  char path[64];     /* for the access log */
} gstream;

typedef struct worker worker;

struct gconn {
  int fd;
  worker *w;
  nghttp2_session *s;
  gconn *prev, *next;
  gstream *streams;
  uint8_t *wbuf;
  size_t wlen, woff, wcap;
  bool out_armed, in_armed;
  bool preface_ok;
  size_t preface_seen;
  bool goaway;
  bool dead;
  uint64_t last_io_ns;
};

struct worker {
  pthread_t thread;
  int ep, evfd;
  bool listening;
  bool drained; /* GOAWAY sent on every connection */
  gconn *conns;
};

static struct {
  int lfd;
  unsigned port;
  unsigned n;
  worker *w;
  atomic_bool stop;
  atomic_bool quiesce;
  atomic_int listeners; /* workers still watching lfd */
  atomic_uint conns;
  bool started;
} G = {.lfd = -1};

/* epoll data: the listener and the eventfd are told apart by pointer. */
static char tag_listen, tag_event;

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* ---- budget ----------------------------------------------------------- */

static bool reserve(void *ctx, size_t n) {
  gstream *st = ctx;
  return qs_budget_take(&st->accounted, n);
}

static void release_body(gstream *st) {
  qs_gframe_free(&st->fr);
  qs_budget_release(&st->accounted);
}

/* ---- streams ---------------------------------------------------------- */

static gstream *stream_new(gconn *c, int32_t id) {
  gstream *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  st->id = id;
  st->c = c;
  st->t0_ns = qs_now_ns();
  st->model_slot = -1;
  st->code = QS_G_UNKNOWN;
  qs_gframe_init(&st->fr, qs_g.cfg.max_body);
  st->fr.reserve = reserve;
  st->fr.ctx = st;
  st->next = c->streams;
  if (c->streams) c->streams->prev = st;
  c->streams = st;
  qs_inflight_begin();
  return st;
}

static void pending_done(gstream *st) {
  st->pending = false;
}

/* The stream is over (closed, reset or its connection gone): log, count,
 * free. A stream that never got an answer is logged as CANCELLED. */
static void stream_free(gstream *st, bool closed_ok) {
  gconn *c = st->c;
  if (st->prev) st->prev->next = st->next;
  else c->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  qs_gcode code = st->answered ? st->code : QS_G_CANCELLED;
  uint64_t dt = qs_now_ns() - st->t0_ns;
  qs_metrics_grpc(st->model_slot, (int)st->method, (int)code);
  if (code == QS_G_OK && st->method == QS_GM_MODEL_INFER && st->model_slot >= 0)
    qs_metrics_observe(st->model_slot, QS_LAT_TOTAL, dt);
  if (!qs_g.cfg.quiet)
    qs_log("grpc %s %s %zu %llu%s", st->path[0] ? st->path : "-", qs_gcode_name(code), st->reply_len,
           (unsigned long long)(dt / 1000), closed_ok ? "" : " (aborted)");
  pending_done(st);
  release_body(st);
  free(st->reply);
  free(st);
  qs_inflight_end();
}

/* ---- replies ---------------------------------------------------------- */

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

static ssize_t reply_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *user) {
  (void)user;
  gstream *st = src->ptr;
  size_t left = st->reply_len - st->reply_off;
  size_t k = left < len ? left : len;
  memcpy(buf, st->reply + st->reply_off, k);
  st->reply_off += k;
  if (st->reply_off == st->reply_len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv tr[] = {NV("grpc-status", "0")};
    if (nghttp2_submit_trailer(s, id, tr, 1) != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return (ssize_t)k;
}

/* Trailers-only error reply; http is the HTTP status (200 for gRPC errors,
 * 405/415 when the request was not gRPC at all). */
static void answer_error(gconn *c, gstream *st, const char *http, qs_gcode code, const char *text) {
  if (st->answered) return;
  st->answered = true;
  st->code = code;
  snprintf(st->text, sizeof st->text, "%s", text);
  char cs[8], enc[3 * sizeof st->text];
  snprintf(cs, sizeof cs, "%d", (int)code);
  qs_grpc_percent_encode(text, enc, sizeof enc);
  nghttp2_nv nva[] = {NV(":status", http), NV("content-type", "application/grpc"), NV("grpc-status", cs),
                      NV("grpc-message", enc)};
  nghttp2_submit_response(c->s, st->id, nva, 4, NULL);
  pending_done(st);
  release_body(st);
}

static void answer_ok(gconn *c, gstream *st) {
  st->answered = true;
  st->code = QS_G_OK;
  nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
  nghttp2_data_provider prd = {.source.ptr = st, .read_callback = reply_read};
  if (nghttp2_submit_response(c->s, st->id, nva, 2, &prd) != 0) {
    st->answered = false;
    answer_error(c, st, "200", QS_G_INTERNAL, "cannot queue the reply");
  }
}

/* The request stream ended: run the call. */
static void run_call(gconn *c, gstream *st) {
  if (st->answered) return;
  const uint8_t *msg;
  size_t len;
  qs_gcode e = qs_gframe_finish(&st->fr, &msg, &len);
  if (e != QS_G_OK) {
    answer_error(c, st, "200", e, st->fr.errmsg);
    return;
  }
  if (st->deadline_ns && qs_now_ns() > st->deadline_ns) {
    answer_error(c, st, "200", QS_G_DEADLINE_EXCEEDED, "deadline passed before the call ran");
    return;
  }
  qs_gcall call = {.method = st->method, .msg = msg, .len = len, .t0_ns = st->t0_ns};
  if (st->method == QS_GM_MODEL_INFER) qs_test_delay();
  qs_grpc_call(&call);
  st->model_slot = call.model_slot;
  pending_done(st);
  release_body(st);
  if (call.code != QS_G_OK) {
    answer_error(c, st, "200", call.code, call.text);
    return;
  }
  st->reply = call.reply;
  st->reply_len = call.reply_len;
  answer_ok(c, st);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user) {
  gconn *c = user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  gstream *st = stream_new(c, f->hd.stream_id);
  if (!st) {
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
  return 0;
}

static bool is_grpc_ctype(const uint8_t *v, size_t n) {
  static const char g[] = "application/grpc";
  size_t gl = sizeof g - 1;
  return n >= gl && memcmp(v, g, gl) == 0 && (n == gl || v[gl] == '+' || v[gl] == ';');
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
  (void)flags;
  (void)user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st) return 0;
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
  if (IS(":method")) {
    st->post = vlen == 4 && memcmp(value, "POST", 4) == 0;
  } else if (IS(":path")) {
    st->path_seen = true;
    st->method = qs_grpc_method((const char *)value, vlen);
    size_t k = vlen < sizeof st->path - 1 ? vlen : sizeof st->path - 1;
    for (size_t i = 0; i < k; i++) st->path[i] = value[i] > 0x20 && value[i] < 0x7f ? (char)value[i] : '?';
    st->path[k] = '\0';
  } else if (IS("content-type")) {
    st->ctype_ok = is_grpc_ctype(value, vlen);
  } else if (IS("grpc-timeout")) {
    uint64_t ns;
    if (qs_grpc_timeout_parse((const char *)value, vlen, &ns)) st->deadline_ns = st->t0_ns + ns;
  }
#undef IS
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user) {
  gconn *c = user;
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
  gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (!st->post)
      answer_error(c, st, "405", QS_G_UNIMPLEMENTED, "gRPC calls are POST");
    else if (!st->ctype_ok)
      answer_error(c, st, "415", QS_G_INTERNAL, "content-type must be application/grpc");
    else if (st->method == QS_GM_NONE)
      answer_error(c, st, "200", QS_G_UNIMPLEMENTED, "unknown method (this server has inference.GRPCInferenceService)");
    else if (atomic_load(&qs_g.draining))
      answer_error(c, st, "200", QS_G_UNAVAILABLE, "server is shutting down");
    else if (st->method == QS_GM_MODEL_INFER) {
      st->pending = true;
    }
    if (st->answered && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) st->rst_after = true;
  }
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) run_call(c, st);
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *user) {
  (void)flags;
  gconn *c = user;
  gstream *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st || st->answered) return 0; /* answered already: the rest is dropped */
  if (qs_gframe_feed(&st->fr, data, len) != QS_G_OK) {
    /* Too big, compressed, or a second message: answer now and reset the
     * stream once the answer is out, so the client stops sending. */
    st->rst_after = true;
    answer_error(c, st, "200", st->fr.err, st->fr.errmsg);
  }
  return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user) {
  (void)user;
  if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (st && st->rst_after) {
    st->rst_after = false;
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *user) {
  (void)user;
  gstream *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st) return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  stream_free(st, err == NGHTTP2_NO_ERROR && st->answered);
  return 0;
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;

/* ---- connections ------------------------------------------------------ */

static void conn_arm(gconn *c, bool in, bool out) {
  if (c->in_armed == in && c->out_armed == out) return;
  struct epoll_event ev = {.events = (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0) | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->in_armed = in;
  c->out_armed = out;
}

static void conn_close(gconn *c) {
  worker *w = c->w;
  while (c->streams) stream_free(c->streams, false);
  if (c->s) nghttp2_session_del(c->s);
  epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->prev) c->prev->next = c->next;
  else w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->wbuf);
  free(c);
  atomic_fetch_sub(&G.conns, 1);
}

static bool wbuf_put(gconn *c, const uint8_t *p, size_t n) {
  if (c->wlen + n > c->wcap) {
    size_t cap = c->wcap ? c->wcap : 16384;
    while (cap < c->wlen + n) cap *= 2;
    uint8_t *nb = realloc(c->wbuf, cap);
    if (!nb) return false;
    c->wbuf = nb;
    c->wcap = cap;
  }
  memcpy(c->wbuf + c->wlen, p, n);
  c->wlen += n;
  return true;
}

/* Moves what nghttp2 has to send into wbuf and writes it. Returns false when
 * the connection is to be closed. */
static bool conn_flush(gconn *c) {
  for (;;) {
    while (c->woff < c->wlen) {
      ssize_t k = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* The client is not reading: stop reading it too. */
        conn_arm(c, false, true);
        return true;
      }
      if (k <= 0) return false;
      c->woff += (size_t)k;
      c->last_io_ns = qs_now_ns();
    }
    c->wlen = c->woff = 0;
    if (!c->s) return false;
    while (c->wlen < WBUF_HIGH) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(c->s, &data);
      if (n < 0) return false;
      if (n == 0) break;
      if (!wbuf_put(c, data, (size_t)n)) return false;
    }
    if (c->wlen == 0) break;
  }
  conn_arm(c, true, false);
  return nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s);
}

/* The first bytes must be the HTTP/2 preface. An HTTP/1.x request gets a
 * plain answer saying where it went; anything else is just closed. */
static bool check_preface(gconn *c, const uint8_t *p, size_t n) {
  size_t want = sizeof preface - 1 - c->preface_seen;
  size_t k = n < want ? n : want;
  if (memcmp(p, preface + c->preface_seen, k) == 0) {
    c->preface_seen += k;
    c->preface_ok = c->preface_seen == sizeof preface - 1;
    return true;
  }
  if (c->preface_seen == 0 && n >= 4 && p[0] >= 'A' && p[0] <= 'Z' && memmem(p, n, " HTTP/1.", 8)) {
    static const char msg[] =
        "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        "Content-Length: 95\r\n\r\n"
        "this port speaks gRPC (HTTP/2 with prior knowledge); HTTP/1.1 and REST are on the HTTP port\n";
    ssize_t rc = send(c->fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
    (void)rc; /* best effort: the connection closes either way */
  }
  return false;
}

static void conn_read(gconn *c) {
  static _Thread_local uint8_t buf[READ_CHUNK];
  for (int round = 0; round < 16; round++) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      c->dead = true;
      return;
    }
    c->last_io_ns = qs_now_ns();
    if (!c->preface_ok && !check_preface(c, buf, (size_t)n)) {
      c->dead = true;
      return;
    }
    ssize_t rc = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
    if (rc < 0) {
      /* A protocol error: nghttp2 queued a GOAWAY; send it and close. */
      qs_log("grpc: closing a connection: %s", nghttp2_strerror((int)rc));
      conn_flush(c);
      c->dead = true;
      return;
    }
    if (c->wlen || (size_t)n < sizeof buf) break;
  }
  if (!conn_flush(c)) c->dead = true;
}

static void conn_accept(worker *w) {
  for (;;) {
    int fd = accept4(G.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN (another thread took it) or a transient error */
    /* --conn-limit counted here, not in base/budget.c: libmicrohttpd
     * counts the HTTP listener's connections itself (http.c), and these
     * are accepted only here. */
    if (atomic_fetch_add(&G.conns, 1) >= qs_g.cfg.conn_limit || atomic_load(&G.quiesce)) {
      atomic_fetch_sub(&G.conns, 1);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    gconn *c = calloc(1, sizeof *c);
    if (!c || nghttp2_session_server_new2(&c->s, callbacks, c, options) != 0) {
      free(c);
      close(fd);
      atomic_fetch_sub(&G.conns, 1);
      continue;
    }
    c->fd = fd;
    c->w = w;
    c->last_io_ns = qs_now_ns();
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
                                   {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384}};
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    c->in_armed = true;
    /* Our SETTINGS go out with the first reply to the client's preface, so
     * an HTTP/1.x client reads a plain answer, not a binary frame. */
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) conn_close(c);
  }
}

/* ---- the I/O threads -------------------------------------------------- */

static void drop_listener(worker *w) {
  if (!w->listening) return;
  w->listening = false;
  epoll_ctl(w->ep, EPOLL_CTL_DEL, G.lfd, NULL);
  /* The last thread to let go closes it: no thread can be in accept4 on a
   * number that has been reused. */
  if (atomic_fetch_sub(&G.listeners, 1) == 1) {
    close(G.lfd);
    G.lfd = -1;
  }
}

static void drain(worker *w) {
  drop_listener(w);
  if (w->drained) return;
  w->drained = true;
  for (gconn *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (!c->goaway && c->s) {
      c->goaway = true;
      nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->s),
                            NGHTTP2_NO_ERROR, NULL, 0);
    }
    if (!conn_flush(c)) conn_close(c);
  }
}

/* Deadlines of streams still receiving, and idle or slow connections. */
static void sweep(worker *w) {
  uint64_t now = qs_now_ns();
  uint64_t idle = (uint64_t)qs_g.cfg.conn_timeout_s * 1000000000u;
  for (gconn *c = w->conns, *next; c; c = next) {
    next = c->next;
    bool touched = false;
    for (gstream *st = c->streams; st; st = st->next)
      if (!st->answered && st->deadline_ns && now > st->deadline_ns) {
        st->rst_after = true;
        answer_error(c, st, "200", QS_G_DEADLINE_EXCEEDED, "deadline passed while the request was arriving");
        touched = true;
      }
    if (idle && now - c->last_io_ns > idle) {
      conn_close(c);
      continue;
    }
    if (touched && !conn_flush(c)) conn_close(c);
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  struct epoll_event evs[64];
  uint64_t last_sweep = qs_now_ns();
  while (!atomic_load(&G.stop)) {
    int n = epoll_wait(w->ep, evs, 64, TICK_MS);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &tag_listen) {
        if (w->listening) conn_accept(w);
        continue;
      }
      if (p == &tag_event) {
        uint64_t v;
        ssize_t rc = read(w->evfd, &v, sizeof v);
        (void)rc; /* the flags are read below, the count does not matter */
        continue;
      }
      gconn *c = p;
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) c->dead = true;
      if (!c->dead && (evs[i].events & EPOLLOUT) && !conn_flush(c)) c->dead = true;
      if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP))) conn_read(c);
      if (c->dead) conn_close(c);
    }
    /* After the events: drain may close connections they point to. */
    if (atomic_load(&G.quiesce)) drain(w);
    uint64_t now = qs_now_ns();
    if (now - last_sweep >= TICK_MS * 1000000ull) {
      last_sweep = now;
      sweep(w);
    }
  }
  while (w->conns) conn_close(w->conns);
  drop_listener(w);
  qs_grpc_thread_done();
  return NULL;
}

static int listen_socket(unsigned *port_out) {
  const qs_config *cfg = &qs_g.cfg;
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", cfg->grpc_port);
  int gai = getaddrinfo(cfg->host, ps, &hints, &ai);
  if (gai != 0) {
    qs_log("grpc: cannot use --host %s: %s", cfg->host, gai_strerror(gai));
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    qs_log("grpc: cannot listen on %s:%d: %s (--grpc-port -1 disables gRPC)", cfg->host, cfg->grpc_port,
           strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* Undoes a start that failed half way (no thread is running). */
static bool start_failed(void) {
  for (unsigned i = 0; G.w && i < G.n; i++) {
    if (G.w[i].ep > 0) close(G.w[i].ep);
    if (G.w[i].evfd > 0) close(G.w[i].evfd);
  }
  free(G.w);
  G.w = NULL;
  if (G.lfd >= 0) close(G.lfd);
  G.lfd = -1;
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_option_del(options);
  callbacks = NULL;
  options = NULL;
  return false;
}

bool qs_grpc_start(void) {
  G.lfd = listen_socket(&G.port);
  if (G.lfd < 0) return false;
  if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&options) != 0) {
    qs_log("grpc: out of memory");
    return start_failed();
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
  /* Closed streams are not kept for priority bookkeeping. */
  nghttp2_option_set_no_closed_streams(options, 1);
  G.n = qs_g.cfg.threads ? qs_g.cfg.threads : 1;
  G.w = calloc(G.n, sizeof *G.w);
  if (!G.w) return start_failed();
  atomic_store(&G.listeners, (int)G.n);
  for (unsigned i = 0; i < G.n; i++) {
    worker *w = &G.w[i];
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen};
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &tag_event};
    if (w->ep < 0 || w->evfd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, G.lfd, &le) != 0 ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ee) != 0) {
      qs_log("grpc: epoll set-up failed: %s", strerror(errno));
      return start_failed();
    }
    w->listening = true;
  }
  for (unsigned i = 0; i < G.n; i++) {
    int e = pthread_create(&G.w[i].thread, NULL, worker_main, &G.w[i]);
    if (e) {
      qs_log("grpc: cannot start an I/O thread: %s", strerror(e));
      atomic_store(&G.stop, true);
      for (unsigned j = 0; j < i; j++) pthread_join(G.w[j].thread, NULL);
      atomic_store(&G.stop, false);
      return start_failed();
    }
  }
  G.started = true;
  qs_metrics_grpc_serving(); /* each model's ModelInfer series, at zero */
  return true;
}

unsigned qs_grpc_port(void) { return G.started ? G.port : 0; }

static void wake_all(void) {
  uint64_t one = 1;
  for (unsigned i = 0; i < G.n; i++) {
    ssize_t rc = write(G.w[i].evfd, &one, sizeof one);
    (void)rc; /* a full counter still wakes the thread */
  }
}

void qs_grpc_quiesce(void) {
  if (!G.started) return;
  atomic_store(&G.quiesce, true);
  wake_all();
}

void qs_grpc_stop(void) {
  if (!G.started) return;
  atomic_store(&G.stop, true);
  wake_all();
  for (unsigned i = 0; i < G.n; i++) pthread_join(G.w[i].thread, NULL);
  for (unsigned i = 0; i < G.n; i++) {
    close(G.w[i].ep);
    close(G.w[i].evfd);
  }
  if (G.lfd >= 0) close(G.lfd);
  G.lfd = -1;
  free(G.w);
  G.w = NULL;
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_option_del(options);
  G.started = false;
}
