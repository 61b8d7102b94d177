#!/usr/bin/env python3
"""Reference numbers of dualrs's counter-based noise, RNG layout version 2 (src/dualrs/rng/noise.h,
src/dualrs/rng/gaussian.h), computed independently of the C++ code for tests/unit/rng/philox8_test.cpp.

Layout version 2:
  key     = splitmix64(seed ^ splitmix64(stage)) -> (k0, k1) = (low 32 bits, high 32 bits)
  counter = (block b, sample index, sigma index, example index)
  Philox4x32-10 (Salmon et al., SC 2011; the round and key schedule of Random123's
  philox4x32_R(10)) -> words (w0, w1, w2, w3)
  Box-Muller, every step an IEEE float32 operation (numpy float32 here):
      u = float(w1) * 2^-32 + 2^-33
      ln u: u = 2^k m, m in [sqrt(1/2), sqrt(2)) from the bits, f = m - 1, s = f/(2+f),
            ln u = k ln2_hi + (((k ln2_lo + s (f^2/2 + R)) - f^2/2) + f),  R = z(2/3 + z(2/5 + z(2/7 + z 2/9))), z = s^2
      r = sqrt(-2 ln u)
      angle: q = ((w0 >> 8) + 2^21) mod 2^24, quadrant j = q >> 22,
             phi = ((q mod 2^22) - 2^21 + 1/2) * float(2 pi) 2^-24,
             sin/cos of phi by Taylor polynomials to phi^9 / phi^10, rotated by j quarter turns
      (z_cos, z_sin) = (r cos, r sin)
  block b = 8g + l (l = b mod 8) gives elements 32g + l (w0, w1: cos), 32g + 8 + l (sin),
  32g + 16 + l (w2, w3: cos), 32g + 24 + l (sin);
  value = sigma * z (+ offset[e], a second float32 rounding).

Columns of noise_reference.csv: case, sample, element, bits (the float32 value's bit pattern
as an unsigned integer). The cases are listed in CASES below and repeated in the test.

    /usr/bin/python3 tests/reference/make_noise_reference.py --out tests/data
"""
import argparse
import math
import os

import numpy as np

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1

# (seed, stage, example, sigma_index, first_sample, count, numel, sigma, with_offset)
CASES = [
    (0, 2, 0, 0, 0, 2, 785, 0.5, False),              # a tail block; kCertifyEstimation
    (1234, 4, 42, 2, 7, 3, 13, 1.0, True),             # x + noise, 13 elements; kLabel
    (2026, 7, 0xFFFFFFFF, 1, 0xFFFFFFFE, 2, 70, 0.25, False),  # largest example and sample words
]

F = np.float32


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def philox4x32_10(ctr, key):
    c = list(ctr)
    k0, k1 = key
    for r in range(10):
        if r > 0:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & MASK32, p1 & MASK32, ((p0 >> 32) ^ c[3] ^ k1) & MASK32, p0 & MASK32]
    return c


def f32_bits(x):
    return int(np.array(F(x), dtype=F).view(np.uint32))


def bits_f32(b):
    return F(np.array(np.uint32(b & MASK32)).view(F))


LN2_HI = bits_f32(f32_bits(math.log(2.0)) & 0xFFFFF000)  # ln 2 to 13 bits
LN2_LO = F(math.log(2.0) - float(LN2_HI))
SQRT_HALF_BITS = f32_bits(math.sqrt(0.5))
L = [F(2.0 / n) for n in (3, 5, 7, 9)]
S = [F((-1) ** i / math.factorial(2 * i + 1)) for i in (1, 2, 3, 4)]
C = [F((-1) ** i / math.factorial(2 * i)) for i in (1, 2, 3, 4, 5)]
TURN_STEP = F(F(2.0 * math.pi) * F(2.0 ** -24))


def log_unit(u):
    ix = (f32_bits(u) - SQRT_HALF_BITS) & MASK32
    k = (ix - (1 << 32) if ix >= (1 << 31) else ix) >> 23
    m = bits_f32((ix & 0x7FFFFF) + SQRT_HALF_BITS)
    f = F(m - F(1.0))
    hfsq = F(F(F(0.5) * f) * f)
    s = F(f / F(F(2.0) + f))
    z = F(s * s)
    r = F(z * F(L[0] + F(z * F(L[1] + F(z * F(L[2] + F(z * L[3])))))))
    dk = F(k)
    lo = F(F(dk * LN2_LO) + F(s * F(hfsq + r)))
    return F(F(dk * LN2_HI) + F(F(lo - hfsq) + f))


def horner(x, coeffs):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = F(c + F(x * acc))
    return acc


def sincos_turn(a):
    q = ((a >> 8) + (1 << 21)) & 0xFFFFFF
    j = q >> 22
    phi = F(F(F((q & 0x3FFFFF) - (1 << 21)) + F(0.5)) * TURN_STEP)
    p2 = F(phi * phi)
    sp = F(phi + F(phi * F(p2 * horner(p2, S))))
    cp = F(F(1.0) + F(p2 * horner(p2, C)))
    s, c = (cp, sp) if j & 1 else (sp, cp)
    if j & 2:
        s = F(-s)
    if (j ^ (j >> 1)) & 1:
        c = F(-c)
    return s, c


def boxmuller(a, b):
    u = F(F(F(b) * F(2.0 ** -32)) + F(2.0 ** -33))
    r = np.sqrt(F(F(-2.0) * log_unit(u)), dtype=F)
    s, c = sincos_turn(a)
    return F(r * c), F(r * s)


def offset_value(e):
    return F(F(e % 256) / F(255.0))


def case_values(seed, stage, example, sigma_index, first_sample, count, numel, sigma, with_offset):
    k = splitmix64(seed ^ splitmix64(stage))
    key = (k & MASK32, k >> 32)
    rows = []
    for s in range(count):
        sample = first_sample + s
        for b in range(8 * ((numel + 31) // 32)):
            w = philox4x32_10((b, sample, sigma_index, example), key)
            z = boxmuller(w[0], w[1]) + boxmuller(w[2], w[3])
            for j in range(4):
                e = 32 * (b // 8) + b % 8 + 8 * j
                if e >= numel:
                    continue
                v = F(F(sigma) * z[j])
                if with_offset:
                    v = F(v + offset_value(e))
                rows.append((s, e, int(np.array(v, dtype=F).view(np.uint32))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    # Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors).
    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert philox4x32_10((MASK32,) * 4, (MASK32, MASK32)) == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    assert philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]
    with open(os.path.join(args.out, "noise_reference.csv"), "w") as f:
        f.write("case,sample,element,bits\n")
        for i, case in enumerate(CASES):
            for s, e, bits in sorted(case_values(*case)):
                f.write(f"{i},{s},{e},{bits}\n")


if __name__ == "__main__":
    main()
