/* main.c - the one place unit suites are registered.
 *
 * Each suite lives in its own file and defines `Suite *suite_NAME(void)`.
 * Declarations are weak so the runner links while a suite is still being
 * written; a missing suite is reported, never silently passed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITES(X) \
  X(quant)        \
  X(kernels)      \
  X(layer)        \
  X(model)        \
  X(safetensors)  \
  X(data)         \
  X(train)        \
  X(json)         \
  X(num)          \
  X(server)       \
  X(faults)       \
  X(page)         \
  X(options)

#define DECLARE(name) Suite *suite_##name(void) __attribute__((weak));
SUITES(DECLARE)
#undef DECLARE

int main(void) {
  SRunner *sr = srunner_create(NULL);
  int present = 0;
#define ADD(name)                                             \
  if (suite_##name) {                                         \
    srunner_add_suite(sr, suite_##name());                    \
    present++;                                                \
  } else {                                                    \
    fprintf(stderr, "note: suite '%s' not built\n", #name);   \
  }
  SUITES(ADD)
#undef ADD
  if (!present) {
    fprintf(stderr, "no suites\n");
    return 1;
  }
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
