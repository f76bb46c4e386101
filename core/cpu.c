/* cpu.c - instruction-set detection; chooses the kernel tier once per
 * process.
 *
 * A tier is usable only when the CPU has every instruction set its file is
 * compiled with (Makefile: one pattern rule per tier) AND the OS saves the
 * registers it uses on context switches:
 *   avx2:       CPUID.1:ECX bits 12 (FMA), 27 (OSXSAVE), 28 (AVX);
 *               CPUID.7.0:EBX bit 5 (AVX2); XCR0 bits 1, 2 (XMM, YMM state).
 *   avxvnni:    avx2's + CPUID.7.1:EAX bit 4 (AVX-VNNI, VEX vpdpbusd).
 *   avx512vnni: avx2's + CPUID.7.0:EBX bits 16 (AVX512F), 30 (AVX512BW),
 *               31 (AVX512VL), CPUID.7.0:ECX bit 11 (AVX512_VNNI); XCR0
 *               bits 5, 6, 7 as well (opmask, upper ZMM0-15, ZMM16-31).
 * The default is the fastest usable tier. QAT_KERNEL=ref|avx2|avxvnni|
 * avx512vnni forces one; an unknown name or a tier the machine cannot run
 * is an error with a message naming what is missing (qat_kernel_check), and
 * qat__kernels_get then returns NULL: never a fallback that hides the
 * mistake, never an instruction the CPU lacks (SIGILL). */
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
  bool sse42, avx, avx2, fma, osxsave, os_ymm, os_zmm, avx512f, avx512bw, avx512vl,
      avx512vnni, avxvnni;
} cpu_caps;

static cpu_caps caps;
static char features[200];
static pthread_once_t detected = PTHREAD_ONCE_INIT;

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
    unsigned max_sub = a;
    c->avx2 = b & (1u << 5);
    c->avx512f = b & (1u << 16);
    c->avx512bw = b & (1u << 30);
    c->avx512vl = b & (1u << 31);
    c->avx512vnni = cx & (1u << 11);
    if (max_sub >= 1) {
      __cpuid_count(7, 1, a, b, cx, d);
      c->avxvnni = a & (1u << 4);
    }
  }
}
#else
static void detect(cpu_caps *c) { memset(c, 0, sizeof *c); }
#endif

/* What tier t needs that this machine lacks, "" when nothing. */
static const char *missing(const cpu_caps *c, const char *tier) {
  if (strcmp(tier, "ref") == 0) return "";
#if defined(__x86_64__)
  if (!c->avx || !c->osxsave) return "AVX (CPUID.1:ECX bits 28, 27)";
  if (!c->os_ymm) return "OS support for YMM state (XCR0 bits 1-2)";
  if (!c->avx2) return "AVX2 (CPUID.7:EBX bit 5)";
  if (!c->fma) return "FMA (CPUID.1:ECX bit 12)";
  if (strcmp(tier, "avx2") == 0) return "";
  if (strcmp(tier, "avxvnni") == 0)
    return c->avxvnni ? "" : "AVX-VNNI (CPUID.(EAX=7,ECX=1):EAX bit 4)";
  if (strcmp(tier, "avx512vnni") == 0 || strcmp(tier, "avxvnni-evex") == 0) {
    if (!c->avx512f) return "AVX512F (CPUID.7:EBX bit 16)";
    if (!c->avx512bw) return "AVX512BW (CPUID.7:EBX bit 30)";
    if (!c->avx512vl) return "AVX512VL (CPUID.7:EBX bit 31)";
    if (!c->avx512vnni) return "AVX512_VNNI (CPUID.7:ECX bit 11)";
    if (!c->os_zmm) return "OS support for AVX-512 state (XCR0 bits 5-7)";
    return "";
  }
  return "a tier unknown to this build";
#else
  (void)c;
  return "an x86-64 CPU";
#endif
}

static void describe(const cpu_caps *c) {
  snprintf(features, sizeof features, "%s%s%s%s%s%s%s%s%s%s",
#if defined(__x86_64__)
           "x86-64",
#else
           "generic",
#endif
           c->sse42 ? " sse4.2" : "", c->avx && c->os_ymm ? " avx" : "",
           c->avx2 && c->os_ymm ? " avx2" : "", c->fma && c->os_ymm ? " fma" : "",
           c->avx512f && c->os_zmm ? " avx512f" : "",
           c->avx512bw && c->os_zmm ? " avx512bw" : "",
           c->avx512vl && c->os_zmm ? " avx512vl" : "",
           c->avx512vnni && c->os_zmm ? " avx512vnni" : "",
           c->avxvnni && c->os_ymm ? " avxvnni" : "");
}

static void detect_once(void) {
  detect(&caps);
  describe(&caps);
}

/* Selectable tiers, fastest first. */
static const qat_kernels *const tiers[] = {
#if defined(__x86_64__)
    &qat__kernels_avx512vnni, &qat__kernels_avxvnni, &qat__kernels_avx2,
#endif
    &qat__kernels_ref,
};
#define NTIERS (sizeof tiers / sizeof *tiers)

bool qat__kernels_runnable(const qat_kernels *t) {
  pthread_once(&detected, detect_once);
  return t && missing(&caps, t->name)[0] == '\0';
}

qat_err qat__kernels_select(const char *env, const qat_kernels **out) {
  pthread_once(&detected, detect_once);
  *out = NULL;
  if (!env || !env[0]) {
    for (size_t i = 0; i < NTIERS; i++)
      if (qat__kernels_runnable(tiers[i])) {
        *out = tiers[i];
        return QAT_OK;
      }
    return qat__fail(QAT_EUNSUPPORTED, "no int8 kernel tier runs here"); /* unreachable: ref */
  }
  for (size_t i = 0; i < NTIERS; i++)
    if (strcmp(env, tiers[i]->name) == 0) {
      const char *miss = missing(&caps, env);
      if (miss[0])
        return qat__fail(QAT_EUNSUPPORTED,
                        "QAT_KERNEL=%s: this CPU/OS lacks %s (cpu: %s); unset QAT_KERNEL "
                        "to use the fastest tier available", env, miss, features);
      *out = tiers[i];
      return QAT_OK;
    }
  return qat__fail(QAT_EINVAL,
                  "QAT_KERNEL=%s: unknown kernel tier (use ref, avx2, avxvnni or avx512vnni, "
                  "or unset it)", env);
}

size_t qat__kernels_available(const qat_kernels **out, size_t cap, bool with_twins) {
  size_t n = 0;
  for (size_t i = 0; i < NTIERS; i++)
    if (qat__kernels_runnable(tiers[i]) && n < cap) out[n++] = tiers[i];
#if defined(__x86_64__)
  if (with_twins && qat__kernels_runnable(&qat__kernels_avxvnni_evex) && n < cap)
    out[n++] = &qat__kernels_avxvnni_evex;
#endif
  return n;
}

static const qat_kernels *chosen;
static qat_err chosen_err;
static char chosen_msg[400];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
  chosen_err = qat__kernels_select(getenv("QAT_KERNEL"), &chosen);
  if (chosen_err) snprintf(chosen_msg, sizeof chosen_msg, "%s", qat_errmsg());
}

const qat_kernels *qat__kernels_get(void) {
  pthread_once(&once, choose);
  return chosen;
}

qat_err qat_kernel_check(void) {
  pthread_once(&once, choose);
  return chosen_err ? qat__fail(chosen_err, "%s", chosen_msg) : QAT_OK;
}

const char *qat_kernel_name(void) {
  const qat_kernels *k = qat__kernels_get();
  return k ? k->name : "none";
}

const char *qat_fp32_row_kernel(void) {
  const qat_kernels *k = qat__kernels_get();
  if (!k) return "none";
  if (!k->gemv_f32) return "OpenBLAS sgemv";
  /* The tiers that have one (kernels.h). */
  return k == &qat__kernels_ref ? "ref gemv" : "avx512vnni gemv";
}

const char *qat_cpu_features(void) {
  pthread_once(&detected, detect_once);
  return features;
}

bool qat__cpu_has_avx2(void) {
  pthread_once(&detected, detect_once);
  return missing(&caps, "avx2")[0] == '\0';
}
