/* test_page.c - the embedded page: every file of web/ is in the binary at
 * its path with the right type, its bytes equal the file on disk, and what
 * index.html links to is served. Runs from the repository root (make unit). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/page.h"

Suite *suite_page(void);

/* Reads a whole file; NULL if missing. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  ck_assert_ptr_nonnull(b);
  size_t r;
  while ((r = fread(b + len, 1, cap - len, f)) > 0) {
    len += r;
    if (len == cap) {
      cap *= 2;
      b = realloc(b, cap);
      ck_assert_ptr_nonnull(b);
    }
  }
  fclose(f);
  *n = len;
  return b;
}

static void same_as_file(const char *url, const char *file, const char *type) {
  const qs_asset *a = qs_page_find(url);
  ck_assert_msg(a != NULL, "%s is not embedded", url);
  ck_assert_str_eq(a->path, url);
  ck_assert_msg(strncmp(a->type, type, strlen(type)) == 0, "%s served as %s", url, a->type);
  size_t n = 0;
  unsigned char *want = slurp(file, &n);
  ck_assert_msg(want != NULL, "cannot read %s", file);
  ck_assert_uint_eq(a->len, n);
  ck_assert_int_eq(memcmp(a->data, want, n), 0);
  ck_assert_int_eq(a->data[n], 0); /* the generator's trailing NUL */
  /* "<cksum>-<size>" quoted, and the size part is the length. */
  char tail[32];
  snprintf(tail, sizeof tail, "-%zu\"", n);
  ck_assert_msg(a->etag[0] == '"' && strlen(a->etag) > strlen(tail) &&
                    strcmp(a->etag + strlen(a->etag) - strlen(tail), tail) == 0,
                "etag %s", a->etag);
  free(want);
}

START_TEST(test_assets_match_files) {
  same_as_file("/", "web/index.html", "text/html");
  same_as_file("/app.js", "web/app.js", "text/javascript");
  same_as_file("/app.css", "web/app.css", "text/css");
  same_as_file("/favicon.svg", "web/favicon.svg", "image/svg+xml");
}
END_TEST

START_TEST(test_unknown_paths) {
  ck_assert_ptr_null(qs_page_find("/index.html.bak"));
  ck_assert_ptr_null(qs_page_find(""));
  ck_assert_ptr_null(qs_page_find("/app.js/"));
  ck_assert_ptr_null(qs_page_find("/APP.JS"));
  ck_assert_ptr_null(qs_page_find("//"));
  ck_assert_ptr_null(qs_page_find("/models")); /* the API keeps its routes */
}
END_TEST

/* Every src= and href= in index.html that is a path on this server is
 * served, and nothing points elsewhere (the CSP would block it anyway). */
START_TEST(test_index_links_resolve) {
  const qs_asset *a = qs_page_find("/");
  ck_assert_ptr_nonnull(a);
  const char *html = (const char *)a->data;
  int local = 0;
  for (const char *p = html; (p = strstr(p, "=\"")) != NULL; p += 2) {
    bool attr = (p - html >= 4 && strncmp(p - 4, " src", 4) == 0) ||
                (p - html >= 5 && strncmp(p - 5, " href", 5) == 0);
    if (!attr) continue;
    const char *v = p + 2, *e = strchr(v, '"');
    ck_assert_ptr_nonnull(e);
    char url[128];
    size_t n = (size_t)(e - v);
    ck_assert_uint_lt(n, sizeof url);
    memcpy(url, v, n);
    url[n] = '\0';
    ck_assert_msg(url[0] == '/' && url[1] != '/', "link to elsewhere: %s", url);
    /* /metrics, /models, /v2 are the API's; the rest must be embedded. */
    if (strcmp(url, "/metrics") && strcmp(url, "/models") && strcmp(url, "/v2")) {
      ck_assert_msg(qs_page_find(url) != NULL, "index.html links %s, which is not served", url);
      local++;
    }
  }
  ck_assert_int_ge(local, 3); /* app.css, app.js, favicon.svg */
  ck_assert_ptr_null(strstr(html, "<style"));
  ck_assert_ptr_null(strstr(html, " style="));
  ck_assert_ptr_null(strstr(html, "<script>"));
}
END_TEST

Suite *suite_page(void) {
  Suite *s = suite_create("page");
  TCase *tc = tcase_create("embedded");
  tcase_add_test(tc, test_assets_match_files);
  tcase_add_test(tc, test_unknown_paths);
  tcase_add_test(tc, test_index_links_resolve);
  suite_add_tcase(s, tc);
  return s;
}
