/* http.h - the libmicrohttpd daemon: start, quiesce, stop. */
#ifndef QS_HTTP_H
#define QS_HTTP_H

struct MHD_Daemon;
struct MHD_Daemon *qs_http_start(void);
/* Stops accepting: closes the listening socket, keeps connections. */
void qs_http_quiesce(struct MHD_Daemon *d);
void qs_http_stop(struct MHD_Daemon *d);
/* The port actually bound (useful with --port 0). */
unsigned qs_http_port(struct MHD_Daemon *d);

#endif
