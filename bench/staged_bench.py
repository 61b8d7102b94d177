#!/usr/bin/env python3
"""Fixed vs staged CERTIFY, and Gaussian vs grid noise, on the main job's trained models.

    /usr/bin/python3 bench/staged_bench.py RUN_DIR [--count 100] [--n 10000] [--out DIR]
        [--methods global_0.25,global_0.5,global_1.0,multiscale,dual] [--grid]

RUN_DIR is the output folder of `dualrs run jobs/mnist_dual_rs.json` (its train_base,
finetune and train_estimator models are used). One job runs every method fixed and staged
(and with --grid the global-sigma methods with grid noise, fixed), on the first COUNT test
digits, n0 = 100, the given n, alpha = 0.001, batch 1000. Prints, per method, mean forward
passes per input, the fixed/staged ratio, certified accuracy at every radius of the config's
grid (inclusive convention) and the wall seconds of each certify stage. Needs build/dualrs
and Debian's python3-h5py.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RADII = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5]


def stage(name, run_dir, method, sampling, noise, n, count):
    s = {"method": method[0]}
    if method[0] == "global":
        s["sigma"] = method[1]
    s.update({"sampling": sampling, "noise": noise, "n": n, "selection": {"split": "test", "begin": 0, "end": count}})
    patch = {"certify": s, "model": {"checkpoint": os.path.join(run_dir, "train_base", "model.pt")}}
    if method[0] == "dual":
        patch["model"]["checkpoint"] = os.path.join(run_dir, "finetune", "model.pt")
        patch["dual"] = {"estimator": {"arch": "mnist_cnn",
                                       "checkpoint": os.path.join(run_dir, "train_estimator", "estimator.pt")}}
    return {"name": name, "command": "certify", "set": patch}


def summary(path):
    with h5py.File(path, "r") as f:
        radius = f["radius"][()]
        correct = f["correct"][()].astype(bool)
        passes = f["n_used"][()].astype(float)
        if "n_used_estimator" in f:
            passes = passes + f["n_used_estimator"][()]
        acc = [float(np.mean(correct & (radius >= r))) for r in RADII]
        return {"passes": float(passes.mean()), "acc": acc, "acr": float(np.mean(np.where(correct, radius, 0.0)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--out", default="")
    ap.add_argument("--methods", default="global_0.25,global_0.5,global_1.0,multiscale,dual")
    ap.add_argument("--grid", action="store_true", help="also the global-sigma methods with grid noise (fixed)")
    args = ap.parse_args()
    run_dir = os.path.abspath(args.run_dir)
    out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="dualrs_staged_")
    methods = []
    for m in args.methods.split(","):
        methods.append(("global", float(m.split("_")[1])) if m.startswith("global") else (m,))
    rows = []
    for m in methods:
        label = m[0] if len(m) == 1 else f"global_sigma_{m[1]:g}"
        for sampling in ("fixed", "staged"):
            rows.append((label, sampling, "gaussian", stage(f"{label}_{sampling}", run_dir, m, sampling, "gaussian", args.n, args.count)))
        if args.grid and m[0] == "global":
            rows.append((label, "fixed", "grid", stage(f"{label}_grid", run_dir, m, "fixed", "grid", args.n, args.count)))
    job = {"name": "staged_bench", "config": os.path.join(ROOT, "configs", "mnist_dual.json"), "stages": [r[3] for r in rows]}
    os.makedirs(out, exist_ok=True)
    job_path = os.path.join(out, "job.json")
    with open(job_path, "w") as f:
        json.dump(job, f, indent=1)
    subprocess.run([os.path.join(ROOT, "build", "dualrs"), "run", job_path, "--out", out, "--quiet"], check=True)
    times = {}
    for r in rows:  # each stage's wall seconds, from its completion record
        with open(os.path.join(out, r[3]["name"], f"stage-{r[3]['name']}.json")) as f:
            times[r[3]["name"]] = json.load(f)["seconds"]
    print(f"{args.count} test digits, n0 100, n {args.n}, alpha 0.001 (Dual RS: alpha_e = alpha_c = 0.0005)")
    print("| method | sampling | noise | passes/input | fixed/this | " + " | ".join(f"{r:g}" for r in RADII) + " | ACR | s |")
    print("|---|---|---|---:|---:|" + "---:|" * len(RADII) + "---:|---:|")
    fixed_passes = {}
    for label, sampling, noise, st in rows:
        s = summary(os.path.join(out, st["name"], "certify.h5"))
        if sampling == "fixed" and noise == "gaussian":
            fixed_passes[label] = s["passes"]
        ratio = fixed_passes.get(label, float("nan")) / s["passes"]
        print(f"| {label} | {sampling} | {noise} | {s['passes']:.0f} | {ratio:.2f} | "
              + " | ".join(f"{100 * a:.1f}" for a in s["acc"]) + f" | {s['acr']:.3f} | {times[st['name']]:.0f} |")
    print(f"(outputs in {out})")


if __name__ == "__main__":
    sys.exit(main())
