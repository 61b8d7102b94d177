#!/bin/bash
# Strong scaling of label building (issue 4 item 8): the same examples labelled by 1 rank and
# by 2 ranks, one thread each (OMP_NUM_THREADS=1), whole-command wall times (start-up and
# merge included). Prints T1, T2 and the strong-scaling efficiency T1 / (2 * T2) (target
# >= 0.85 on a 2-core machine), and checks that both runs wrote identical labels.
#
#   bench/run_label_scaling.sh [EXAMPLES [REPEATS]]     (defaults 240 and 2; needs build/)
#
# Each configuration runs REPEATS times, alternating, and the fastest run counts (the least
# disturbed by other work on the machine). N = 100 votes per sigma, Sigma = {0.25, 0.5, 1.0},
# shard_size 10, the MNIST CNN.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
examples="${1:-240}"
repeats="${2:-2}"
bin="$root/build/dualrs"
work="$(mktemp -d "${TMPDIR:-/tmp}/dualrs_scaling_XXXXXX")"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

/usr/bin/python3 - "$root" "$work" "$examples" <<'PY'
import json, os, sys
root, work, examples = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = os.path.join(root, "data", "mnist")
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
json.dump(cfg, open(os.path.join(work, "config.json"), "w"))
PY
"$bin" train-base -c "$work/config.json" -o "$work/base" -q

run_once() {  # ranks -> wall time in nanoseconds
  local ranks="$1" out="$work/out-$1"
  rm -rf "$out"
  local start end
  start=$(date +%s%N)
  mpirun -np "$ranks" "$bin" label -c "$work/config.json" -o "$out" -q --expect-world-size "$ranks"
  end=$(date +%s%N)
  echo $((end - start))
}

best1=0 best2=0
for ((r = 1; r <= repeats; r++)); do
  t1=$(run_once 1)
  t2=$(run_once 2)
  echo "repeat $r: 1 rank $((t1 / 1000000)) ms, 2 ranks $((t2 / 1000000)) ms"
  if ((best1 == 0 || t1 < best1)); then best1=$t1; fi
  if ((best2 == 0 || t2 < best2)); then best2=$t2; fi
done

/usr/bin/python3 - "$work" "$examples" "$best1" "$best2" <<'PY'
import sys
import h5py
import numpy as np
work, examples, t1, t2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e9, int(sys.argv[4]) / 1e9
with h5py.File(f"{work}/out-1/labels.h5", "r") as a, h5py.File(f"{work}/out-2/labels.h5", "r") as b:
    same = all(np.array_equal(a[k][()], b[k][()]) for k in a.keys())
print(f"label building, {examples} examples x 3 sigmas x N = 100, one thread per rank")
print(f"T1 = {t1:.2f} s ({examples / t1:.1f} ex/s), T2 = {t2:.2f} s ({examples / t2:.1f} ex/s)")
print(f"strong-scaling efficiency T1 / (2 T2) = {t1 / (2 * t2):.3f} (target >= 0.85)")
print(f"labels identical for 1 and 2 ranks: {same}")
sys.exit(0 if same else 1)
PY
