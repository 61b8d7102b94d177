#!/usr/bin/env python3
"""Reference outcomes of the Multiscale cascade rule (docs/method.md §11, dualrs's sound variant),
computed with SciPy only, for tests/unit/core/dual_test.cpp.

One stage at noise sigma with selection counts (n0 copies) and estimation counts (n copies,
K classes) and stage level a:
  c_hat   = argmax(selection) (ties -> lowest index)
  p_low   = BetaQuantile(a/2; n_c_hat, n - n_c_hat + 1)            (0 when n_c_hat = 0)
  p_high  = max_c BetaQuantile(1 - a/(2K); n_c + 1, n - n_c)         (1 when n_c = n)
  certify   if p_low >= 0.5: radius = sigma * Phi^-1(p_low)
  undecided elif p_high >= 0.5
  below     else: cap = sigma * (-Phi^-1(p_high))
A cascade visits sigma from largest to smallest; its radius is the certifying stage's radius
capped by every earlier stage's cap. Stage levels: bonferroni a = alpha/|Sigma|.

    /usr/bin/python3 tests/reference/make_multiscale_reference.py --out tests/data
"""
import argparse
import json
import os

import numpy as np
from scipy import stats


def stage(selection, estimation, sigma, a):
    n = int(sum(estimation))
    k = len(estimation)
    c_hat = int(np.argmax(selection))
    n_a = estimation[c_hat]
    p_low = 0.0 if n_a == 0 else float(stats.beta.ppf(a / 2, n_a, n - n_a + 1))
    uppers = [1.0 if c == n else float(stats.beta.ppf(1 - a / (2 * k), c + 1, n - c)) for c in estimation]
    p_high = max(uppers)
    out = {"selected": c_hat, "p_a_lower": p_low, "p_high": p_high, "radius": 0.0, "cap": 0.0}
    if p_low >= 0.5:
        out["decision"] = "certify"
        out["radius"] = sigma * float(stats.norm.ppf(p_low))
    elif p_high >= 0.5:
        out["decision"] = "undecided"
    else:
        out["decision"] = "below"
        out["cap"] = sigma * -float(stats.norm.ppf(p_high))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()
    sigmas = [0.25, 0.5, 1.0]
    alpha = 0.001
    cases = [
        # (name, stages largest sigma first: (selection, estimation))
        ("certify_first", [([1, 99, 0], [5, 990, 5])]),
        ("undecided_first", [([45, 55, 0], [480, 510, 10])]),
        ("below_then_certify", [([40, 35, 25], [350, 330, 320]), ([0, 100, 0], [20, 970, 10])]),
        ("below_below_certify", [([34, 33, 33], [340, 330, 330]), ([30, 40, 30], [300, 380, 320]),
                                 ([2, 97, 1], [10, 985, 5])]),
        ("below_then_undecided", [([34, 33, 33], [340, 330, 330]), ([10, 60, 30], [100, 520, 380])]),
    ]
    out = {"alpha": alpha, "sigmas": sigmas, "cases": []}
    for name, visits in cases:
        stage_alpha = alpha / len(sigmas)
        results = []
        for step, (sel, est) in enumerate(visits):
            sigma = sigmas[len(sigmas) - 1 - step]
            results.append(stage(sel, est, sigma, stage_alpha))
        final = {"prediction": -1, "radius": 0.0}
        if results[-1]["decision"] == "certify":
            caps = [r["cap"] for r in results[:-1]]
            final = {"prediction": results[-1]["selected"], "radius": min([results[-1]["radius"]] + caps)}
        out["cases"].append({"name": name, "stages": [{"selection": s, "estimation": e} for s, e in visits],
                             "expected_stages": results, "expected": final})
    path = os.path.join(args.out, "multiscale_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
