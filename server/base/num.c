/* num.c - JSON number tokens to float32 and float32 to the shortest text.
 *
 * Parsing. The token's significant digits are read into an integer m (at
 * most 19 of them, so m < 10^19 < 2^64) and an exponent e, the value being
 * m * 10^e exactly, or a little more when digits after the 19th were
 * dropped ("truncated"). Then, first that applies:
 *   1. m <= 2^24, |e| <= 10: one float multiply or divide (exact operands).
 *   2. -65 <= e <= 38: m times a 64-bit table value of 10^e (rounded down)
 *      brackets the decimal between x and x + 1 units of a 64-bit integer;
 *      when both ends round to the same float, that is the answer (all but
 *      ~1 in 2^38 inputs).
 *   3. integer arithmetic in 128 bits: m * 10^e for e >= 0, or m * 2^s /
 *      10^-e for -30 <= e < 0, rounded to float by hand with the remainder
 *      as sticky bit.
 *   4. strtof on a copy of the token (a subnormal result, or step 2 failing
 *      to decide for e < -30: practically never).
 * Outside -65 <= e <= 38 (m >= 1) the value is below half the smallest
 * subnormal (0) or above FLT_MAX (infinity, refused) without computing.
 * Each step says below why its result is the correctly rounded float of the
 * decimal - the float strtof returns (IEEE round-half-even). The unit tests
 * and tests/fuzz/fuzz_number.c compare with strtof bit for bit.
 *
 * Printing: Schubfach (R. Giulietti, "The Schubfach way to render doubles",
 * 2020) specialised to float32: one 64x32-bit multiply per bound picks the
 * shortest decimal inside the float's rounding interval. */
#include "num.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if FLT_EVAL_METHOD != 0
#error "step 1 needs float arithmetic evaluated in float (FLT_EVAL_METHOD 0)"
#endif

__extension__ typedef unsigned __int128 u128;

static inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
static inline bool is_delim(char c) {
  return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static const uint64_t pow10u64[20] = {1ull,
                                      10ull,
                                      100ull,
                                      1000ull,
                                      10000ull,
                                      100000ull,
                                      1000000ull,
                                      10000000ull,
                                      100000000ull,
                                      1000000000ull,
                                      10000000000ull,
                                      100000000000ull,
                                      1000000000000ull,
                                      10000000000000ull,
                                      100000000000000ull,
                                      1000000000000000ull,
                                      10000000000000000ull,
                                      100000000000000000ull,
                                      1000000000000000000ull,
                                      10000000000000000000ull};

static const float pow10f[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
/* parse_pow10[e + 65] = 10^e * 2^(63 - floor(log2 10^e)), rounded down
 * (server/base/num_table.py). */
static const uint64_t parse_pow10[104] = {
    0x86CCBB52EA94BAEAULL, 0xA87FEA27A539E9A5ULL, 0xD29FE4B18E88640EULL,
    0x83A3EEEEF9153E89ULL, 0xA48CEAAAB75A8E2BULL, 0xCDB02555653131B6ULL,
    0x808E17555F3EBF11ULL, 0xA0B19D2AB70E6ED6ULL, 0xC8DE047564D20A8BULL,
    0xFB158592BE068D2EULL, 0x9CED737BB6C4183DULL, 0xC428D05AA4751E4CULL,
    0xF53304714D9265DFULL, 0x993FE2C6D07B7FABULL, 0xBF8FDB78849A5F96ULL,
    0xEF73D256A5C0F77CULL, 0x95A8637627989AADULL, 0xBB127C53B17EC159ULL,
    0xE9D71B689DDE71AFULL, 0x9226712162AB070DULL, 0xB6B00D69BB55C8D1ULL,
    0xE45C10C42A2B3B05ULL, 0x8EB98A7A9A5B04E3ULL, 0xB267ED1940F1C61CULL,
    0xDF01E85F912E37A3ULL, 0x8B61313BBABCE2C6ULL, 0xAE397D8AA96C1B77ULL,
    0xD9C7DCED53C72255ULL, 0x881CEA14545C7575ULL, 0xAA242499697392D2ULL,
    0xD4AD2DBFC3D07787ULL, 0x84EC3C97DA624AB4ULL, 0xA6274BBDD0FADD61ULL,
    0xCFB11EAD453994BAULL, 0x81CEB32C4B43FCF4ULL, 0xA2425FF75E14FC31ULL,
    0xCAD2F7F5359A3B3EULL, 0xFD87B5F28300CA0DULL, 0x9E74D1B791E07E48ULL,
    0xC612062576589DDAULL, 0xF79687AED3EEC551ULL, 0x9ABE14CD44753B52ULL,
    0xC16D9A0095928A27ULL, 0xF1C90080BAF72CB1ULL, 0x971DA05074DA7BEEULL,
    0xBCE5086492111AEAULL, 0xEC1E4A7DB69561A5ULL, 0x9392EE8E921D5D07ULL,
    0xB877AA3236A4B449ULL, 0xE69594BEC44DE15BULL, 0x901D7CF73AB0ACD9ULL,
    0xB424DC35095CD80FULL, 0xE12E13424BB40E13ULL, 0x8CBCCC096F5088CBULL,
    0xAFEBFF0BCB24AAFEULL, 0xDBE6FECEBDEDD5BEULL, 0x89705F4136B4A597ULL,
    0xABCC77118461CEFCULL, 0xD6BF94D5E57A42BCULL, 0x8637BD05AF6C69B5ULL,
    0xA7C5AC471B478423ULL, 0xD1B71758E219652BULL, 0x83126E978D4FDF3BULL,
    0xA3D70A3D70A3D70AULL, 0xCCCCCCCCCCCCCCCCULL, 0x8000000000000000ULL,
    0xA000000000000000ULL, 0xC800000000000000ULL, 0xFA00000000000000ULL,
    0x9C40000000000000ULL, 0xC350000000000000ULL, 0xF424000000000000ULL,
    0x9896800000000000ULL, 0xBEBC200000000000ULL, 0xEE6B280000000000ULL,
    0x9502F90000000000ULL, 0xBA43B74000000000ULL, 0xE8D4A51000000000ULL,
    0x9184E72A00000000ULL, 0xB5E620F480000000ULL, 0xE35FA931A0000000ULL,
    0x8E1BC9BF04000000ULL, 0xB1A2BC2EC5000000ULL, 0xDE0B6B3A76400000ULL,
    0x8AC7230489E80000ULL, 0xAD78EBC5AC620000ULL, 0xD8D726B7177A8000ULL,
    0x878678326EAC9000ULL, 0xA968163F0A57B400ULL, 0xD3C21BCECCEDA100ULL,
    0x84595161401484A0ULL, 0xA56FA5B99019A5C8ULL, 0xCECB8F27F4200F3AULL,
    0x813F3978F8940984ULL, 0xA18F07D736B90BE5ULL, 0xC9F2C9CD04674EDEULL,
    0xFC6F7C4045812296ULL, 0x9DC5ADA82B70B59DULL, 0xC5371912364CE305ULL,
    0xF684DF56C3E01BC6ULL, 0x9A130B963A6C115CULL, 0xC097CE7BC90715B3ULL,
    0xF0BDC21ABB48DB20ULL, 0x96769950B50D88F4ULL,
};

/* 10^k exactly, k <= 38 (10^38 < 2^127). */
static inline u128 pow10_128(int k) {
  return k <= 19 ? (u128)pow10u64[k] : (u128)pow10u64[19] * pow10u64[k - 19];
}

/* floor(e * log2(10)) for |e| <= 1233, floor(e * log10(2)) and
 * floor(log10(3/4 * 2^e)) for |e| <= 1500 (fixed-point approximations whose
 * error stays below the distance to the next integer over those ranges). */
static inline int floor_log2_pow10(int e) { return (e * 1741647) >> 19; }
static inline int floor_log10_pow2(int e) { return (e * 1262611) >> 22; }
static inline int floor_log10_34_pow2(int e) { return (e * 1262611 - 524031) >> 22; }

/* ---- parsing ----------------------------------------------------------- */

typedef enum { R_OK, R_INF, R_SLOW } rstat;

/* Rounds (q + f) * 2^e2 to float, where 0 <= f < 1 and sticky says f != 0;
 * with sticky, q must have at least 25 bits (so f lies entirely below the
 * round bit). Plain round-half-even on an exact integer: the 24 leading
 * bits are the significand, the next bit and everything below (rest of q,
 * and f) decide the rounding. R_SLOW for a subnormal result, which the
 * callers' ranges never produce. */
static inline rstat round_to_float(uint64_t q, bool sticky, int e2, float *out) {
  int bl = 64 - __builtin_clzll(q);
  uint32_t mant;
  int ex;
  if (bl <= 24) {
    mant = (uint32_t)q << (24 - bl);
    ex = e2 - (24 - bl);
  } else {
    int sh = bl - 24;
    uint64_t rest = q & ((UINT64_C(1) << sh) - 1), half = UINT64_C(1) << (sh - 1);
    mant = (uint32_t)(q >> sh);
    ex = e2 + sh;
    /* Branch-free: with random data the direction is a coin toss. */
    mant += (uint32_t)((rest > half) | ((rest == half) & (sticky | (mant & 1))));
    if (mant == 1u << 24) {
      mant >>= 1;
      ex++;
    }
  }
  int biased = ex + 23 + 127; /* value = mant * 2^ex = 1.xxx * 2^(ex + 23) */
  if (biased >= 255) return R_INF;
  if (biased <= 0) return R_SLOW;
  uint32_t u = ((uint32_t)biased << 23) | (mant & 0x7FFFFF);
  memcpy(out, &u, 4);
  return R_OK;
}

/* The 128-bit p folded into 64 bits (keeping >= 25 bits), the bits shifted
 * out joining the sticky bit. */
static inline rstat round128_to_float(u128 p, float *out) {
  uint64_t hi = (uint64_t)(p >> 64);
  if (!hi) return round_to_float((uint64_t)p, false, 0, out);
  int sh = 64 - __builtin_clzll(hi); /* 1..64 */
  uint64_t lost = sh == 64 ? (uint64_t)p : (uint64_t)p & ((UINT64_C(1) << sh) - 1);
  bool sticky = lost != 0;
  return round_to_float((uint64_t)(p >> sh), sticky, sh, out);
}

/* N / d and N % d for N < d * 2^64 (the quotient fits in 64 bits). */
static inline uint64_t div128(u128 num, u128 d, bool *rem) {
#if defined(__x86_64__)
  if (!(d >> 64)) {
    /* One divq: its precondition (high half < divisor) is the caller's. */
    uint64_t q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"((uint64_t)num), "d"((uint64_t)(num >> 64)),
            "rm"((uint64_t)d));
    *rem = r != 0;
    return q;
  }
#endif
  u128 q = num / d;
  *rem = num != q * d;
  return (uint64_t)q;
}

/* Step 3: m * 10^e (m >= 1) by exact integer arithmetic.
 * e >= 0: m * 10^e is an exact 128-bit product when it fits; when it does
 *   not (or e > 38) the value is >= 2^128 > FLT_MAX + half an ulp, which
 *   strtof rounds to infinity.
 * e < 0, k = -e <= 30: with D = 10^k (< 2^100), N = m * 2^s, q = N / D and
 *   r = N % D are exact, and m * 10^e = (q + r/D) * 2^-s with 0 <= r/D < 1:
 *   rounding q with sticky = (r != 0) is rounding the decimal itself. s is
 *   chosen so that q has >= 26 bits (q >= 2^(blm-1+s-bld) with bl = bit
 *   lengths) and N < 2^128; when D < 2^64 also N < D * 2^64, so the
 *   division is a single 128-by-64 divide. Either way q < 2^64 (N < 2^128
 *   and D >= 2^64, or N < D * 2^64). The result is >= 10^-30: never
 *   subnormal. */
static rstat decimal_to_float(uint64_t m, int e, float *out) {
  if (e >= 0) {
    u128 p;
    if (e > 38 || __builtin_mul_overflow((u128)m, pow10_128(e), &p)) return R_INF;
    return round128_to_float(p, out);
  }
  int k = -e;
  if (k > 30) return R_SLOW;
  u128 d = pow10_128(k);
  int bld = floor_log2_pow10(k) + 1, blm = 64 - __builtin_clzll(m);
  int s = bld + 63 - blm;
  if (s > 128 - blm) s = 128 - blm;
  bool rem;
  uint64_t q = div128((u128)m << s, d, &rem);
  return round_to_float(q, rem, -s, out);
}

/* Step 2: with M = m << z in [2^63, 2^64) and T = parse_pow10[e + 65],
 * 10^e = (T + t) * 2^(f - 63) for some 0 <= t < 1 (f = floor(log2 10^e)),
 * so m * 10^e = M * (T + t) * 2^(f - 63 - z) and, with P = M * T exact in
 * 128 bits, M * (T + t) lies in [P, P + M) ⊂ [P, P + 2^64). In units of
 * 2^(f + 1 - z): the decimal is in [x, x + 1) with x = H + L / 2^64 (H, L
 * the halves of P). Rounding is monotonic, so if x and x + 1 round to the
 * same float, so does the decimal. They do unless the bits of H below the
 * significand (rest, sh = bitlen(H) - 24 >= 38 bits) sit at half - 1 or
 * half (the comparison with half may turn) or all ones (a carry into the
 * significand): then R_SLOW hands over to step 3. */
static inline rstat bracket(uint64_t m, int e, float *out) {
  if (e < -65 || e > 38) return R_SLOW;
  int z = __builtin_clzll(m);
  u128 p = (u128)(m << z) * parse_pow10[e + 65];
  uint64_t h = (uint64_t)(p >> 64);
  int sh = 64 - __builtin_clzll(h) - 24;
  uint64_t mask = (UINT64_C(1) << sh) - 1, rest = h & mask, half = UINT64_C(1) << (sh - 1);
  if (rest + 1 == half || rest == half || rest == mask) return R_SLOW;
  return round_to_float(h, (uint64_t)p != 0, floor_log2_pow10(e) + 1 - z, out);
}

/* m * 10^e, m >= 1, an exact decimal: steps 1 to 3. */
static inline __attribute__((always_inline)) rstat exact_to_float(uint64_t m, int e, float *out) {
  if (m <= (1u << 24) && e >= -10 && e <= 10) {
    /* Step 1: m and 10^|e| (= 2^|e| * 5^|e|, 5^10 < 2^24) are exact
     * floats, and IEEE multiply/divide rounds the exact result once. */
    float f = (float)m;
    *out = e >= 0 ? f * pow10f[e] : f / pow10f[-e];
    return R_OK;
  }
  rstat r = bracket(m, e, out);
  return r != R_SLOW ? r : decimal_to_float(m, e, out);
}

/* m * 10^e < decimal < (m + 1) * 10^e: rounding is monotonic, so when both
 * bounds round to the same float, so does the decimal. */
static rstat truncated_to_float(uint64_t m, int e, float *out) {
  float lo = 0.0f, hi = 0.0f;
  rstat a = exact_to_float(m, e, &lo), b = exact_to_float(m + 1, e, &hi);
  if (a == R_INF) return R_INF;
  if (a == R_OK && b == R_OK && memcmp(&lo, &hi, 4) == 0) {
    *out = lo;
    return R_OK;
  }
  return R_SLOW;
}

/* Eight digit values, the first in the lowest byte, as one number. */
static inline uint32_t swar8_value(uint64_t x) {
  x = (x * 10) + (x >> 8);
  x = (((x & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
       (((x >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
      32;
  return (uint32_t)x;
}

/* Reads the digit run at s[p..n) into *m, keeping at most 19 significant
 * digits (a digit is taken while m < 10^18, so m < 10^19 after it). In a
 * fraction each digit taken lowers *e; in the integer part each digit
 * dropped raises it. A nonzero digit dropped sets *trunc: m * 10^e is then
 * strictly below the decimal and (m + 1) * 10^e strictly above.
 *
 * Eight bytes at a time while m < 10^11: x = bytes ^ '0' holds 0..9 in
 * digit bytes, and ((x + 0x76) | x) & 0x80 flags each non-digit byte. A
 * carry out of a byte comes only from a flagged byte, so the lowest flag -
 * the end of the run - is exact; the digits below it, shifted to the top
 * (zero bytes become leading zeros), are valued in one go. */
static inline size_t scan_digits(const char *s, size_t n, size_t p, uint64_t *m, int *e,
                                 bool *trunc, bool frac) {
  uint64_t v = *m;
  int ex = *e;
  while (n - p >= 8 && v < 100000000000ull) {
    uint64_t w;
    memcpy(&w, s + p, 8);
    uint64_t x = w ^ 0x3030303030303030ull;
    uint64_t flags = ((x + 0x7676767676767676ull) | x) & 0x8080808080808080ull;
    int cnt = flags ? __builtin_ctzll(flags) >> 3 : 8;
    if (cnt) {
      v = v * pow10u64[cnt] + swar8_value(x << (8 * (8 - cnt)));
      if (frac) ex -= cnt;
      p += (size_t)cnt;
    }
    if (cnt < 8) {
      *m = v;
      *e = ex;
      return p;
    }
  }
  for (; p < n && is_digit(s[p]); p++) {
    unsigned d = (unsigned)(s[p] - '0');
    if (v < 1000000000000000000ull) {
      v = v * 10 + d;
      if (frac) ex--;
    } else {
      if (!frac) ex++;
      if (d) *trunc = true;
    }
  }
  *m = v;
  *e = ex;
  return p;
}

/* Step 4: strtof on a NUL-ended copy of the token. */
static rstat slow_parse(const char *s, size_t len, float *out) {
  char tmp[QS_NUM_MAX_CHARS + 1];
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  char *end;
  float f = strtof(tmp, &end);
  if (end != tmp + len) return R_SLOW; /* cannot happen: the grammar was checked */
  if (!isfinite(f)) return R_INF;
  *out = fabsf(f); /* underflow (ERANGE, tiny result) is a finite value */
  return R_OK;
}

/* The token's grammar from *pos: sign, integer part, fraction, exponent,
 * ending at a delimiter. The significant digits go to *m (at most 19;
 * *trunc when more were dropped), the decimal exponent to *e; *pos moves
 * to the token's end. */
static inline __attribute__((always_inline)) qs_num_status
scan_number(const char *s, size_t n, size_t *pos, bool *neg, uint64_t *m, int *e, bool *trunc) {
  size_t p = *pos;
  if (p < n && s[p] == '-') {
    *neg = true;
    p++;
  }
  if (p >= n) return QS_NUM_SYNTAX;
  char c = s[p];
  if (c == '0') {
    p++;
  } else if (is_digit(c)) {
    p = scan_digits(s, n, p, m, e, trunc, false);
  } else {
    /* Not JSON, but clients send them; name the problem precisely. */
    if ((!*neg && n - p >= 3 && memcmp(s + p, "NaN", 3) == 0) ||
        (n - p >= 8 && memcmp(s + p, "Infinity", 8) == 0))
      return QS_NUM_NONFINITE;
    return QS_NUM_SYNTAX;
  }
  if (p < n && s[p] == '.') {
    p++;
    if (p >= n || !is_digit(s[p])) return QS_NUM_SYNTAX;
    p = scan_digits(s, n, p, m, e, trunc, true);
  }
  if (p < n && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    bool eneg = false;
    if (p < n && (s[p] == '+' || s[p] == '-')) eneg = s[p++] == '-';
    if (p >= n || !is_digit(s[p])) return QS_NUM_SYNTAX;
    int x = 0;
    for (; p < n && is_digit(s[p]); p++)
      if (x < 100000) x = x * 10 + (s[p] - '0');
    *e += eneg ? -x : x;
  }
  /* The token must end here (e.g. "0x1" is JSON "0" followed by garbage). */
  if (p < n && !is_delim(s[p])) return QS_NUM_SYNTAX;
  *pos = p;
  return QS_NUM_OK;
}

/* m * 10^e (+ a fraction of 10^e when trunc) to the nearest float, by the
 * cheapest exact step that applies; R_SLOW when none can decide. */
static inline __attribute__((always_inline)) rstat digits_to_float(uint64_t m, int e, bool trunc,
                                                                   float *f) {
  if (m == 0) {
    *f = 0.0f;
    return R_OK;
  }
  if (e < -65) {
    /* m * 10^e < 10^19 * 10^-66 < 2^-150: below half the smallest
     * subnormal, so it rounds to zero (as strtof, with ERANGE). */
    *f = 0.0f;
    return R_OK;
  }
  if (!trunc && m <= (1u << 24) && e >= -10 && e <= 10) {
    /* Step 1 here rather than in the call below: it is the common case
     * (short decimals like 0.12345), and the call costs as much again. */
    float x = (float)m;
    *f = e >= 0 ? x * pow10f[e] : x / pow10f[-e];
    return R_OK;
  }
  if (!trunc) return exact_to_float(m, e, f);
  /* The decimal lies strictly between m * 10^e and (m + 1) * 10^e
   * (m + 1 <= 10^19 still fits); rounding is monotonic, so when both
   * bounds round to the same float, so does the decimal. */
  return truncated_to_float(m, e, f);
}

/* Phases: the grammar (scan_number), the length cap, the conversion
 * (digits_to_float, strtof on a copy when no exact step decides). */
qs_num_status qs_num_parse(const char *s, size_t n, size_t *pos, float *out) {
  size_t p = *pos, start = p;
  bool neg = false, trunc = false;
  uint64_t m = 0;
  int e = 0;
  qs_num_status st = scan_number(s, n, &p, &neg, &m, &e, &trunc);
  if (st != QS_NUM_OK) return st;
  /* A documented cap (docs/api.md), whatever the value. */
  if (p - start > QS_NUM_MAX_CHARS) return QS_NUM_SYNTAX;
  float f = 0.0f;
  rstat r = digits_to_float(m, e, trunc, &f);
  if (r == R_SLOW) {
    r = slow_parse(s + start, p - start, &f);
    if (r == R_SLOW) return QS_NUM_SYNTAX;
  }
  if (r == R_INF) return QS_NUM_NONFINITE;
  *out = neg ? -f : f;
  *pos = p;
  return QS_NUM_OK;
}

/* ---- printing ---------------------------------------------------------- */

/* g[e + 31] = 10^e scaled into [2^63, 2^64) and rounded up, e in [-31, 45]
 * (server/base/num_table.py computes it with exact rationals). */
static const uint64_t g_pow10[77] = {
    0x81CEB32C4B43FCF5ULL, 0xA2425FF75E14FC32ULL, 0xCAD2F7F5359A3B3FULL,
    0xFD87B5F28300CA0EULL, 0x9E74D1B791E07E49ULL, 0xC612062576589DDBULL,
    0xF79687AED3EEC552ULL, 0x9ABE14CD44753B53ULL, 0xC16D9A0095928A28ULL,
    0xF1C90080BAF72CB2ULL, 0x971DA05074DA7BEFULL, 0xBCE5086492111AEBULL,
    0xEC1E4A7DB69561A6ULL, 0x9392EE8E921D5D08ULL, 0xB877AA3236A4B44AULL,
    0xE69594BEC44DE15CULL, 0x901D7CF73AB0ACDAULL, 0xB424DC35095CD810ULL,
    0xE12E13424BB40E14ULL, 0x8CBCCC096F5088CCULL, 0xAFEBFF0BCB24AAFFULL,
    0xDBE6FECEBDEDD5BFULL, 0x89705F4136B4A598ULL, 0xABCC77118461CEFDULL,
    0xD6BF94D5E57A42BDULL, 0x8637BD05AF6C69B6ULL, 0xA7C5AC471B478424ULL,
    0xD1B71758E219652CULL, 0x83126E978D4FDF3CULL, 0xA3D70A3D70A3D70BULL,
    0xCCCCCCCCCCCCCCCDULL, 0x8000000000000000ULL, 0xA000000000000000ULL,
    0xC800000000000000ULL, 0xFA00000000000000ULL, 0x9C40000000000000ULL,
    0xC350000000000000ULL, 0xF424000000000000ULL, 0x9896800000000000ULL,
    0xBEBC200000000000ULL, 0xEE6B280000000000ULL, 0x9502F90000000000ULL,
    0xBA43B74000000000ULL, 0xE8D4A51000000000ULL, 0x9184E72A00000000ULL,
    0xB5E620F480000000ULL, 0xE35FA931A0000000ULL, 0x8E1BC9BF04000000ULL,
    0xB1A2BC2EC5000000ULL, 0xDE0B6B3A76400000ULL, 0x8AC7230489E80000ULL,
    0xAD78EBC5AC620000ULL, 0xD8D726B7177A8000ULL, 0x878678326EAC9000ULL,
    0xA968163F0A57B400ULL, 0xD3C21BCECCEDA100ULL, 0x84595161401484A0ULL,
    0xA56FA5B99019A5C8ULL, 0xCECB8F27F4200F3AULL, 0x813F3978F8940985ULL,
    0xA18F07D736B90BE6ULL, 0xC9F2C9CD04674EDFULL, 0xFC6F7C4045812297ULL,
    0x9DC5ADA82B70B59EULL, 0xC5371912364CE306ULL, 0xF684DF56C3E01BC7ULL,
    0x9A130B963A6C115DULL, 0xC097CE7BC90715B4ULL, 0xF0BDC21ABB48DB21ULL,
    0x96769950B50D88F5ULL, 0xBC143FA4E250EB32ULL, 0xEB194F8E1AE525FEULL,
    0x92EFD1B8D0CF37BFULL, 0xB7ABC627050305AEULL, 0xE596B7B0C643C71AULL,
    0x8F7E32CE7BEA5C70ULL, 0xB35DBF821AE4F38CULL,
};

/* round_to_odd(g, cp) = the integer part of g * cp / 2^64, with its lowest
 * bit set when the fraction dropped is not (nearly) zero. Because g is
 * 10^e rounded up by less than one unit, and cp < 2^32, the product
 * overestimates the exact one by less than 2^32: a fraction of at most 1 in
 * the low 64 bits' upper half (y0 <= 1) means the exact value was an
 * integer. Rounding to odd keeps exactly the information the comparisons
 * below need (whether a bound is below, at, or above a multiple of 4). */
static inline uint32_t round_to_odd(uint64_t g, uint32_t cp) {
  u128 p = (u128)g * cp;
  uint32_t y1 = (uint32_t)(p >> 64), y0 = (uint32_t)(p >> 32);
  return y1 | (y0 > 1);
}

/* The float c * 2^q (bits: positive, nonzero, finite) as *digits * 10^*exp.
 * Its rounding interval runs from halfway to the lower neighbour to halfway
 * to the upper one, both ends included when c is even (round-half-even reads
 * them back to c). Scaled by 4 * 10^-k (k = floor(log10 2^q), or
 * floor(log10 (3/4 * 2^q)) at a power of two, whose lower gap is half the
 * upper), the bounds and the value land on vbl, vbr, vb with the interval
 * at most ~40 units wide: so at most one multiple of 40 (a decimal with one
 * digit less: sp * 10^(k+1)) and at least one multiple of 4 (s * 10^k) fits.
 * If exactly one of the two 10^(k+1)-neighbours of the value fits, it is
 * the shortest answer; else the nearer of s, s + 1 (ties to even) among
 * those inside. Giulietti proves this picks the shortest decimal in the
 * interval and, among those, the nearest. */
static void to_decimal(uint32_t bits, uint32_t *digits, int *exp10) {
  uint32_t fr = bits & 0x7FFFFF, be = bits >> 23;
  uint32_t c;
  int q;
  if (be) {
    c = fr | 0x800000;
    q = (int)be - 150;
  } else {
    c = fr;
    q = -149;
  }
  bool even = !(c & 1), closer = fr == 0 && be > 1;
  uint32_t cbl = 4 * c - 2 + closer, cb = 4 * c, cbr = 4 * c + 2;
  int k = closer ? floor_log10_34_pow2(q) : floor_log10_pow2(q);
  int h = q + floor_log2_pow10(-k) + 1; /* 1..4: cbr << h < 2^31 */
  uint64_t g = g_pow10[-k + 31];
  uint32_t vbl = round_to_odd(g, cbl << h), vb = round_to_odd(g, cb << h),
           vbr = round_to_odd(g, cbr << h);
  uint32_t lower = vbl + !even, upper = vbr - !even;
  uint32_t s = vb / 4;
  if (s >= 10) {
    uint32_t sp = s / 10;
    bool up_in = lower <= 40 * sp, wp_in = 40 * sp + 40 <= upper;
    if (up_in != wp_in) {
      *digits = sp + wp_in;
      *exp10 = k + 1;
      return;
    }
  }
  bool u_in = lower <= 4 * s, w_in = 4 * s + 4 <= upper;
  if (u_in != w_in) {
    *digits = s + w_in;
    *exp10 = k;
    return;
  }
  uint32_t mid = 4 * s + 2;
  bool up = vb > mid || (vb == mid && (s & 1));
  *digits = s + up;
  *exp10 = k;
}

size_t qs_num_format(char *dst, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  char *p = dst;
  if (bits >> 31) *p++ = '-';
  bits &= 0x7FFFFFFF;
  if (!bits) {
    *p++ = '0';
    return (size_t)(p - dst);
  }
  uint32_t d;
  int k;
  to_decimal(bits, &d, &k);
  while (d % 10 == 0) {
    d /= 10;
    k++;
  }
  char dig[12] = {0};
  int nd = 0;
  for (uint32_t t = d; t; t /= 10) nd++;
  for (int i = nd - 1; i >= 0; i--, d /= 10) dig[i] = (char)('0' + d % 10);
  int x = k + nd - 1; /* decimal exponent of the first digit */
  if (x < -4 || x >= 9) {
    *p++ = dig[0];
    if (nd > 1) {
      *p++ = '.';
      memcpy(p, dig + 1, (size_t)(nd - 1));
      p += nd - 1;
    }
    *p++ = 'e';
    *p++ = x < 0 ? '-' : '+';
    int ax = x < 0 ? -x : x;
    if (ax >= 100) *p++ = (char)('0' + ax / 100);
    *p++ = (char)('0' + ax / 10 % 10);
    *p++ = (char)('0' + ax % 10);
  } else if (x >= 0) {
    if (nd <= x + 1) {
      memcpy(p, dig, (size_t)nd);
      p += nd;
      for (int i = nd; i <= x; i++) *p++ = '0';
    } else {
      memcpy(p, dig, (size_t)(x + 1));
      p += x + 1;
      *p++ = '.';
      memcpy(p, dig + x + 1, (size_t)(nd - x - 1));
      p += nd - x - 1;
    }
  } else {
    *p++ = '0';
    *p++ = '.';
    for (int i = -1; i > x; i--) *p++ = '0';
    memcpy(p, dig, (size_t)nd);
    p += nd;
  }
  return (size_t)(p - dst);
}
