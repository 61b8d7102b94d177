#!/usr/bin/env python3
"""Generate independent reference values for dualrs' variance-estimator objective.

The C++ code under test is src/dualrs/train/estimator_loss.{h,cpp}
(DualRS, Sun, Mao & Vechev, ICLR 2026, Section 5.2; docs/method.md Section 6; the
consistency term is Jeong & Shin, NeurIPS 2020). Nothing here calls dualrs:
every quantity is written out directly in numpy float64 (the probability
domain, softmax with the usual max shift), and the label radius cap uses
scipy.stats.norm.ppf. If Debian's python3-torch is importable, the results are
also cross-checked (never supplied) with torch.nn.functional in float64.

Usage (from the repository root, with Debian's python3-numpy and python3-scipy):

    /usr/bin/python3 tests/reference/make_estimator_loss_reference.py --out tests/data/

Output: estimator_loss_reference.json with

  cases: list of objects, each with
    name, B, m, S, logits [B][m][S], radii [B][S], w_e [B], lambda, eta,
    mode ("none" | "strong" | "weak"), c, and expected = {
      soft_labels [B][S]:  y_i = exp(r_i) / sum_j exp(r_j)
      ce [B]:              (1/m) sum_k -sum_i y_i log p_{k,i},  p_k = softmax(z_k)
      consistency [B]:     lambda (1/m) sum_k KL(pbar || p_k) + eta H(pbar),
                           pbar = (1/m) sum_k p_k,
                           KL(pbar || p_k) = sum_i pbar_i (log pbar_i - log p_{k,i}),
                           H(pbar) = -sum_i pbar_i log(max(pbar_i, 1e-20))
      w_r [B]:             1 for "none"; otherwise radii[b, s_hat] / c with
                           s_hat = max (strong) or min (weak) over the copies k
                           of argmax_i z_{k,i} (ties inside a copy -> first index)
      total:               mean_b w_e[b] (ce[b] + w_r[b] consistency[b])
    }
  label_radius_cap: list of {max_sigma, n, alpha, c} with
    c = max_sigma * norm.ppf(alpha ** (1 / n))
    (the largest label radius n votes can certify at level alpha; 1.5005 for
    max_sigma = 1, n = 100, alpha = 0.001, as docs/method.md Section 5 states).

Floats are written by json (repr precision, round-trips to the same double).
The output is deterministic (fixed numpy seeds).
"""

import argparse
import json
import math
import os

import numpy as np
from scipy.stats import norm

ENTROPY_FLOOR = 1e-20


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference(logits, radii, w_e, lam, eta, mode, c):
    z = np.asarray(logits, dtype=np.float64)  # [B, m, S]
    r = np.asarray(radii, dtype=np.float64)  # [B, S]
    w_e = np.asarray(w_e, dtype=np.float64)  # [B]
    B, m, S = z.shape
    y = softmax(r)  # [B, S]
    p = softmax(z)  # [B, m, S]
    log_p = np.log(p)
    ce = np.array([sum(-(y[b] * log_p[b, k]).sum() for k in range(m)) / m for b in range(B)])
    pbar = p.mean(axis=1)  # [B, S]
    kl = np.array([[(pbar[b] * (np.log(pbar[b]) - log_p[b, k])).sum() for k in range(m)] for b in range(B)])
    ent = np.array([-(pbar[b] * np.log(np.maximum(pbar[b], ENTROPY_FLOOR))).sum() for b in range(B)])
    con = lam * kl.mean(axis=1) + eta * ent
    if mode == "none":
        w_r = np.ones(B)
    else:
        w_r = np.empty(B)
        for b in range(B):
            picks = [int(np.argmax(z[b, k])) for k in range(m)]  # np.argmax: first maximum on ties
            s_hat = max(picks) if mode == "strong" else min(picks)
            w_r[b] = r[b, s_hat] / c
    total = float(np.mean(w_e * (ce + w_r * con)))
    return dict(soft_labels=y, ce=ce, consistency=con, w_r=w_r, total=total, kl=kl, ent=ent)


def torch_cross_check(case, exp):
    """Independent second opinion from torch.nn.functional (float64); asserts only."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return
    z = torch.tensor(case["logits"], dtype=torch.float64)
    r = torch.tensor(case["radii"], dtype=torch.float64)
    B, m, S = z.shape
    y = torch.softmax(r, dim=1)
    ce = torch.stack([F.cross_entropy(z[:, k], y, reduction="none") for k in range(m)], 1).mean(1)
    p = torch.softmax(z, dim=2)
    pbar = p.mean(1)
    # F.kl_div(input=log q, target=p) = sum p (log p - log q) = KL(p || q).
    kl = torch.stack([F.kl_div(torch.log_softmax(z[:, k], 1), pbar, reduction="none").sum(1) for k in range(m)], 1)
    ent = -(pbar * pbar.clamp_min(ENTROPY_FLOOR).log()).sum(1)
    con = case["lambda"] * kl.mean(1) + case["eta"] * ent
    assert np.allclose(y.numpy(), exp["soft_labels"], rtol=1e-12, atol=0), case["name"]
    assert np.allclose(ce.numpy(), exp["ce"], rtol=1e-12, atol=1e-300), case["name"]
    assert np.allclose(con.numpy(), exp["consistency"], rtol=1e-9, atol=1e-30), case["name"]


def radius_cap(max_sigma, n, alpha):
    return max_sigma * float(norm.ppf(alpha ** (1.0 / n)))


def make_cases():
    cap = radius_cap(1.0, 100, 0.001)
    cases = []

    def add(name, logits, radii, w_e, lam, eta, mode, c):
        cases.append(dict(name=name, logits=np.asarray(logits, dtype=np.float64),
                          radii=np.asarray(radii, dtype=np.float64), w_e=np.asarray(w_e, dtype=np.float64),
                          lam=float(lam), eta=float(eta), mode=mode, c=float(c)))

    def random_case(name, seed, B, m, S, lam, eta, mode, c, scale=2.0):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0.0, scale, size=(B, m, S))
        radii = rng.uniform(0.0, 1.5, size=(B, S))
        radii[rng.uniform(size=(B, S)) < 0.3] = 0.0  # abstained labels have radius 0
        w_e = rng.uniform(0.5, 3.0, size=B)
        add(name, logits, radii, w_e, lam, eta, mode, c)

    random_case("b1_m1_s2_strong", 101, 1, 1, 2, 40.0, 0.5, "strong", 1.5)
    random_case("b3_m2_s3_strong_cifar", 102, 3, 2, 3, 40.0, 0.5, "strong", cap)
    random_case("b4_m3_s4_weak_imagenet", 103, 4, 3, 4, 10.0, 0.5, "weak", cap)
    random_case("b3_m2_s4_none", 104, 3, 2, 4, 5.0, 0.1, "none", 1.0)
    random_case("b4_m2_s2_weak", 105, 4, 2, 2, 1.0, 2.0, "weak", 0.75)
    random_case("b1_m3_s3_strong", 106, 1, 3, 3, 40.0, 0.5, "strong", 2.0, scale=4.0)

    # Saturated logits: every entry +-50, so the probabilities reach e^-100 (< the 1e-20 floor).
    rng = np.random.default_rng(107)
    signs = rng.choice([-1.0, 1.0], size=(4, 2, 3))
    signs[0, 0] = [1.0, -1.0, -1.0]  # copies disagree: a large KL
    signs[0, 1] = [-1.0, -1.0, 1.0]
    signs[1, 0] = [-1.0, 1.0, -1.0]  # copies agree: KL and entropy are both tiny
    signs[1, 1] = [-1.0, 1.0, -1.0]
    add("b4_m2_s3_saturated_50", 50.0 * signs, rng.uniform(0.0, 1.5, size=(4, 3)), rng.uniform(0.5, 3.0, size=4),
        40.0, 0.5, "strong", cap)

    # Ties: inside a copy (argmax takes the first maximum) and between copies.
    tie_logits = [
        [[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, -1.0, 3.0]],  # picks 0, 1, 0 -> strong 1, weak 0
        [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]],   # all tied -> 0, 0, 0
        [[-1.0, 0.0, 2.0], [0.0, 0.0, -3.0], [1.0, 4.0, 4.0]],  # picks 2, 0, 1 -> strong 2, weak 0
    ]
    tie_radii = [[0.3, 0.9, 1.2], [0.0, 0.4, 0.8], [1.1, 0.2, 0.6]]
    tie_w_e = [1.0, 2.5, 0.8]
    add("b3_m3_s3_ties_strong", tie_logits, tie_radii, tie_w_e, 40.0, 0.5, "strong", cap)
    add("b3_m3_s3_ties_weak", tie_logits, tie_radii, tie_w_e, 10.0, 0.5, "weak", cap)
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/data/", help="output directory")
    args = parser.parse_args()

    cap_args = [(1.0, 100, 0.001), (0.5, 100, 0.001), (1.0, 1000, 0.001), (0.25, 10000, 1e-5), (2.0, 50, 0.01)]
    caps = [dict(max_sigma=s, n=n, alpha=a, c=radius_cap(s, n, a)) for s, n, a in cap_args]
    assert abs(caps[0]["c"] - 1.5005) < 1e-4, caps[0]
    # All n votes correct: the one-sided Clopper-Pearson lower bound Beta.ppf(alpha; n, 1) = alpha^(1/n).
    from scipy.stats import beta
    for c in caps:
        p = float(beta.ppf(c["alpha"], c["n"], 1))
        assert math.isclose(c["max_sigma"] * norm.ppf(p), c["c"], rel_tol=1e-10), c

    out_cases = []
    for case in make_cases():
        exp = reference(case["logits"], case["radii"], case["w_e"], case["lam"], case["eta"], case["mode"], case["c"])
        B, m, S = case["logits"].shape
        record = dict(name=case["name"], B=B, m=m, S=S, logits=case["logits"].tolist(), radii=case["radii"].tolist(),
                      w_e=case["w_e"].tolist(), mode=case["mode"], c=case["c"], expected=dict(
                          soft_labels=exp["soft_labels"].tolist(), ce=exp["ce"].tolist(),
                          consistency=exp["consistency"].tolist(), w_r=exp["w_r"].tolist(), total=exp["total"]))
        record["lambda"] = case["lam"]
        record["eta"] = case["eta"]
        assert all(np.isfinite(v).all() for v in (exp["ce"], exp["consistency"], exp["w_r"])), case["name"]
        if m == 1:
            assert np.all(exp["kl"] == 0.0), case["name"]
        torch_cross_check(record, record["expected"])
        out_cases.append(record)

    ties = {c["name"]: c["expected"]["w_r"] for c in out_cases}
    r = [[0.3, 0.9, 1.2], [0.0, 0.4, 0.8], [1.1, 0.2, 0.6]]
    cap = caps[0]["c"]
    assert np.allclose(ties["b3_m3_s3_ties_strong"], [r[0][1] / cap, r[1][0] / cap, r[2][2] / cap], rtol=1e-15)
    assert np.allclose(ties["b3_m3_s3_ties_weak"], [r[0][0] / cap, r[1][0] / cap, r[2][0] / cap], rtol=1e-15)

    doc = dict(
        description="Reference values for src/dualrs/train/estimator_loss (DualRS 5.2, docs/method.md 6); "
                    "generated by tests/reference/make_estimator_loss_reference.py in numpy/scipy float64.",
        cases=out_cases, label_radius_cap=caps)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "estimator_loss_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out_cases)} cases, {len(caps)} label radius caps")


if __name__ == "__main__":
    main()
