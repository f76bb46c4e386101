/* page.h - the browser page (the files in web/), compiled into the binary.
 *
 * web/web.mk runs web/embed.sh to turn the files in web/ into $(BUILD)/gen/page_data.h
 * at build time; page.c includes it, so the server needs no files beside it.
 * A build without the generated header (e.g. the fuzz build) serves no page. */
#ifndef QS_PAGE_H
#define QS_PAGE_H

#include <microhttpd.h>
#include <stddef.h>

#include "api/exchange.h"

typedef struct qs_asset {
  const char *path;         /* "/" for index.html, else "/<file>" */
  const char *type;         /* Content-Type */
  const char *etag;         /* quoted: "\"<cksum>-<size>\"" */
  const unsigned char *data;
  size_t len;
} qs_asset;

/* The embedded file served at url (exact match), or NULL. */
const qs_asset *qs_page_find(const char *url);

/* Answers a GET/HEAD for r->path (which qs_page_find knows) with the file,
 * its security headers and caching headers; sets r->status, r->bytes_out and
 * r->queued like http.c's own replies. */
enum MHD_Result qs_page_send(struct MHD_Connection *c, qs_req *r, const char *url);

#endif
