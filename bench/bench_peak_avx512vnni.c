/* bench_peak_avx512vnni.c - vpdpbusd peak, zmm and EVEX ymm (bench_peak.h):
 * the loop of bench_peak_vnni.h, twice. EVEX has 32 vector registers: 16
 * chains + the 2 inputs fit in either width. */
#include <immintrin.h>

#include "bench_peak.h"

#define PEAK_FN bench_peak_zmm
#define VEC __m512i
#define LANES 16
#define CHAINS 16
#define REG "v"
#define VSET1(i) _mm512_set1_epi32(i)
#define VDPBUSD(a, x, w) _mm512_dpbusd_epi32((a), (x), (w))
#define VADD(a, b) _mm512_add_epi32((a), (b))
#define VSTOREU(p, v) _mm512_storeu_si512((void *)(p), (v))
#include "bench_peak_vnni.h"

#define PEAK_FN bench_peak_ymm_evex
#define VEC __m256i
#define LANES 8
#define CHAINS 16
#define REG "v"
#define VSET1(i) _mm256_set1_epi32(i)
#define VDPBUSD(a, x, w) _mm256_dpbusd_epi32((a), (x), (w)) /* EVEX: -mavx512vnni -mavx512vl */
#define VADD(a, b) _mm256_add_epi32((a), (b))
#define VSTOREU(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#include "bench_peak_vnni.h"
