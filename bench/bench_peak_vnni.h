/* bench_peak_vnni.h - the vpdpbusd peak loop (bench_peak.h), written once
 * for every width and encoding, as core/kernel_vnni.h is for the kernels.
 * Included by bench_peak_avx512vnni.c (zmm, and ymm in the EVEX encoding)
 * and bench_peak_avxvnni.c (ymm, VEX encoding), each compiled alone with
 * its tier's -m flags (the Makefile's *_avx512vnni.c / *_avxvnni.c rules),
 * which pick the encoding. It defines one function per inclusion: no
 * include guard, and it undefines its parameters at the end.
 *
 * The includer defines, before including:
 *   PEAK_FN            the function's name (declared in bench_peak.h)
 *   VEC, LANES         the vector type and its int32 lanes
 *   CHAINS             independent accumulators: enough to cover the
 *                      instruction's latency, and with the two inputs no
 *                      more than the encoding's vector registers (no spills)
 *   REG                asm constraint for one of those registers: "v"
 *                      (EVEX, 32 registers), "x" (VEX, 16)
 *   VSET1(i)           the int32 i in every lane
 *   VDPBUSD(a, x, w)   vpdpbusd
 *   VADD(a, b)         lane-wise int32 add
 *   VSTOREU(p, v)      unaligned store of all lanes */

/* The inputs come from the seed, so the compiler cannot fold the chains;
 * the result depends on every chain, so none is optimized away. */
int32_t PEAK_FN(long iters, int32_t seed) {
  VEC a[CHAINS], x = VSET1(seed), w = VSET1(seed * 7 + 1);
  for (int i = 0; i < CHAINS; i++) a[i] = VSET1(seed + i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < CHAINS; i++) a[i] = VDPBUSD(a[i], x, w);
    __asm__ volatile("" : "+" REG(x), "+" REG(w)); /* fresh inputs each round, for the compiler */
  }
  VEC s = a[0];
  for (int i = 1; i < CHAINS; i++) s = VADD(s, a[i]);
  int32_t o[LANES];
  VSTOREU(o, s);
  uint32_t sum = 0; /* wraps like the lanes do, without signed overflow */
  for (int i = 0; i < LANES; i++) sum += (uint32_t)o[i];
  return (int32_t)sum;
}

#undef PEAK_FN
#undef VEC
#undef LANES
#undef CHAINS
#undef REG
#undef VSET1
#undef VDPBUSD
#undef VADD
#undef VSTOREU
