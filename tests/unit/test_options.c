/* test_options.c - the option table: defaults, environment, flags override
 * the environment, strict numbers, and the docs' table lists every flag. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

Suite *suite_options(void);

static int parse(qs_config *c, qs_action *a, int argc, const char **argv) {
  FILE *saved = stderr;
  stderr = fopen("/dev/null", "w"); /* the error messages are expected */
  int rc = qs_options_parse(argc, (char **)argv, c, a);
  fclose(stderr);
  stderr = saved;
  return rc;
}

START_TEST(test_defaults_env_flags) {
  qs_config c;
  qs_action a;
  unsetenv("PORT");
  const char *none[] = {"qatserve", NULL};
  ck_assert_int_eq(parse(&c, &a, 1, none), 0);
  ck_assert_int_eq(a, QS_DO_SERVE);
  ck_assert_uint_eq(c.port, 8080);
  ck_assert_uint_eq(c.max_body, 4u << 20);
  ck_assert_uint_eq(c.max_batch, 1024);
  ck_assert_str_eq(c.models_dir, "models");
  ck_assert_uint_ge(c.threads, 1);
  setenv("PORT", "9000", 1);
  ck_assert_int_eq(parse(&c, &a, 1, none), 0);
  ck_assert_uint_eq(c.port, 9000);
  const char *flags[] = {"qatserve", "--port", "0", "--max-batch", "5", "--quiet",
                         "--max-body", "1000", "--max-inflight-bytes", "100", "--probe", NULL};
  ck_assert_int_eq(parse(&c, &a, 11, flags), 0);
  ck_assert_uint_eq(c.port, 0);
  ck_assert_uint_eq(c.max_batch, 5);
  ck_assert(c.quiet);
  ck_assert_uint_eq(c.max_inflight, 1000); /* raised to --max-body */
  ck_assert_int_eq(a, QS_DO_PROBE);
  unsetenv("PORT");
}
END_TEST

START_TEST(test_strict_numbers) {
  qs_config c;
  qs_action a;
  const char *bad[][3] = {{"qatserve", "--port", "65536"}, {"qatserve", "--port", "-1"},
                          {"qatserve", "--port", " 1"},    {"qatserve", "--port", "1x"},
                          {"qatserve", "--threads", "0"},  {"qatserve", "--max-body", "63"},
                          {"qatserve", "--port", ""}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *argv[] = {bad[i][0], bad[i][1], bad[i][2], NULL};
    ck_assert_msg(parse(&c, &a, 3, argv) == 2, "%s %s accepted", bad[i][1], bad[i][2]);
  }
  const char *unknown[] = {"qatserve", "--nope", NULL};
  ck_assert_int_eq(parse(&c, &a, 2, unknown), 2);
  const char *extra[] = {"qatserve", "stray", NULL};
  ck_assert_int_eq(parse(&c, &a, 2, extra), 2);
  setenv("QATSERVE_THREADS", "many", 1);
  const char *none[] = {"qatserve", NULL};
  ck_assert_int_eq(parse(&c, &a, 1, none), 2);
  unsetenv("QATSERVE_THREADS");
}
END_TEST

/* Every flag --help names is in the docs' tables too (one table). */
START_TEST(test_markdown_lists_help) {
  char *help = NULL, *md = NULL;
  size_t hn = 0, mn = 0;
  FILE *f = open_memstream(&help, &hn);
  qs_options_usage(f);
  fclose(f);
  f = open_memstream(&md, &mn);
  ck_assert_int_eq(qs_options_markdown(f, "readme"), 0);
  fclose(f);
  int flags = 0;
  for (const char *p = help; (p = strstr(p, "\n  --")); p++) {
    char name[64];
    if (sscanf(p + 3, "%63[a-z-]", name) != 1 || !strcmp(name, "--help")) continue;
    char want[80];
    snprintf(want, sizeof want, "`%s", name);
    ck_assert_msg(strstr(md, want), "%s in --help but not in the docs' table", name);
    flags++;
  }
  ck_assert_int_ge(flags, 12);
  free(help);
  free(md);
}
END_TEST

Suite *suite_options(void) {
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("options");
  tcase_add_test(tc, test_defaults_env_flags);
  tcase_add_test(tc, test_strict_numbers);
  tcase_add_test(tc, test_markdown_lists_help);
  suite_add_tcase(s, tc);
  return s;
}
