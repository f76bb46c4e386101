/* bench_peak.h - one core's int8 multiply-add peak, measured with
 * independent chains of one instruction (bench_peak_*.c, each compiled with
 * its tier's flags; only called when cpu.c says the tier runs here). Each
 * returns a value derived from every chain so nothing is optimized away;
 * the caller times `iters` iterations and counts ops_per_iter ops each. */
#ifndef BENCH_PEAK_H
#define BENCH_PEAK_H
#include <stdint.h>

/* 16 chains of vpdpbusd zmm: 16 x 64 multiply-adds x 2 ops per iteration. */
#define PEAK_ZMM_OPS (16.0 * 64 * 2)
int32_t bench_peak_zmm(long iters, int32_t seed);
/* 16 chains of vpdpbusd ymm, EVEX encoding (AVX512-VNNI + VL). */
#define PEAK_YMM_OPS (16.0 * 32 * 2)
int32_t bench_peak_ymm_evex(long iters, int32_t seed);
/* The same with the VEX encoding (AVX-VNNI), 14 chains (16 ymm registers). */
#define PEAK_YMM_VEX_OPS (14.0 * 32 * 2)
int32_t bench_peak_ymm_vex(long iters, int32_t seed);
/* 12 chains of the AVX2 exact-when-small triple vpmaddubsw + vpmaddwd +
 * vpaddd: 12 x 32 multiply-adds x 2 ops per iteration. */
#define PEAK_AVX2_OPS (12.0 * 32 * 2)
int32_t bench_peak_avx2(long iters, int32_t seed);
#endif
