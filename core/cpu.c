/* cpu.c - chooses the kernel tier once per process.
 * (The kernel work replaces this with CPUID + XGETBV detection.) */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

static const qat_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) { chosen = &qat_kernels_ref; }

const qat_kernels *qat_kernels_get(void) {
  pthread_once(&once, choose);
  return chosen;
}

const char *qat_kernel_name(void) { return qat_kernels_get()->name; }

const char *qat_cpu_features(void) { return "x86-64"; }
