#!/usr/bin/env python3
"""Reference label rows of Dual RS (docs/method.md §5) and what estimator training keeps of them
(§6), computed with SciPy and NumPy only, for tests/unit/core/dual_test.cpp and
tests/unit/train/estimator_set_test.cpp.

For one example with true label y and, at each sigma_i of Sigma, N votes over K classes
(counts; N = their sum), at level alpha_label:
  c_hat    = argmax(votes) (ties -> lowest index)
  p        = BetaQuantile(alpha_label; n_c_hat, N - n_c_hat + 1)      (0 when n_c_hat = 0)
  R_c      = sigma_i * Phi^-1(p) if c_hat == y and p >= 0.5, else 0
  best     = the index of the largest R_c, ties -> the smaller sigma; -1 when every R_c is 0
  max      = max_i R_c
Over a table of rows: q_i = (rows with best = i) / (rows with best >= 0), w_e = 1/q_best for
kept rows and 0 for dropped ones (best = -1). Estimator training keeps the rows with
best >= 0, in order, with w_e (or 1 without rebalancing).

    /usr/bin/python3 tests/reference/make_label_reference.py --out tests/data
"""
import argparse
import json
import os

import numpy as np
from scipy import stats


def label_radius(votes, label, sigma, alpha):
    n = int(sum(votes))
    top = int(np.argmax(votes))  # numpy: first maximum = lowest index
    k = votes[top]
    p = 0.0 if k == 0 else float(stats.beta.ppf(alpha, k, n - k + 1))
    return sigma * float(stats.norm.ppf(p)) if (top == label and p >= 0.5) else 0.0


def best_index(radii):
    best, best_r = -1, 0.0
    for i, r in enumerate(radii):
        if r > best_r:  # strict: a tie keeps the smaller sigma
            best, best_r = i, r
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()
    sigmas = [0.25, 0.5, 1.0]
    alpha = 0.001
    # (dataset index, true label, votes over K = 3 classes at each sigma, N = 100 each)
    rows = [
        (3, 1, [[0, 100, 0], [2, 97, 1], [20, 60, 20]]),    # all correct, radius shrinks with p
        (7, 0, [[99, 1, 0], [95, 3, 2], [90, 5, 5]]),       # larger sigma wins despite lower p
        (8, 2, [[10, 10, 80], [30, 30, 40], [34, 33, 33]]),  # only the smallest sigma certifies
        (11, 0, [[40, 60, 0], [10, 90, 0], [0, 100, 0]]),   # confident but wrong: all zero, dropped
        (12, 1, [[50, 50, 0], [33, 34, 33], [34, 33, 33]]),  # never confident: dropped
        (15, 1, [[0, 100, 0], [0, 100, 0], [1, 98, 1]]),    # best at sigma 1.0
        (19, 2, [[0, 0, 100], [0, 1, 99], [45, 10, 45]]),   # tie in votes at 1.0 -> class 0, wrong
        (20, 0, [[100, 0, 0], [100, 0, 0], [100, 0, 0]]),   # the label cap at every sigma
    ]
    out = {"sigma_candidates": sigmas, "alpha": alpha, "rows": []}
    best_all = []
    for idx, label, votes in rows:
        radii = [label_radius(v, label, s, alpha) for v, s in zip(votes, sigmas)]
        best = best_index(radii)
        best_all.append(best)
        out["rows"].append({"idx": idx, "label": label, "votes": votes, "radii": radii, "best": best,
                            "max_radius": max(radii)})
    kept = [b for b in best_all if b >= 0]
    q = {i: kept.count(i) / len(kept) for i in set(kept)}
    weights = [1.0 / q[b] if b >= 0 else 0.0 for b in best_all]
    for row, w in zip(out["rows"], weights):
        row["weight_e"] = w
    out["kept_positions"] = [i for i, b in enumerate(best_all) if b >= 0]
    path = os.path.join(args.out, "label_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
