#!/usr/bin/env python3
"""Reference values for grid noise and staged CERTIFY, computed with SciPy alone.

Usage (repository root, Debian's python3-scipy):

    /usr/bin/python3 tests/reference/make_grid_reference.py --out tests/data/

grid_reference.json
  "masses": for sigma in SIGMAS, the mass of the rounded Gaussian at offsets i = 0..12 and at a
      few tail offsets: m_i = P(round(255 delta) = i), delta ~ N(0, sigma^2)
          = 0.5 * (erfc((2i - 1) / (510 sigma sqrt 2)) - erfc((2i + 1) / (510 sigma sqrt 2)))   (i >= 1)
          = erf(1 / (510 sigma sqrt 2))                                                         (i = 0)
      (scipy.special.erf / erfc, double precision: relative error about 1e-15).
  "staged": for a few (n, alpha, num_looks) the geometric looks ceil(n / 2^(L-1-j)), the
      alpha of each look (alpha/2 at the last, the rest evenly), and for each look the least
      count whose one-sided Clopper-Pearson lower bound Beta.ppf(alpha_j; c, n_j - c + 1)
      exceeds 0.5 and the least count whose radius sigma * Phi^-1(p) reaches each radius of
      RADII (n_j + 1 when none does). The C++ thresholds lower p and the radius by a few ulps,
      which moves a threshold only when a value sits within 1e-15 of its target: the test
      allows a difference of one count there.
"""
import argparse
import json
import math
import os

from scipy import special, stats

SIGMAS = [0.12, 0.25, 0.5, 1.0]
TAIL = [20, 100, 200]
RADII = [0.25, 0.5, 0.75]
STAGED = [(10000, 0.001, 8, 0.25), (1000, 0.1, 5, 0.5), (100000, 0.0005, 8, 1.0)]


def mass(i, sigma):
    s = 510.0 * sigma * math.sqrt(2.0)
    if i == 0:
        return float(special.erf(1.0 / s))
    return 0.5 * float(special.erfc((2 * i - 1) / s) - special.erfc((2 * i + 1) / s))


def p_lower(c, n, alpha):
    return 0.0 if c == 0 else float(stats.beta.ppf(alpha, c, n - c + 1))


def least(n, ok):
    lo, hi = 0, n + 1
    if not ok(n):
        return n + 1
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    masses = {}
    for sigma in SIGMAS:
        masses[repr(sigma)] = {str(i): mass(i, sigma) for i in list(range(13)) + TAIL}
    staged = []
    for n, alpha, looks, sigma in STAGED:
        ns = []
        for j in range(looks):
            v = max(1, math.ceil(n / 2 ** (looks - 1 - j)))
            if not ns or v > ns[-1]:
                ns.append(v)
        alphas = [alpha * 0.5 / (len(ns) - 1)] * (len(ns) - 1) + [alpha * 0.5]
        rows = []
        for nj, aj in zip(ns, alphas):
            row = {"n": nj, "alpha": aj, "certify": least(nj, lambda c: p_lower(c, nj, aj) > 0.5)}
            row["radii"] = [least(nj, lambda c, r=r: p_lower(c, nj, aj) > 0.5 and
                                  sigma * float(stats.norm.ppf(p_lower(c, nj, aj))) >= r) for r in RADII]
            rows.append(row)
        staged.append({"n": n, "alpha": alpha, "num_looks": looks, "sigma": sigma, "radii": RADII, "looks": rows})
    with open(os.path.join(out, "grid_reference.json"), "w") as f:
        json.dump({"masses": masses, "staged": staged}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
