/* fuzz_framing.c - request framing and media-type decisions (server/http/
 * framing.c) on arbitrary header blocks. The input is "Name: value" lines;
 * line 1 may be "HTTP/1.0". Oracle: an independent, simpler statement of
 * the rules (RFC 9112 §6) must agree with the verdict, and a type is only
 * ever taken as binary when the exact media type is there. */
#include <assert.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/framing.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static bool all_digits(const char *s) {
  if (!*s) return false;
  size_t n = 0;
  for (; *s; s++, n++)
    if (*s < '0' || *s > '9') return false;
  return n <= 19;
}

/* The reference: the coding list split on ',' with OWS trimmed and empty
 * elements dropped must be exactly one "chunked". 0 ok, 400, 501. */
static int ref_te(const char *te) {
  int codings = 0, chunked = 0;
  bool other = false, last_chunked = false;
  const char *p = te;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    size_t b = 0;
    while (b < n && (p[b] == ' ' || p[b] == '\t')) b++;
    while (n > b && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (n > b) {
      codings++;
      last_chunked = n - b == 7 && strncasecmp(p + b, "chunked", 7) == 0;
      if (last_chunked) chunked++;
      else other = true;
    }
    if (!e) break;
    p = e + 1;
  }
  if (other) return 501;
  return codings == 1 && chunked == 1 && last_chunked ? 0 : 400;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  bool http10 = strncmp(text, "HTTP/1.0", 8) == 0;
  qs_framing f;
  memset(&f, 0, sizeof f);
  unsigned n_cl = 0, n_te = 0;
  const char *cl = NULL;
  char te[256] = "";
  bool te_long = false;
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    char *colon = strchr(line, ':');
    if (!colon) continue;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ') v++;
    qs_framing_add(&f, line, v);
    if (strcasecmp(line, "Content-Length") == 0 && n_cl++ == 0) cl = v;
    if (strcasecmp(line, "Transfer-Encoding") == 0) {
      n_te++;
      size_t have = strlen(te), add = strlen(v);
      if (have + (have ? 1 : 0) + add >= sizeof te) te_long = true;
      else {
        if (have) te[have++] = ',';
        memcpy(te + have, v, add + 1);
      }
    }
    /* Media types: binary only for the exact type. */
    qs_body_type bt = qs_body_type_of(v);
    if (bt == QS_BODY_BINARY) assert(strcasestr(v, "application/octet-stream"));
    if (qs_accept_binary(v)) assert(strcasestr(v, "application/octet-stream"));
  }
  char why[160];
  int got = qs_framing_verdict(&f, http10, why, sizeof why);
  int want = 0;
  if (n_te) want = http10 || n_cl || te_long ? 400 : ref_te(te);
  else if (n_cl > 1) want = 400;
  else if (n_cl == 1 && !all_digits(cl)) want = 400;
  assert(got == want);
  assert(got == 0 || why[0]);
  free(text);
  return 0;
}
