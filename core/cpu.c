/* cpu.c - instruction-set detection; chooses the kernel tier once per
 * process.
 *
 * AVX2 is usable only when the CPU has it (CPUID leaf 7 EBX bit 5) AND the
 * OS saves the YMM state on context switches (CPUID leaf 1 ECX bit 27
 * OSXSAVE, then XGETBV(0) with XCR0 bits 1 (SSE) and 2 (AVX) set). The
 * AVX2 file is compiled with -mfma too, so FMA (leaf 1 ECX bit 12) is
 * required as well. AVX-512 is reported but deliberately unused: the
 * target is any AVX2 x86-64. QAT_KERNEL=ref forces the scalar reference;
 * QAT_KERNEL=avx2 asks for AVX2 and still falls back if unusable. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

typedef struct cpu_caps {
  bool sse42, avx, avx2, fma, osxsave, os_ymm, os_zmm, avx512f, avx512bw,
      avx512vnni, avxvnni;
} cpu_caps;

static const qat_kernels *chosen;
static cpu_caps caps;
static char features[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static unsigned long long xgetbv0(void) {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

static void detect(cpu_caps *c) {
  unsigned a, b, cx, d;
  memset(c, 0, sizeof *c);
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
  c->sse42 = cx & (1u << 20);
  c->fma = cx & (1u << 12);
  c->osxsave = cx & (1u << 27);
  c->avx = cx & (1u << 28);
  if (c->osxsave) {
    unsigned long long xcr0 = xgetbv0();
    c->os_ymm = (xcr0 & 0x6) == 0x6;    /* XMM and YMM state */
    c->os_zmm = (xcr0 & 0xe6) == 0xe6;  /* + opmask, ZMM hi256, hi16 ZMM */
  }
  if (__get_cpuid_max(0, NULL) >= 7) {
    __cpuid_count(7, 0, a, b, cx, d);
    c->avx2 = b & (1u << 5);
    c->avx512f = b & (1u << 16);
    c->avx512bw = b & (1u << 30);
    c->avx512vnni = cx & (1u << 11);
    __cpuid_count(7, 1, a, b, cx, d);
    c->avxvnni = a & (1u << 4);
  }
}
#else
static void detect(cpu_caps *c) { memset(c, 0, sizeof *c); }
#endif

static bool avx2_usable(const cpu_caps *c) {
  return c->avx && c->avx2 && c->fma && c->osxsave && c->os_ymm;
}

static void describe(const cpu_caps *c) {
  /* Each flag: what the CPU reports; "(unused)" marks what we do not use. */
  snprintf(features, sizeof features, "%s%s%s%s%s%s%s%s%s",
#if defined(__x86_64__)
           "x86-64",
#else
           "generic",
#endif
           c->sse42 ? " sse4.2" : "", c->avx && c->os_ymm ? " avx" : "",
           c->avx2 && c->os_ymm ? " avx2" : "", c->fma && c->os_ymm ? " fma" : "",
           c->avx512f && c->os_zmm ? " avx512f(unused)" : "",
           c->avx512bw && c->os_zmm ? " avx512bw(unused)" : "",
           c->avx512vnni && c->os_zmm ? " avx512vnni(unused)" : "",
           c->avxvnni && c->os_ymm ? " avxvnni(unused)" : "");
}

static void detect_once(void) {
  detect(&caps);
  describe(&caps);
}
static pthread_once_t detected = PTHREAD_ONCE_INIT;

const qat_kernels *qat_kernels_select(const char *qat_kernel_env) {
  pthread_once(&detected, detect_once);
  if (qat_kernel_env && strcmp(qat_kernel_env, "ref") == 0) return &qat_kernels_ref;
#if defined(__x86_64__)
  if (avx2_usable(&caps)) return &qat_kernels_avx2;
#endif
  return &qat_kernels_ref;
}

static void choose(void) { chosen = qat_kernels_select(getenv("QAT_KERNEL")); }

const qat_kernels *qat_kernels_get(void) {
  pthread_once(&once, choose);
  return chosen;
}

const char *qat_kernel_name(void) { return qat_kernels_get()->name; }

const char *qat_cpu_features(void) {
  pthread_once(&detected, detect_once);
  return features;
}

bool qat_cpu_has_avx2(void) {
  pthread_once(&detected, detect_once);
  return avx2_usable(&caps);
}
