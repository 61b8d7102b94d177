#!/bin/bash
# Strong scaling of label building (docs/cluster.md §3): the same examples labelled by 1 rank and
# by 2 ranks, one thread each (OMP_NUM_THREADS=1), whole-command wall times (start-up and
# merge included). Prints T1, T2 and the strong-scaling efficiency T1 / (2 * T2) (target
# >= 0.85 on a 2-core machine), and checks that both runs wrote identical labels.
#
#   bench/run_label_scaling.sh [EXAMPLES [REPEATS]]     (defaults 240 and 2; needs build/)
#
# Each configuration runs REPEATS times, alternating, and the fastest run counts (the least
# disturbed by other work on the machine). The CPU time of all processes is printed too: its
# ratio C1 / C2 is the efficiency left after duplicated work (start-up on every rank) and
# communication, whatever else shares the cores; the wall-time efficiency needs two idle
# cores. N = 100 votes per sigma, Sigma = {0.25, 0.5, 1.0}, shard_size 10, the MNIST CNN.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
exec /usr/bin/python3 - "$root" "${1:-240}" "${2:-2}" <<'PY'
import json, os, resource, shutil, subprocess, sys, tempfile, time

import h5py
import numpy as np

root, examples, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
binary = os.path.join(root, "build", "dualrs")
data = os.path.join(root, "data", "mnist")
work = tempfile.mkdtemp(prefix="dualrs_scaling_")
try:
    cfg = {
        "name": "label-scaling",
        "dataset": {"name": "mnist", "format": "mnist_idx", "images": os.path.join(data, "images-idx3-ubyte.gz"),
                    "labels": os.path.join(data, "labels-idx1-ubyte.gz"),
                    "splits": {"train": os.path.join(data, "split", "train.txt")}},
        "model": {"arch": "mnist_cnn", "num_classes": 10, "checkpoint": os.path.join(work, "base", "model.pt")},
        "train_base": {"epochs": 1, "batch_size": 64, "sigma_candidates": [0.25, 0.5, 1.0],
                       "selection": {"split": "train", "end": 256}},
        "dual": {"sigma_candidates": [0.25, 0.5, 1.0], "sigma_e": 1.0},
        "label": {"n": 100, "alpha": 0.001, "batch_size": 100, "seed": 0, "shard_size": 10,
                  "selection": {"split": "train", "end": examples}},
    }
    config = os.path.join(work, "config.json")
    with open(config, "w") as f:
        json.dump(cfg, f)
    subprocess.run([binary, "train-base", "-c", config, "-o", os.path.join(work, "base"), "-q"], check=True)

    def run_once(ranks):
        """(wall seconds, CPU seconds of every process) of one labelling run."""
        out = os.path.join(work, f"out-{ranks}")
        shutil.rmtree(out, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        subprocess.run(["mpirun", "-np", str(ranks), binary, "label", "-c", config, "-o", out, "-q",
                        "--expect-world-size", str(ranks)], check=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    best = {1: (float("inf"), 0.0), 2: (float("inf"), 0.0)}
    for r in range(repeats):
        for ranks in (1, 2):
            wall, cpu = run_once(ranks)
            print(f"repeat {r + 1}: {ranks} rank(s): {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
            if wall < best[ranks][0]:
                best[ranks] = (wall, cpu)
    with h5py.File(os.path.join(work, "out-1", "labels.h5"), "r") as a, \
            h5py.File(os.path.join(work, "out-2", "labels.h5"), "r") as b:
        same = all(np.array_equal(a[k][()], b[k][()]) for k in a.keys())
    (t1, c1), (t2, c2) = best[1], best[2]
    print(f"label building, {examples} examples x 3 sigmas x N = 100, one thread per rank")
    print(f"T1 = {t1:.2f} s ({examples / t1:.1f} ex/s), T2 = {t2:.2f} s ({examples / t2:.1f} ex/s)")
    print(f"strong-scaling efficiency T1 / (2 T2) = {t1 / (2 * t2):.3f} (target >= 0.85)")
    print(f"CPU time C1 = {c1:.2f} s, C2 = {c2:.2f} s: C1 / C2 = {c1 / c2:.3f}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"labels identical for 1 and 2 ranks: {same}")
    sys.exit(0 if same else 1)
finally:
    shutil.rmtree(work, ignore_errors=True)
PY
