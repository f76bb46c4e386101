/* deadline.c - see deadline.h. */
#include "http/deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "base/config.h"
#include "base/log.h"

typedef struct conn_entry {
  struct conn_entry *prev, *next;
  MHD_socket fd;
  _Atomic uint64_t deadline_ns; /* 0: none (a reply is going out) */
  _Atomic uint64_t body_ns;     /* last body bytes kept; 0: no body in progress */
  bool cut;
} conn_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static conn_entry head = {&head, &head, MHD_INVALID_SOCKET, 0, 0, false};
static uint64_t timeout_ns;
static pthread_t reaper;
static bool running;
static atomic_bool stop_flag;
static atomic_ulong cuts;

void qs_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code) {
  (void)cls;
  if (!timeout_ns) return;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_entry *e = calloc(1, sizeof *e);
    if (!e || !i) { /* untracked: only the idle timeout applies */
      free(e);
      return;
    }
    e->fd = i->connect_fd;
    atomic_init(&e->deadline_ns, qs_now_ns() + timeout_ns);
    pthread_mutex_lock(&lock);
    e->next = head.next;
    e->prev = &head;
    head.next->prev = e;
    head.next = e;
    pthread_mutex_unlock(&lock);
    *socket_context = e;
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    conn_entry *e = *socket_context;
    if (!e) return;
    /* Unlinked before libmicrohttpd closes the fd, under the lock the
     * reaper holds: it never shuts down a reused descriptor. */
    pthread_mutex_lock(&lock);
    e->prev->next = e->next;
    e->next->prev = e->prev;
    pthread_mutex_unlock(&lock);
    free(e);
    *socket_context = NULL;
  }
}

static conn_entry *entry_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}

void qs_deadline_clear(struct MHD_Connection *c) {
  conn_entry *e = timeout_ns ? entry_of(c) : NULL;
  if (e) {
    atomic_store(&e->deadline_ns, 0);
    atomic_store(&e->body_ns, 0);
  }
}

void qs_deadline_rearm(struct MHD_Connection *c) {
  conn_entry *e = timeout_ns ? entry_of(c) : NULL;
  if (e) {
    atomic_store(&e->body_ns, 0);
    atomic_store(&e->deadline_ns, qs_now_ns() + timeout_ns);
  }
}

void qs_deadline_body(struct MHD_Connection *c, bool holding) {
  conn_entry *e = timeout_ns ? entry_of(c) : NULL;
  if (e) atomic_store(&e->body_ns, holding ? qs_now_ns() : 0);
}

/* The budget is short when more than half of it is held: then a body that
 * has not moved for QS_BODY_STALL_S is cut (nginx's client_body_timeout,
 * applied only under pressure), so stalled clients cannot starve the rest. */
static bool budget_short(void) {
  return atomic_load(&qs_g.body_bytes) > qs_g.cfg.max_inflight / 2;
}

unsigned long qs_deadline_cut_count(void) { return atomic_load(&cuts); }

static void *reap(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_flag)) {
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t now = qs_now_ns();
    unsigned long n = 0, stalled = 0;
    bool short_ = budget_short();
    pthread_mutex_lock(&lock);
    for (conn_entry *e = head.next; e != &head; e = e->next) {
      uint64_t d = atomic_load(&e->deadline_ns), b = atomic_load(&e->body_ns);
      if (e->cut) continue;
      if (d && now > d) {
        e->cut = true;
        shutdown(e->fd, SHUT_RDWR);
        n++;
      } else if (short_ && b && now - b > (uint64_t)QS_BODY_STALL_S * 1000000000u) {
        e->cut = true;
        shutdown(e->fd, SHUT_RDWR);
        stalled++;
      }
    }
    pthread_mutex_unlock(&lock);
    if (stalled) {
      atomic_fetch_add(&cuts, stalled);
      qs_log("closed %lu connection(s) whose request body stalled for %d s while more than "
             "half of --max-inflight-bytes was held", stalled, QS_BODY_STALL_S);
    }
    if (n) {
      atomic_fetch_add(&cuts, n);
      qs_log("closed %lu connection(s) that sent no complete request within %llu s", n,
             (unsigned long long)(timeout_ns / 1000000000u));
    }
  }
  return NULL;
}

void qs_deadline_start(unsigned timeout_s) {
  timeout_ns = (uint64_t)timeout_s * 1000000000u;
  if (!timeout_ns) return;
  atomic_store(&stop_flag, false);
  running = pthread_create(&reaper, NULL, reap, NULL) == 0;
  if (!running) qs_log("no request deadline: cannot start its thread");
}

void qs_deadline_stop(void) {
  if (!running) return;
  atomic_store(&stop_flag, true);
  pthread_join(reaper, NULL);
  running = false;
}
