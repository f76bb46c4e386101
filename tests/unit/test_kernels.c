/* test_kernels.c - every kernel tier against the scalar reference, exactly:
 * random shapes (odd, prime, tails, K = 1, N = 1, K and N past the
 * blocking sizes), values that would saturate vpmaddubsw (all 255 against
 * +127 / -127 / -128), the requantization step with ties and clamps, and
 * the tier selection (QAT_KERNEL=ref). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "internal.h"
#include "kernels.h"
#include "layer.h"

Suite *suite_kernels(void);

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* The tiers other than the reference that this machine can run, with the
 * test-only twin of avxvnni (its code in the EVEX encoding) when AVX-512
 * VNNI is here. Each test prints nothing per tier; a mismatch names it. */
static const qat_kernels *fast[8];
static void fast_tiers(size_t *n) {
  const qat_kernels *all[8];
  size_t na = qat__kernels_available(all, 8, true);
  *n = 0;
  for (size_t i = 0; i < na; i++)
    if (all[i] != &qat__kernels_ref) fast[(*n)++] = all[i];
}
#define TIER(i) (fast[i])

/* FILL_LOW (all < 128) and FILL_ONEHI (all < 128 but one) steer the
 * batch-1 path, which skips its high-bit part when no x reaches 128. */
enum { FILL_RANDOM, FILL_MAX, FILL_ALT, FILL_ZERO, FILL_LOW, FILL_ONEHI };

static void fill_x(uint8_t *x, size_t n, int how) {
  for (size_t i = 0; i < n; i++)
    x[i] = how == FILL_MAX ? 255 : how == FILL_ALT ? (i & 1 ? 0 : 255)
         : how == FILL_ZERO ? 0 : how >= FILL_LOW ? (uint8_t)(rnd() & 127) : (uint8_t)rnd();
  if (how == FILL_ONEHI && n) x[rnd() % n] = (uint8_t)(128 + rnd() % 128);
}

/* w = constant v, or alternating 127/-128 (v == 1000), or random (v == 0). */
static void fill_w(int8_t *w, size_t n, int v) {
  for (size_t i = 0; i < n; i++)
    w[i] = v == 1000 ? (i & 1 ? -128 : 127) : v == 0 ? (int8_t)rnd() : (int8_t)v;
}

/* Runs tier t and the reference on the same x/w and compares every int32,
 * also checking t writes nothing past acc[M*N). Returns the mismatches. */
static size_t compare(const qat_kernels *t, const uint8_t *x, size_t M, size_t K,
                      size_t ldx, const int8_t *w, size_t N) {
  void *pr = qat__malloc_aligned(qat__kernels_ref.packed_size(N, K));
  size_t psz = t->packed_size(N, K);
  unsigned char *pt = qat__malloc_aligned(psz + 64);
  int32_t *ar = qat__calloc(M * N, sizeof *ar);
  int32_t *at = qat__calloc(M * N + 16, sizeof *at);
  ck_assert(pr && pt && ar && at);
  for (size_t i = 0; i < M * N + 16; i++) at[i] = 0x5a5a5a5a;
  memset(pt + psz, 0xa5, 64); /* pack must stay inside packed_size */
  qat__kernels_ref.pack(w, N, K, pr);
  t->pack(w, N, K, pt);
  qat__kernels_ref.gemm_u8s8(x, M, K, ldx, pr, N, ar);
  t->gemm_u8s8(x, M, K, ldx, pt, N, at);
  size_t bad = 0;
  for (size_t i = 0; i < M * N; i++)
    if (ar[i] != at[i]) {
      if (bad < 3)
        fprintf(stderr, "%s M=%zu N=%zu K=%zu at m=%zu n=%zu: ref %d got %d\n",
                t->name, M, N, K, i / N, i % N, ar[i], at[i]);
      bad++;
    }
  for (size_t i = M * N; i < M * N + 16; i++) ck_assert_int_eq(at[i], 0x5a5a5a5a);
  for (size_t i = 0; i < 64; i++) ck_assert_int_eq(pt[psz + i], 0xa5);
  qat__free_aligned(pr);
  qat__free_aligned(pt);
  qat__free(ar);
  qat__free(at);
  return bad;
}

static size_t run_case(const qat_kernels *t, size_t M, size_t N, size_t K,
                       size_t pad, int xhow, int wv) {
  size_t ldx = K + pad;
  uint8_t *x = qat__malloc(M * ldx);
  int8_t *w = qat__malloc(N * K);
  ck_assert(x && w);
  fill_x(x, M * ldx, xhow);
  fill_w(w, N * K, wv);
  size_t bad = compare(t, x, M, K, ldx, w, N);
  qat__free(x);
  qat__free(w);
  return bad;
}

/* The reference itself on cases with a closed form, so the specification
 * is checked against arithmetic and not only against itself. */
START_TEST(reference_closed_form) {
  const size_t K = 1001, N = 3, M = 2;
  uint8_t x[2 * 1001];
  int8_t w[3 * 1001];
  int32_t acc[6];
  memset(x, 255, sizeof x);
  memset(w, 0x80, 1001); /* -128 */
  memset(w + 1001, 127, 1001);
  memset(w + 2002, 0x81, 1001); /* -127 */
  qat__kernels_ref.gemm_u8s8(x, M, K, K, w, N, acc);
  for (size_t m = 0; m < M; m++) {
    ck_assert_int_eq(acc[m * N + 0], -255 * 128 * 1001);
    ck_assert_int_eq(acc[m * N + 1], 255 * 127 * 1001);
    ck_assert_int_eq(acc[m * N + 2], -255 * 127 * 1001);
  }
}
END_TEST

START_TEST(gemm_adversarial_values) {
  size_t nt;
  fast_tiers(&nt);
  static const int wvals[] = {127, -127, -128, 1000, 0};
  static const int xs[] = {FILL_MAX, FILL_ALT, FILL_RANDOM, FILL_ZERO, FILL_LOW, FILL_ONEHI};
  /* M around the row blocks (6, 8), N around the panels (8, 16) and their
   * groups (3 x 16, 8 x 16), K with every remainder mod 4, 16 and 64. */
  static const size_t shapes[][3] = {{1, 256, 784}, {16, 10, 128}, {5, 33, 257},
                                     {64, 17, 1},   {3, 1, 4099},  {1, 1, 1},
                                     {9, 49, 67},   {17, 129, 65}, {1, 129, 63},
                                     {8, 48, 2},    {7, 97, 131}};
  for (size_t i = 0; i < nt; i++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
      for (size_t a = 0; a < sizeof xs / sizeof *xs; a++)
        for (size_t b = 0; b < sizeof wvals / sizeof *wvals; b++)
          ck_assert_uint_eq(run_case(TIER(i), shapes[s][0], shapes[s][1], shapes[s][2],
                                     s & 1, xs[a], wvals[b]),
                            0);
  /* A tier that saturated like vpmaddubsw would fail this one: all 255
   * against all +127 gives 64770 per pair. Check the value, not only
   * agreement. */
  for (size_t i = 0; i < nt; i++) {
    uint8_t x[64];
    int8_t w[64];
    int32_t acc[1];
    memset(x, 255, sizeof x);
    memset(w, 127, sizeof w);
    void *p = qat__malloc_aligned(TIER(i)->packed_size(1, 64));
    ck_assert_ptr_nonnull(p);
    TIER(i)->pack(w, 1, 64, p);
    TIER(i)->gemm_u8s8(x, 1, 64, 64, p, 1, acc);
    ck_assert_int_eq(acc[0], 255 * 127 * 64);
    qat__free_aligned(p);
  }
}
END_TEST

START_TEST(gemm_random_shapes) {
  size_t nt;
  fast_tiers(&nt);
  static const size_t dims[] = {1, 2, 3, 5, 7, 8, 9, 10, 13, 15, 16, 17, 23, 24, 25, 31,
                                33, 47, 63, 64, 65, 97, 127, 128, 129, 131, 251, 255, 257,
                                509, 784, 1021};
  const size_t nd = sizeof dims / sizeof *dims;
  for (size_t i = 0; i < nt; i++)
    for (int r = 0; r < 150; r++) {
      size_t M = 1 + rnd() % 300, N = dims[rnd() % nd], K = dims[rnd() % nd];
      if (r % 3 == 0) M = 1 + rnd() % 9; /* the small-batch paths */
      while (M * N * K > 3000000) M = M / 2 + 1;
      static const int fills[] = {FILL_RANDOM, FILL_LOW, FILL_ONEHI};
      ck_assert_uint_eq(run_case(TIER(i), M, N, K, rnd() % 3, fills[rnd() % 3], 0), 0);
    }
}
END_TEST

/* Past the K block (KC = 1024) and the N block (L2-sized): partial sums
 * are carried across blocks. */
START_TEST(gemm_blocking_edges) {
  size_t nt;
  fast_tiers(&nt);
  static const size_t shapes[][3] = {{1, 300, 4099}, {7, 261, 2048}, {5, 37, 2049},
                                     {9, 1031, 784}, {2, 3, 6151}, {1, 33, 6151},
                                     {1, 9, 2049}, {1, 1031, 784}};
  for (size_t i = 0; i < nt; i++)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
      ck_assert_uint_eq(run_case(TIER(i), shapes[s][0], shapes[s][1], shapes[s][2], 0,
                                 FILL_RANDOM, 0),
                        0);
      ck_assert_uint_eq(run_case(TIER(i), shapes[s][0], shapes[s][1], shapes[s][2], 1,
                                 FILL_MAX, -128),
                        0);
      for (int r = 0; r < 4; r++)
        ck_assert_uint_eq(run_case(TIER(i), shapes[s][0], shapes[s][1], shapes[s][2], 0,
                                   FILL_ONEHI, r == 0 ? -128 : 0),
                          0);
    }
}
END_TEST

START_TEST(requant_reference_values) {
  /* Ties go to even; relu clamps at out_zp; the top at hi. */
  int32_t acc[6] = {3, 5, -3, 1000000, -1000000, 7};
  int32_t bias[6] = {0, 0, 0, 0, 0, -8};
  float mult[6] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  uint8_t out[6];
  qat__kernels_ref.requant_u8(acc, 1, 6, bias, mult, 10, 0, 255, out, 6);
  ck_assert_int_eq(out[0], 12); /* 1.5 -> 2 */
  ck_assert_int_eq(out[1], 12); /* 2.5 -> 2 */
  ck_assert_int_eq(out[2], 8);  /* -1.5 -> -2 */
  ck_assert_int_eq(out[3], 255);
  ck_assert_int_eq(out[4], 0);
  ck_assert_int_eq(out[5], 10); /* -0.5 -> -0 */
  qat__kernels_ref.requant_u8(acc, 1, 6, bias, mult, 10, 10, 200, out, 6);
  ck_assert_int_eq(out[2], 10);
  ck_assert_int_eq(out[3], 200);
  /* A product beyond int32 clamps instead of overflowing. */
  int32_t big = 2000000000;
  float m = 4.0f;
  uint8_t o;
  qat__kernels_ref.requant_u8(&big, 1, 1, bias, &m, 0, 0, 255, &o, 1);
  ck_assert_int_eq(o, 255);
}
END_TEST

START_TEST(requant_tiers_equal) {
  size_t nt;
  fast_tiers(&nt);
  for (size_t i = 0; i < nt; i++)
    for (int r = 0; r < 300; r++) {
      size_t M = 1 + rnd() % 5, N = 1 + rnd() % 200, ldo = N + rnd() % 4;
      int32_t *acc = qat__malloc(M * N * sizeof *acc);
      int32_t *bias = qat__malloc(N * sizeof *bias);
      float *mult = qat__malloc(N * sizeof *mult);
      uint8_t *o1 = qat__calloc(M * ldo, 1), *o2 = qat__calloc(M * ldo, 1);
      ck_assert(acc && bias && mult && o1 && o2);
      int kind = r % 4;
      for (size_t k = 0; k < M * N; k++) {
        /* Small odd values with mult 0.5 make exact ties; large values
         * with tiny multipliers exercise float rounding of the int32. */
        acc[k] = kind == 0 ? (int32_t)(rnd() % 2001) - 1000
                           : (int32_t)(rnd() % 2000000001u) - 1000000000;
      }
      for (size_t c = 0; c < N; c++) {
        bias[c] = (int32_t)(rnd() % 200001) - 100000;
        mult[c] = kind == 0 ? 0.5f
                : kind == 1 ? (float)(rnd() % 1000 + 1) * 1e-9f
                : kind == 2 ? (float)(rnd() % 1000 + 1) * 1e-6f
                            : (float)(rnd() % 1000 + 1) * 1e-3f;
      }
      int32_t zp = (int32_t)(rnd() % 256), lo = r & 1 ? zp : 0, hi = r % 7 == 0 ? 127 : 255;
      if (lo > hi) lo = hi;
      qat__kernels_ref.requant_u8(acc, M, N, bias, mult, zp, lo, hi, o1, ldo);
      TIER(i)->requant_u8(acc, M, N, bias, mult, zp, lo, hi, o2, ldo);
      ck_assert_mem_eq(o1, o2, M * ldo);
      qat__free(acc);
      qat__free(bias);
      qat__free(mult);
      qat__free(o1);
      qat__free(o2);
    }
}
END_TEST

/* The requantization step written straight from DESIGN.md, independent of
 * every tier: out = clamp(rint((float)(acc + bias) * mult) + zp, lo, hi),
 * out_zp added in float before the clamp. The table's requant_u8 (clamp the
 * rounded float to [lo - zp, hi - zp], then add zp as an integer) must be
 * the same function: checked on every tier, with ties, clamps at both ends
 * and products beyond 2^24. */
static void spec_requant_u8(const int32_t *acc, size_t M, size_t N,
                            const int32_t *bias, const float *mult, int32_t zp,
                            int32_t lo, int32_t hi, uint8_t *out) {
  for (size_t m = 0; m < M; m++)
    for (size_t c = 0; c < N; c++) {
      int64_t a = (int64_t)acc[m * N + c] + bias[c];
      float v = rintf((float)(int32_t)a * mult[c]) + (float)zp;
      if (v < (float)lo) v = (float)lo;
      if (v > (float)hi) v = (float)hi;
      out[m * N + c] = (uint8_t)v;
    }
}

START_TEST(requant_matches_layer_spec) {
  size_t nt;
  fast_tiers(&nt);
  const qat_kernels *tiers[9] = {&qat__kernels_ref};
  for (size_t i = 0; i < nt; i++) tiers[1 + i] = TIER(i);
  enum { N = 77, M = 3 };
  int32_t acc[M * N], bias[N];
  float mult[N];
  uint8_t spec[M * N], got[M * N];
  for (size_t i = 0; i < 1 + nt; i++)
    for (int r = 0; r < 400; r++) {
      int kind = r % 4;
      for (size_t k = 0; k < M * N; k++)
        acc[k] = kind == 0 ? (int32_t)(rnd() % 2001) - 1000
                           : (int32_t)(rnd() % 1000000001u) - 500000000;
      for (size_t c = 0; c < N; c++) {
        bias[c] = (int32_t)(rnd() % 2000001) - 1000000;
        mult[c] = kind == 0 ? 0.5f : kind == 1 ? (float)(rnd() % 1000 + 1) * 1e-9f
                : kind == 2 ? (float)(rnd() % 1000 + 1) * 1e-6f : 1.5f;
      }
      int32_t zp = (int32_t)(rnd() % 256), qmax = r % 3 == 0 ? 127 : 255;
      if (zp > qmax) zp = qmax;
      int32_t lo = r & 1 ? zp : 0;
      spec_requant_u8(acc, M, N, bias, mult, zp, lo, qmax, spec);
      tiers[i]->requant_u8(acc, M, N, bias, mult, zp, lo, qmax, got, N);
      ck_assert_mem_eq(spec, got, sizeof spec);
    }
}
END_TEST

START_TEST(quantize_tiers_equal) {
  size_t nt;
  fast_tiers(&nt);
  enum { NX = 1000 };
  float x[NX];
  uint8_t q1[NX], q2[NX];
  for (size_t i = 0; i < nt; i++)
    for (int r = 0; r < 200; r++) {
      qat_qparams p = {.scale = (float)(rnd() % 1000 + 1) * 1e-4f,
                       .zero_point = (int32_t)(rnd() % 256), .qmin = 0, .qmax = 255};
      if (r % 5 == 0) p.qmax = 15; /* 4-bit activations */
      if (p.zero_point > p.qmax) p.zero_point = p.qmax;
      for (size_t k = 0; k < NX; k++) {
        int kind = (int)(rnd() % 8);
        /* Exact ties k + 0.5 of the scale, random, out of range, specials. */
        x[k] = kind == 0 ? ((float)((int)(rnd() % 600) - 300) + 0.5f) * p.scale
             : kind == 1 ? (float)((int)(rnd() % 2000001) - 1000000) * 1e6f
             : kind == 2 ? (rnd() & 1 ? __builtin_nanf("") : __builtin_inff())
             : kind == 3 ? -__builtin_inff()
                         : (float)((int)(rnd() % 2000001) - 1000000) * 1e-6f;
      }
      size_t n = r < 100 ? (size_t)r : NX - rnd() % 40;
      memset(q1, 0xee, sizeof q1);
      memset(q2, 0xee, sizeof q2);
      qat__kernels_ref.quantize_u8(x, n, &p, q1);
      TIER(i)->quantize_u8(x, n, &p, q2);
      ck_assert_mem_eq(q1, q2, NX);
      for (size_t k = 0; k < n; k++) ck_assert_int_eq(q1[k], qat_quantize(x[k], &p));
    }
}
END_TEST

/* The fp32 single-row product: every tier returns the reference's bits
 * (gemv_f32.h), for widths that fill and that miss the vector tails, the
 * register tiles (up to 256 outputs) and more than one tile, inputs with
 * runs of +0 and -0 (skipped), denormals, and sums that overflow to inf;
 * nothing is written past y[N). */
START_TEST(gemv_f32_tiers_equal) {
  size_t nt;
  fast_tiers(&nt);
  static const size_t Ns[] = {1, 7, 8, 15, 16, 17, 63, 64, 65, 255, 256, 257, 300, 513};
  static const size_t Ks[] = {1, 3, 16, 37, 784};
  for (size_t a = 0; a < sizeof Ns / sizeof Ns[0]; a++)
    for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
      size_t N = Ns[a], K = Ks[c], ld = qat__gemv_f32_ld(N);
      float *w = malloc(N * K * sizeof(float)), *x = malloc(K * sizeof(float));
      float *b = malloc(N * sizeof(float)), *want = malloc((N + 16) * sizeof(float));
      float *got = malloc((N + 16) * sizeof(float));
      float *wt = qat__malloc_aligned(K * ld * sizeof(float));
      ck_assert(w && x && b && want && got && wt);
      for (int how = 0; how < 4; how++) {
        for (size_t i = 0; i < N * K; i++)
          w[i] = how == 3 ? 3e38f : (float)((int)(rnd() % 20001) - 10000) * 1e-4f;
        for (size_t k = 0; k < K; k++) {
          uint32_t r = rnd() % 8;
          /* how 1: half zeros in runs; how 2: denormals and -0. */
          x[k] = how == 1 && (k / 5) % 2 ? 0.0f
               : how == 2 && r == 0 ? -0.0f
               : how == 2 && r == 1 ? 1e-40f
                                    : (float)((int)(rnd() % 20001) - 10000) * 1e-3f;
        }
        for (size_t n = 0; n < N; n++) b[n] = (float)((int)(rnd() % 201) - 100) * 1e-2f;
        if (how == 2) b[0] = -0.0f;
        qat__gemv_f32_transpose(w, N, K, wt);
        for (size_t k = 0; k < K; k++)
          for (size_t n = N; n < ld; n++) ck_assert(wt[k * ld + n] == 0.0f);
        memset(want, 0x7f, (N + 16) * sizeof(float));
        qat__kernels_ref.gemv_f32(x, K, wt, ld, b, N, want);
        /* The reference is the definition: spot-check it by hand. */
        size_t n0 = rnd() % N;
        float acc = b[n0];
        for (size_t k = 0; k < K; k++)
          if (x[k] != 0.0f) acc = fmaf(x[k], w[n0 * K + k], acc);
        ck_assert_mem_eq(&acc, &want[n0], sizeof acc);
        for (size_t i = 0; i < nt; i++) {
          if (!TIER(i)->gemv_f32) continue; /* OpenBLAS sgemv: not exact */
          memset(got, 0x7f, (N + 16) * sizeof(float));
          TIER(i)->gemv_f32(x, K, wt, ld, b, N, got);
          ck_assert_msg(memcmp(want, got, (N + 16) * sizeof(float)) == 0,
                        "tier %s N %zu K %zu input %d", TIER(i)->name, N, K, how);
        }
      }
      free(w);
      free(x);
      free(b);
      free(want);
      free(got);
      qat__free_aligned(wt);
    }
}
END_TEST

START_TEST(selection) {
  const qat_kernels *k = NULL;
  ck_assert_int_eq(qat__kernels_select("ref", &k), QAT_OK);
  ck_assert_ptr_eq(k, &qat__kernels_ref);
  const char *feat = qat_cpu_features();
  ck_assert_ptr_nonnull(strstr(feat, "x86-64"));
  /* Unknown names are refused, naming the valid ones. */
  ck_assert_int_eq(qat__kernels_select("avx9000", &k), QAT_EINVAL);
  ck_assert_ptr_null(k);
  ck_assert_ptr_nonnull(strstr(qat_errmsg(), "avx512vnni"));
#if defined(__x86_64__)
  /* GCC's own detection is an independent witness of CPUID + XGETBV. */
  __builtin_cpu_init();
  bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  bool has512 = has2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  ck_assert_int_eq(qat__cpu_has_avx2(), has2);
  ck_assert_int_eq(strstr(feat, " avx2") != NULL, has2);
  ck_assert_int_eq(qat__kernels_runnable(&qat__kernels_avx512vnni), has512);
  ck_assert_int_eq(strstr(feat, " avx512vnni") != NULL, has512);
  /* GCC 12 has no "avxvnni" for __builtin_cpu_supports: /proc/cpuinfo's
   * flag (the kernel's own CPUID read) is the witness. */
  bool hasvnni = false;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[4096];
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "flags", 5) == 0) {
        hasvnni = strstr(line, " avx_vnni") != NULL;
        break;
      }
    fclose(f);
  }
  ck_assert_int_eq(qat__kernels_runnable(&qat__kernels_avxvnni), has2 && hasvnni);
  /* The default is the fastest tier that runs; each forced tier is itself
   * or a clear refusal naming the missing feature. */
  const qat_kernels *best = has512 ? &qat__kernels_avx512vnni
                          : has2 && hasvnni ? &qat__kernels_avxvnni
                          : has2 ? &qat__kernels_avx2 : &qat__kernels_ref;
  ck_assert_int_eq(qat__kernels_select(NULL, &k), QAT_OK);
  ck_assert_ptr_eq(k, best);
  static const char *const names[] = {"avx2", "avxvnni", "avx512vnni"};
  static const char *const needs[] = {"AVX2", "AVX-VNNI", "AVX512"};
  for (int i = 0; i < 3; i++) {
    qat_err e = qat__kernels_select(names[i], &k);
    bool can = i == 0 ? has2 : i == 1 ? has2 && hasvnni : has512;
    if (can) {
      ck_assert_int_eq(e, QAT_OK);
      ck_assert_str_eq(k->name, names[i]);
    } else {
      ck_assert_int_eq(e, QAT_EUNSUPPORTED);
      ck_assert_ptr_null(k);
      ck_assert_ptr_nonnull(strstr(qat_errmsg(), needs[i]));
    }
  }
  /* The twin is never chosen, and runs exactly where avx512vnni does. */
  ck_assert_int_eq(qat__kernels_select("avxvnni-evex", &k), QAT_EINVAL);
  ck_assert_int_eq(qat__kernels_runnable(&qat__kernels_avxvnni_evex), has512);
#endif
  const char *env = getenv("QAT_KERNEL");
  if (!env || !env[0]) {
    ck_assert_int_eq(qat__kernels_select(NULL, &k), QAT_OK);
    ck_assert_ptr_eq(qat__kernels_get(), k);
  } else if (qat__kernels_get()) {
    ck_assert_str_eq(qat_kernel_name(), env);
  }
}
END_TEST

/* In a fresh child (whose first qat__kernels_get sees the variable):
 * QAT_KERNEL=name's outcome, "name" or "none:<message>". */
static void child_choice(const char *name, char *buf, size_t cap) {
  int fd[2];
  ck_assert_int_eq(pipe(fd), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fd[0]);
    setenv("QAT_KERNEL", name, 1);
    char msg[600];
    qat_err e = qat_kernel_check();
    snprintf(msg, sizeof msg, "%s%s%s", qat_kernel_name(), e ? ":" : "", e ? qat_errmsg() : "");
    ssize_t w = write(fd[1], msg, strlen(msg));
    _exit(w > 0 ? 0 : 1);
  }
  close(fd[1]);
  memset(buf, 0, cap);
  size_t got = 0;
  ssize_t r;
  while (got + 1 < cap && (r = read(fd[0], buf + got, cap - 1 - got)) > 0) got += (size_t)r;
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  ck_assert_uint_gt(got, 0);
}

/* QAT_KERNEL forces each tier the machine runs; any other value leaves the
 * process without a tier and with an error naming why, and a model cannot
 * be made (no SIGILL later). */
START_TEST(env_forces_tier) {
  const char *mode = getenv("CK_FORK");
  if (mode && strcmp(mode, "no") == 0) return; /* the choice is per process */
  char buf[600];
  const qat_kernels *all[8];
  size_t n = qat__kernels_available(all, 8, false);
  for (size_t i = 0; i < n; i++) {
    child_choice(all[i]->name, buf, sizeof buf);
    ck_assert_str_eq(buf, all[i]->name);
  }
  static const char *const names[] = {"avx2", "avxvnni", "avx512vnni", "bogus"};
  for (size_t i = 0; i < 4; i++) {
    const qat_kernels *k;
    if (qat__kernels_select(names[i], &k) == QAT_OK) continue;
    child_choice(names[i], buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "none:QAT_KERNEL=", 16) == 0, "got %s", buf);
  }
}
END_TEST

Suite *suite_kernels(void) {
  Suite *s = suite_create("kernels");
  TCase *tc = tcase_create("kernels");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, reference_closed_form);
  tcase_add_test(tc, gemm_adversarial_values);
  tcase_add_test(tc, gemm_random_shapes);
  tcase_add_test(tc, gemm_blocking_edges);
  tcase_add_test(tc, requant_reference_values);
  tcase_add_test(tc, requant_tiers_equal);
  tcase_add_test(tc, requant_matches_layer_spec);
  tcase_add_test(tc, quantize_tiers_equal);
  tcase_add_test(tc, gemv_f32_tiers_equal);
  tcase_add_test(tc, selection);
  tcase_add_test(tc, env_forces_tier);
  suite_add_tcase(s, tc);
  return s;
}
