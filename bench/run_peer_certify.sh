#!/bin/bash
# dualrs certification against a Cohen-style CERTIFY loop in plain PyTorch
# (bench/peer/cohen_style_certify.py) on the same TorchScript model file, the same test
# digits, n0, n, alpha and batch size, two threads each (target: dualrs >= 3x faster).
# Whole processes are timed, start-up included, in interleaved pairs.
#   bench/run_peer_certify.sh [CHECKPOINT] [COUNT]
# CHECKPOINT: a trained mnist_cnn model.pt (train-base's); without it, seeded fresh weights.
# Needs build/dualrs and Debian's python3-torch, python3-scipy, python3-statsmodels.
# RUNS (default 3) interleaved pairs per comparison; medians and the median pair ratio.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
checkpoint="${1:-}"
count="${2:-300}"
work="$(mktemp -d /tmp/dualrs_peer.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=2
/usr/bin/python3 "$root/bench/peer/make_torchscript_cnn.py" "$work/cnn.pt" ${checkpoint:+--checkpoint "$checkpoint"} >/dev/null
for optimize in true false; do
  cat > "$work/certify_$optimize.json" <<JSON
{
  "name": "peer_certify",
  "dataset": {"name": "mnist", "format": "mnist_idx",
              "images": "$root/data/mnist/images-idx3-ubyte.gz", "labels": "$root/data/mnist/labels-idx1-ubyte.gz",
              "splits": {"test": "$root/data/mnist/split/test.txt"}},
  "model": {"torchscript": "$work/cnn.pt", "num_classes": 10, "device": "cpu", "optimize": $optimize},
  "certify": {"method": "global", "sigma": 0.25, "n0": 100, "n": 1000, "alpha": 0.001, "batch_size": 1000, "seed": 0,
              "selection": {"split": "test", "begin": 0, "end": $count}}
}
JSON
done
# A fresh output folder per run: certify resumes (and skips) a finished folder.
dualrs_run() { echo "rm -rf $work/out_$1 && exec $root/build/dualrs certify --quiet -c $work/certify_$1.json -o $work/out_$1"; }
peer=(/usr/bin/python3 "$root/bench/peer/cohen_style_certify.py" --torchscript "$work/cnn.pt"
      --images "$root/data/mnist/images-idx3-ubyte.gz" --labels "$root/data/mnist/labels-idx1-ubyte.gz"
      --split "$root/data/mnist/split/test.txt" --count "$count" --sigma 0.25 --n0 100 --n 1000 --alpha 0.001
      --batch 1000 --threads 2)
echo "$count test digits, sigma 0.25, n0 100, n 1000, alpha 0.001, batch 1000, 2 threads each"
wall() {  # wall seconds of one command, its output discarded
  /usr/bin/python3 -c 'import subprocess, sys, time; t = time.monotonic(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True); print(time.monotonic() - t)' "$@"
}
compare() {  # compare LABEL OPTIMIZE [PEER_ENV]: RUNS pairs, alternating which goes first
  local a b as=() bs=() peer_env="${3:-PEER_DEFAULTS=1}"
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    if ((i % 2 == 0)); then a=$(wall sh -c "$(dualrs_run "$2")"); b=$(wall env "$peer_env" "${peer[@]}")
    else b=$(wall env "$peer_env" "${peer[@]}"); a=$(wall sh -c "$(dualrs_run "$2")"); fi
    as+=("$a"); bs+=("$b")
  done
  /usr/bin/python3 -c "import statistics as s, sys; a, b = (list(map(float, x.split())) for x in sys.argv[2:4]); r = [y / x for x, y in zip(a, b)]; print(f'{sys.argv[1]}: dualrs {s.median(a):.2f} s, Cohen-style loop {s.median(b):.2f} s (medians of {len(a)}), dualrs faster by {s.median(r):.2f}x (median pair ratio)')" "$1" "${as[*]}" "${bs[*]}"
}
# dualrs gives OpenBLAS one thread (docs/method.md §14); the peer, on Debian's python3-torch,
# has the same OpenBLAS, so it is timed as it comes and with the same setting.
compare "frozen graph (default), peer as installed" true
compare "frozen graph (default), peer with OPENBLAS_NUM_THREADS=1" true OPENBLAS_NUM_THREADS=1
compare "optimize false, peer with OPENBLAS_NUM_THREADS=1" false OPENBLAS_NUM_THREADS=1
