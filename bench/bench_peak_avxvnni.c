/* bench_peak_avxvnni.c - vpdpbusd ymm peak, VEX encoding (bench_peak.h):
 * the loop of bench_peak_vnni.h. 14 chains + 2 inputs = the 16 ymm
 * registers VEX can name (no spills). */
#include <immintrin.h>

#include "bench_peak.h"

#define PEAK_FN bench_peak_ymm_vex
#define VEC __m256i
#define LANES 8
#define CHAINS 14
#define REG "x"
#define VSET1(i) _mm256_set1_epi32(i)
#define VDPBUSD(a, x, w) _mm256_dpbusd_avx_epi32((a), (x), (w)) /* VEX: -mavxvnni */
#define VADD(a, b) _mm256_add_epi32((a), (b))
#define VSTOREU(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#include "bench_peak_vnni.h"
