/* kernel_avxvnni_twin_avx512vnni.c - the avxvnni tier's source compiled with
 * the EVEX encoding of vpdpbusd ymm (this file's name gives it the
 * AVX-512 flags, without -mavxvnni): a test-only table, never selected, so
 * the tests run that tier's code where the CPU has AVX-512 VNNI but no
 * AVX-VNNI. See kernel_avxvnni.c. */
#define QAT_AVXVNNI_EVEX 1
#include "kernel_avxvnni.c"
