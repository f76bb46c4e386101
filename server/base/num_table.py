#!/usr/bin/env python3
"""num_table.py - prints the two power-of-ten tables of server/base/num.c, each
10^e scaled into [2^63, 2^64) by 2^(63 - floor(log2 10^e)), computed with
exact rationals:
  parse_pow10[e + 65], e in [-65, 38]: rounded down (parsing brackets the
      value from below),
  g_pow10[e + 31], e in [-31, 45]: rounded up (Schubfach printing).
    /usr/bin/python3 server/base/num_table.py   (paste each table into num.c)"""
from fractions import Fraction
import math


def scaled(e):
    v = Fraction(10) ** e
    fl = math.floor(math.log2(v))
    # log2 of a rational can be off by one near powers of two: fix exactly.
    while Fraction(2) ** fl > v:
        fl -= 1
    while Fraction(2) ** (fl + 1) <= v:
        fl += 1
    return v * Fraction(2) ** (63 - fl)


def table(name, lo, hi, rnd):
    vals = []
    for e in range(lo, hi + 1):
        g = rnd(scaled(e))
        assert 2**63 <= g < 2**64, e
        vals.append("0x%016XULL," % g)
    print("/* %s: e in [%d, %d] */" % (name, lo, hi))
    for i in range(0, len(vals), 3):
        print("    " + " ".join(vals[i:i + 3]))


table("parse_pow10", -65, 38, math.floor)
table("g_pow10", -31, 45, math.ceil)
