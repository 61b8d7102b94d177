#!/usr/bin/env python3
"""Generate independent reference tables for dualrs' statistics code.

Every value written here comes from SciPy / statsmodels, which don't depend
on the C++ code under test. The C++ unit tests read these CSV files and
compare their own results with them. If mpmath is installed it is used only
as an extra sanity check of the SciPy values (it never supplies a value that
gets written). Nothing is random except a few extra grid points, drawn from
fixed seeds, so the output is deterministic for a given SciPy/statsmodels
version.

Usage (from the repository root, with Debian's python3-scipy and
python3-statsmodels):

    /usr/bin/python3 tests/reference/make_stats_reference.py --out tests/data/

Floats are written with '%.17g' (repr-level precision, round-trips to the same
IEEE double); integers and the 0/1 flags are written as plain integers. Every
file has a header row.

Files and formulas
------------------
stats_clopper_pearson.csv  -- columns n_a,n,alpha,p_a_lower,p_a_upper
    One-sided Clopper-Pearson bounds at level alpha for n_a successes in n
    trials (this is the bound Cohen et al. 2019 use in CERTIFY):
      p_a_lower = proportion_confint(n_a, n, alpha=2*alpha, method="beta")[0]
                = Beta.ppf(alpha; n_a, n - n_a + 1)      (0 when n_a == 0)
      p_a_upper = proportion_confint(n_a, n, alpha=2*alpha, method="beta")[1]
                = Beta.isf(alpha; n_a + 1, n - n_a)      (1 when n_a == n)
    The script asserts that p_a_lower agrees with
    scipy.stats.beta.ppf(alpha, n_a, n-n_a+1) to 1e-12 relative, and that
    p_a_upper agrees with 1 - beta.ppf(alpha, n-n_a, n_a+1) to 1e-12 absolute.

stats_norm_ppf.csv  -- columns p,ppf
    ppf = scipy.stats.norm.ppf(p), the standard normal quantile Phi^{-1}(p).

stats_radius.csv  -- columns n_a,n,alpha,sigma,p_a_lower,radius,abstain
    Cohen et al.'s CERTIFY radius rule for a Gaussian-smoothed classifier:
      p_a_lower = one-sided Clopper-Pearson lower bound (as above)
      abstain   = 1 if p_a_lower <= 0.5 else 0   (dualrs abstains at exactly 0.5)
      radius    = sigma * norm.ppf(p_a_lower) if abstain == 0 else 0
    Note: the rows (n_a, n) = (1, 1) and (3, 5) with alpha = 0.5 have
    p_a_lower == 0.5 exactly (the medians of Beta(1, 1) and Beta(3, 3)), so
    they abstain (radius 0). Near the 0.5 threshold the
    radius is ill-conditioned (radius ~ 2.5 * sigma * (p_a_lower - 0.5)), so
    compare radii with an absolute tolerance there.

stats_binom_test.csv  -- columns k,n,p,p_value
    The exact two-sided binomial test
      p_value = scipy.stats.binomtest(k, n, p, alternative="two-sided").pvalue
    i.e. min(1, sum of P(X = i) over all i with
    P(X = i) <= P(X = k) * (1 + 1e-7)), X ~ Binomial(n, p). (SciPy, like R,
    uses the relative tolerance 1e-7 to count near-ties as ties.) When
    k == n*p SciPy returns exactly 1. Rows with p != 0.5 whose answer would
    change if the 1e-7 tie tolerance were changed (some other term P(X = i),
    i != k, within 1e-6 relative of P(X = k)) are left out, so that
    these rows don't depend on that convention. Rows whose p-value is
    subnormal (nonzero but below DBL_MIN = 2.2250738585072014e-308) are also
    left out. A p_value of 0 means the true value is below 1e-320, far below
    the smallest normal double (for example k = 0 or 1 with n = 10000); the
    script checks that with mpmath. The smallest nonzero p_value is about
    1.8e-307, and several are below 1e-200.

stats_predict.csv  -- columns c1,c2,alpha,abstain
    Cohen et al.'s PREDICT decision on the top-two class counts c1 >= c2
    (c1 + c2 >= 1):
      abstain = 1 if binomtest(c1, c1 + c2, 0.5).pvalue > alpha else 0
    For each total c1 + c2 and alpha the grid holds the c1 at which the
    decision flips (the smallest c1 that doesn't abstain), c1 - 1 and c1 + 1,
    as well as c1 = ceil(total/2) (the smallest c1 >= c2) and c1 = total.
"""

import argparse
import math
import os
import sys
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

try:
    import mpmath
except ImportError:  # the mpmath cross-checks are optional
    mpmath = None

N_VALUES = [1, 2, 5, 10, 100, 1000, 10000, 100000]
CP_ALPHAS = [0.5, 0.1, 0.05, 0.001, 1e-5, 1e-10, 1e-15]


def fmt(x):
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return "%.17g" % float(x)


def write_csv(path, header, rows):
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            assert len(r) == len(header)
            for v in r:
                if not isinstance(v, (int, np.integer)):
                    assert math.isfinite(float(v)), (path, r)
            f.write(",".join(fmt(v) for v in r) + "\n")
    return len(rows)


# --------------------------------------------------------------------------
# Clopper-Pearson
# --------------------------------------------------------------------------

def cp_lower(n_a, n, alpha):
    lo = float(proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[0])
    if n_a == 0:
        assert lo == 0.0
    else:
        ref = float(stats.beta.ppf(alpha, n_a, n - n_a + 1))
        assert abs(lo - ref) <= 1e-12 * abs(ref), (n_a, n, alpha, lo, ref)
    return lo


def cp_upper(n_a, n, alpha):
    up = float(proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[1])
    if n_a == n:
        assert up == 1.0
    else:
        ref = 1.0 - float(stats.beta.ppf(alpha, n - n_a, n_a + 1))
        assert abs(up - ref) <= 1e-12, (n_a, n, alpha, up, ref)
    return up


def cp_threshold(n, alpha):
    """Smallest n_a in [0, n] with cp_lower(n_a, n, alpha) >= 0.5, or None."""
    if cp_lower(n, n, alpha) < 0.5:
        return None
    lo, hi = 0, n  # cp_lower is increasing in n_a
    while lo < hi:
        mid = (lo + hi) // 2
        if cp_lower(mid, n, alpha) >= 0.5:
            hi = mid
        else:
            lo = mid + 1
    return lo


def mp_binom_tail_ge(n, x, k):
    """P(Binomial(n, x) >= k) in mpmath (x is taken as its exact binary value).

    Sums the pmf outward from the mode with a recurrence and stops once the
    terms are negligible, so it is cheap even for n = 100000."""
    mp = mpmath.mp
    if k <= 0:
        return mpmath.mpf(1)
    if k > n:
        return mpmath.mpf(0)
    X = mpmath.mpf(x)
    Y = 1 - X
    r = X / Y

    def pmf(i):
        return mpmath.binomial(n, i) * X ** i * Y ** (n - i)

    eps = mpmath.mpf(2) ** (-mp.prec - 20)
    mode = int(math.floor((n + 1) * x))
    if k > mode:  # upper tail: terms decrease from k upwards
        t = pmf(k)
        s = t
        i = k
        while i < n:
            t = t * (n - i) / (i + 1) * r
            i += 1
            s += t
            if t < eps * s:
                break
        return s
    # otherwise 1 - P(X <= k-1); terms decrease from k-1 downwards
    t = pmf(k - 1)
    s = t
    i = k - 1
    while i > 0:
        t = t * i / (n - i + 1) / r
        i -= 1
        s += t
        if t < eps * s:
            break
    return 1 - s


def mp_check_cp(n_a, n, alpha, lo, up):
    """Relative error of the bounds, measured against mpmath, via one Newton
    step.

    P(Beta(a, b) <= x) = P(Binomial(a+b-1, x) >= a), so the exact lower bound
    solves F(x) = P(Bin(n, x) >= n_a) = alpha and the exact upper bound solves
    G(x) = P(Bin(n, x) <= n_a) = alpha. With F'(x) = n * C(n-1, n_a-1) *
    x^(n_a-1) * (1-x)^(n-n_a), the distance to the exact root is about
    (F(x) - alpha) / F'(x). Returns max |distance| / x over the two bounds.
    (Checking |F(x) - alpha| / alpha directly would be ill-conditioned: e.g.
    for n = 1 the upper bound 1 - 1e-15 cannot be stored any closer.)"""
    if mpmath is None:
        return 0.0
    mpmath.mp.dps = 50
    worst = 0.0

    def dens(x, k):  # d/dx P(Bin(n, x) >= k)
        X = mpmath.mpf(x)
        return n * mpmath.binomial(n - 1, k - 1) * X ** (k - 1) * \
            (1 - X) ** (n - k)

    if n_a > 0 and lo > 0:
        v = mp_binom_tail_ge(n, lo, n_a)
        worst = max(worst, float(abs((v - alpha) / dens(lo, n_a)) / lo))
    if n_a < n and up < 1:
        v = mp_binom_tail_ge(n, up, n_a + 1)  # = 1 - G(up)
        worst = max(worst, float(abs(((1 - v) - alpha) / dens(up, n_a + 1))
                                 / up))
    return worst


def make_clopper_pearson(rng):
    rows = []
    worst_mp = 0.0
    for n in N_VALUES:
        cand = {0, 1, n - 1, n, n // 2 - 1, n // 2, n // 2 + 1, (n + 1) // 2}
        t = cp_threshold(n, 0.001)
        if t is not None:
            cand |= {t, t - 1}
        if n >= 5:
            cand |= {int(x) for x in rng.integers(0, n + 1, size=2)}
        cand = sorted(c for c in cand if 0 <= c <= n)
        for n_a in cand:
            for alpha in CP_ALPHAS:
                lo = cp_lower(n_a, n, alpha)
                up = cp_upper(n_a, n, alpha)
                assert 0.0 <= lo <= up <= 1.0
                worst_mp = max(worst_mp, mp_check_cp(n_a, n, alpha, lo, up))
                rows.append((n_a, n, alpha, lo, up))
    if mpmath is not None:
        assert worst_mp < 1e-12, worst_mp
    return rows, worst_mp


# --------------------------------------------------------------------------
# Normal quantile
# --------------------------------------------------------------------------

def make_norm_ppf():
    ps = [1e-300, 1e-200, 1e-100, 1e-50, 1e-20, 1e-15, 1e-10, 1e-7, 1e-5,
          1e-4, 0.001, 0.01, 0.02425, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3,
          1.0 / 3.0, 0.4, 0.45, 0.4999999, 0.5, 0.5000001, 0.5 + 1e-12,
          0.55, 0.6, 0.6914624612740131, 0.7, 0.75, 0.8, 0.8413447460685429,
          0.9, 0.95, 0.975, 0.97575, 0.99, 0.999, 0.9999, 0.99999, 0.999999,
          1 - 1e-8, 1 - 1e-10, 1 - 1e-12, 1 - 1e-15]
    rows = []
    for p in ps:
        v = float(stats.norm.ppf(p))
        assert math.isfinite(v)
        # sanity: round trip through the CDF
        if p < 0.5:
            assert abs(stats.norm.cdf(v) - p) <= 1e-12 * p
        rows.append((p, v))
    assert dict(rows)[0.5] == 0.0
    return rows


# --------------------------------------------------------------------------
# CERTIFY radius
# --------------------------------------------------------------------------

def make_radius():
    sigmas = [0.12, 0.25, 0.5, 1.0]
    alphas = [0.5, 0.1, 0.001, 1e-5, 1e-15]
    keys = set()
    for n in N_VALUES:
        for alpha in alphas:
            cand = {0, n}
            t = cp_threshold(n, alpha)
            if t is not None:
                cand |= {t, t - 1}
            for n_a in cand:
                if 0 <= n_a <= n:
                    keys.add((n_a, n, alpha))
    for alpha in [0.1, 0.05, 0.001, 1e-5, 1e-10, 1e-15]:
        keys.add((9900, 10000, alpha))
        keys.add((99000, 100000, alpha))
        keys.add((990, 1000, alpha))
        keys.add((1000, 1000, alpha))
    rows = []
    exact_half = []
    for (n_a, n, alpha) in sorted(keys, key=lambda k: (k[1], k[0], -k[2])):
        p = cp_lower(n_a, n, alpha)
        for sigma in sigmas:
            abstain = 1 if p <= 0.5 else 0
            radius = sigma * float(stats.norm.ppf(p)) if not abstain else 0.0
            assert radius >= 0.0
            rows.append((n_a, n, alpha, sigma, p, radius, abstain))
        if abs(p - 0.5) < 1e-9:
            exact_half.append((n_a, n, alpha, p))
    return rows, exact_half


# --------------------------------------------------------------------------
# Two-sided binomial test
# --------------------------------------------------------------------------

def binom_pvalue(k, n, p):
    # For huge n, P(X = k) can underflow to 0 inside SciPy (Boost reports
    # this as a "divide by zero" RuntimeWarning); the p-value is then 0 as
    # well, which the mpmath check confirms. Silence only that warning.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="divide by zero")
        return float(stats.binomtest(int(k), int(n), float(p),
                                     alternative="two-sided").pvalue)


def mp_binom_check(k, n, p):
    """Return (mpmath p-value, ambiguous?) using the same 1e-7 tie rule.

    ambiguous is True when some term's ratio to P(X=k) is within 1e-6 of 1
    (excluding k itself and exact mirror ties for p = 0.5)."""
    mpmath.mp.dps = 50
    if p == 0.5:
        # symmetric: p-value = min(1, 2 * P(X <= min(k, n-k))), exact ties
        m = min(k, n - k)
        if 2 * m == n:
            return mpmath.mpf(1), False
        tail = mp_binom_tail_ge(n, 0.5, n - m)  # = P(X <= m) by symmetry
        return min(mpmath.mpf(1), 2 * tail), False

    P = mpmath.mpf(p)
    Q = 1 - P
    r = P / Q
    pmf = [Q ** n]
    for i in range(n):
        pmf.append(pmf[-1] * (n - i) / (i + 1) * r)
    d = pmf[k]
    lim = d * (1 + mpmath.mpf(1e-7))
    total = mpmath.mpf(0)
    ambiguous = False
    tiny = mpmath.mpf(1e-30)
    for i, a in enumerate(pmf):
        if a <= lim:
            total += a
        if i != k:
            dev = abs(a / d - 1)
            if tiny < dev < mpmath.mpf(1e-6):
                ambiguous = True
    return min(mpmath.mpf(1), total), ambiguous


def make_binom_test(rng):
    keys = set()
    for n in [1, 2, 3, 5, 10, 11, 100, 101, 1000, 10000, 100000]:
        h = n // 2
        cand = {0, 1, h - 1, h, (n + 1) // 2, h + 1, h + 2, n - 1, n}
        if n >= 10:
            cand |= {int(x) for x in rng.integers(0, n + 1, size=2)}
        for k in cand:
            if 0 <= k <= n:
                keys.add((k, n, 0.5))
    # tiny p-values (p = 0.5)
    for k, n in [(0, 665), (665, 665), (0, 1000), (1, 1000), (0, 1020),
                 (52000, 100000), (55000, 100000), (45000, 100000),
                 (5500, 10000), (6000, 10000), (4000, 10000),
                 (700, 1000), (850, 1000), (50700, 100000), (49300, 100000)]:
        keys.add((k, n, 0.5))
    # general p
    for p in [0.1, 0.3, 0.7]:
        for n in [1, 2, 5, 10, 37, 100, 1000, 10000]:
            m = n * p
            cand = {0, 1, n - 1, n, math.floor(m) - 1, math.floor(m),
                    math.ceil(m), math.ceil(m) + 1, math.floor(m) - 3,
                    math.ceil(m) + 3}
            if n >= 10:
                cand |= {int(x) for x in rng.integers(0, n + 1, size=2)}
            for k in cand:
                if 0 <= k <= n:
                    keys.add((k, n, p))
        # tiny p-values
        for k, n in [(0, 1000), (1000, 1000), (int(1000 * (1 - p)), 1000),
                     (int(10000 * p) + 600, 10000),
                     (int(10000 * p) - 600, 10000)]:
            keys.add((k, n, p))

    rows = []
    dropped = []
    worst = 0.0
    n_checked = 0
    for (k, n, p) in sorted(keys, key=lambda t: (t[2] != 0.5, t[2], t[1], t[0])):
        pv = binom_pvalue(k, n, p)
        assert 0.0 <= pv <= 1.0, (k, n, p, pv)
        if 0.0 < pv < sys.float_info.min:
            dropped.append((k, n, p, pv, "subnormal"))
            continue
        if mpmath is not None and (p == 0.5 or n <= 10000):
            ref, ambiguous = mp_binom_check(k, n, p)
            if ambiguous:
                dropped.append((k, n, p, pv, "near-tie"))
                continue
            n_checked += 1
            if pv == 0.0:
                assert ref < mpmath.mpf("1e-320"), (k, n, p, ref)
            else:
                err = float(abs(mpmath.mpf(pv) - ref) / ref)
                worst = max(worst, err)
                assert err < 1e-9, (k, n, p, pv, ref)
        rows.append((k, n, p, pv))
    return rows, dropped, worst, n_checked


# --------------------------------------------------------------------------
# PREDICT
# --------------------------------------------------------------------------

def predict_abstain(c1, c2, alpha):
    return 1 if binom_pvalue(c1, c1 + c2, 0.5) > alpha else 0


def make_predict():
    totals = [1, 2, 3, 4, 5, 6, 10, 11, 20, 50, 100, 101, 1000, 10000, 100000]
    alphas = [0.1, 0.05, 0.01, 0.001, 1e-5, 1e-10]
    rows = []
    near = []
    flips = 0
    margin = float("inf")  # smallest |p_value - alpha| / alpha over all rows
    for N in totals:
        lo0 = (N + 1) // 2  # smallest c1 with c1 >= c2
        for alpha in alphas:
            cand = {lo0, N}
            if predict_abstain(N, 0, alpha) == 0:
                # abstain is non-increasing in c1 on [lo0, N]: binary search
                lo, hi = lo0, N
                while lo < hi:
                    mid = (lo + hi) // 2
                    if predict_abstain(mid, N - mid, alpha) == 0:
                        hi = mid
                    else:
                        lo = mid + 1
                t = lo
                cand |= {t, t - 1, t + 1}
                if t - 1 >= lo0:
                    flips += 1
            for c1 in sorted(cand):
                if c1 < lo0 or c1 > N:
                    continue
                c2 = N - c1
                pv = binom_pvalue(c1, N, 0.5)
                margin = min(margin, abs(pv - alpha) / alpha)
                if abs(pv - alpha) <= 1e-9 * alpha:
                    near.append((c1, c2, alpha, pv))
                rows.append((c1, c2, alpha, 1 if pv > alpha else 0))
    return rows, near, flips, margin


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/",
                    help="output directory (default tests/data/)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import scipy
    import statsmodels
    print("scipy %s, statsmodels %s, numpy %s, mpmath %s" % (
        scipy.__version__, statsmodels.__version__, np.__version__,
        mpmath.__version__ if mpmath is not None else "(not installed)"))

    out = lambda name: os.path.join(args.out, name)  # noqa: E731

    cp_rows, cp_mp = make_clopper_pearson(np.random.default_rng(20190201))
    n = write_csv(out("stats_clopper_pearson.csv"),
                  ["n_a", "n", "alpha", "p_a_lower", "p_a_upper"], cp_rows)
    print("stats_clopper_pearson.csv: %d rows (max rel err vs mpmath %s)"
          % (n, "%.2g" % cp_mp if mpmath else "n/a"))

    n = write_csv(out("stats_norm_ppf.csv"), ["p", "ppf"], make_norm_ppf())
    print("stats_norm_ppf.csv: %d rows" % n)

    r_rows, exact_half = make_radius()
    n = write_csv(out("stats_radius.csv"),
                  ["n_a", "n", "alpha", "sigma", "p_a_lower", "radius",
                   "abstain"], r_rows)
    print("stats_radius.csv: %d rows (%d abstain); p_a_lower within 1e-9 of "
          "0.5: %s" % (n, sum(r[6] for r in r_rows), exact_half))

    b_rows, dropped, worst, checked = make_binom_test(
        np.random.default_rng(20190202))
    n = write_csv(out("stats_binom_test.csv"), ["k", "n", "p", "p_value"],
                  b_rows)
    nz = [r[3] for r in b_rows if r[3] > 0]
    print("stats_binom_test.csv: %d rows (%d with p != 0.5), smallest nonzero "
          "p_value %.3g, %d zero; mpmath checked %d rows, max rel err %.2g; "
          "left out: %s" % (n, sum(1 for r in b_rows if r[2] != 0.5), min(nz),
                            sum(1 for r in b_rows if r[3] == 0), checked,
                            worst, dropped))

    p_rows, near, flips, margin = make_predict()
    n = write_csv(out("stats_predict.csv"), ["c1", "c2", "alpha", "abstain"],
                  p_rows)
    print("stats_predict.csv: %d rows (%d abstain), %d (total, alpha) flip "
          "points with both sides; min |p_value-alpha|/alpha %.2g; within "
          "1e-9 rel of alpha: %s"
          % (n, sum(r[3] for r in p_rows), flips, margin, near))
    return 0


if __name__ == "__main__":
    sys.exit(main())
