#!/usr/bin/env python3
"""Reference numbers of dualrs's counter-based noise, RNG layout version 1 (src/dualrs/rng/noise.h),
computed independently of the C++ code for tests/unit/rng/noise_test.cpp.

Layout version 1:
  key     = splitmix64(seed ^ splitmix64(stage)) -> (k0, k1) = (low 32 bits, high 32 bits)
  counter = (element block b, sample index, sigma index, example index)
  Philox4x32-10 (Salmon et al., SC 2011; the round and key schedule of Random123's
  philox4x32_R(10)) -> words (w0, w1, w2, w3)
  Box-Muller as Random123's r123::boxmuller(uint32, uint32), all in float32:
      x = int32(w0) * 2^-31 + 2^-32            (uneg11)
      u = uint32(w1) * 2^-32 + 2^-33           (u01)
      s, c = sincosf(pi_f * x);  r = sqrtf(-2 * logf(u))
      z = (s * r, c * r)
  elements 4b, 4b+1 from (w0, w1), 4b+2, 4b+3 from (w2, w3);
  value = sigma * z (+ offset[e], a second float32 rounding).
sincosf and logf are the C library's (glibc's libm through ctypes), which is what the C++
code calls; every other operation is an IEEE float32 operation in numpy.

Columns of noise_reference.csv: case, sample, element, bits (the float32 value's bit pattern
as an unsigned integer). The cases are listed in CASES below and repeated in the test.

    /usr/bin/python3 tests/reference/make_noise_reference.py --out tests/data
"""
import argparse
import ctypes
import ctypes.util
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

LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
LIBM.logf.restype = ctypes.c_float
LIBM.logf.argtypes = [ctypes.c_float]
LIBM.sincosf.restype = None
LIBM.sincosf.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]

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


def boxmuller(u0, u1):
    s0 = u0 - (1 << 32) if u0 >= (1 << 31) else u0
    x = F(F(s0) * F(2.0 ** -31)) + F(2.0 ** -32)
    u = F(F(u1) * F(2.0 ** -32)) + F(2.0 ** -33)
    s, c = ctypes.c_float(), ctypes.c_float()
    LIBM.sincosf(ctypes.c_float(F(F(3.1415926535897932) * x)), ctypes.byref(s), ctypes.byref(c))
    r = np.sqrt(F(F(-2.0) * F(LIBM.logf(ctypes.c_float(u)))), dtype=F)
    return F(F(s.value) * r), F(F(c.value) * r)


def offset_value(e):
    return F(F(e % 256) / F(255.0))


def case_values(seed, stage, example, sigma_index, first_sample, count, numel, sigma, with_offset):
    k = splitmix64(seed ^ splitmix64(stage))
    key = (k & MASK32, k >> 32)
    rows = []
    for s in range(count):
        sample = first_sample + s
        for b in range((numel + 3) // 4):
            w = philox4x32_10((b, sample, sigma_index, example), key)
            z01 = boxmuller(w[0], w[1])
            z23 = boxmuller(w[2], w[3])
            for j, z in enumerate((z01[0], z01[1], z23[0], z23[1])):
                e = 4 * b + j
                if e >= numel:
                    break
                v = F(F(sigma) * z)
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
            for s, e, bits in case_values(*case):
                f.write(f"{i},{s},{e},{bits}\n")


if __name__ == "__main__":
    main()
