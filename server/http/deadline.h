/* deadline.h - a whole-request deadline on every connection.
 *
 * libmicrohttpd's --conn-timeout counts from the last byte received, so a
 * client trickling its headers (or body) a byte a second would hold a
 * connection slot forever. Here each connection must deliver each complete
 * request within --conn-timeout of connecting or of the previous reply; a
 * reaper thread shuts down the socket of any that does not (libmicrohttpd
 * then sees the end of the stream and closes the connection the usual way).
 *
 * Threads: the notify and request hooks run on libmicrohttpd's threads, the
 * reaper on its own; one mutex guards the list of open connections. */
#ifndef QS_DEADLINE_H
#define QS_DEADLINE_H

#include <microhttpd.h>
#include <stdbool.h>

/* Starts the reaper (timeout_s 0: no deadline, nothing started). */
void qs_deadline_start(unsigned timeout_s);
void qs_deadline_stop(void);

/* MHD_OPTION_NOTIFY_CONNECTION callback: tracks connections. */
void qs_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
/* A request on c was answered (no deadline while its reply goes out). */
void qs_deadline_clear(struct MHD_Connection *c);
/* A request on c completed: the next one has until now + timeout. */
void qs_deadline_rearm(struct MHD_Connection *c);
/* The request on c holds body bytes (true: some just arrived) or not. A
 * body that stops arriving for QS_BODY_STALL_S while more than half of
 * --max-inflight-bytes is held is cut, freeing its share for the others. */
#define QS_BODY_STALL_S 2
void qs_deadline_body(struct MHD_Connection *c, bool holding);
/* Connections cut so far, for logs and tests. */
unsigned long qs_deadline_cut_count(void);

#endif
