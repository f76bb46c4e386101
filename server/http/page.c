/* page.c - serves the embedded page: GET / (index.html), /app.js, /app.css,
 * /favicon.svg.
 *
 * The bytes are static (MHD_RESPMEM_PERSISTENT: never copied or freed). Every
 * answer carries a Content-Security-Policy that allows only this origin and
 * no inline script or style, nosniff, and no-cache with an ETag so a browser
 * revalidates (304) and picks up a new page as soon as the binary changes. */
#include "http/page.h"

#include <string.h>


#define CSP                                                                              \
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " \
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "          \
  "frame-ancestors 'none'"

#ifdef QS_PAGE_EMBED
#include "page_data.h" /* $(BUILD)/gen, made by web/embed.sh */

const qs_asset *qs_page_find(const char *url) {
  for (size_t i = 0; i < sizeof qs_assets / sizeof *qs_assets; i++)
    if (strcmp(qs_assets[i].path, url) == 0) return &qs_assets[i];
  return NULL;
}
#else
const qs_asset *qs_page_find(const char *url) {
  (void)url;
  return NULL;
}
#endif

/* If-None-Match may list several tags, or be "*". */
static int etag_matches(const char *inm, const char *etag) {
  if (!inm) return 0;
  if (strcmp(inm, "*") == 0) return 1;
  size_t n = strlen(etag);
  for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
    char after = p[n];
    if (after == '\0' || after == ',' || after == ' ') return 1;
  }
  return 0;
}

enum MHD_Result qs_page_send(struct MHD_Connection *c, qs_req *r, const char *url) {
  const qs_asset *a = qs_page_find(url);
  if (!a) return MHD_NO; /* http.c routes here only for known paths */
  const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
  int status = etag_matches(inm, a->etag) ? 304 : 200;
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      status == 304 ? 0 : a->len, status == 304 ? NULL : (void *)a->data, MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(resp, "Content-Security-Policy", CSP);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  r->status = status;
  r->bytes_out = status == 304 || r->head ? 0 : a->len;
  r->queued = true;
  return ret;
}
