#!/bin/bash
# The overlapped input pipeline (docs/method.md §19) on ImageNet-sized JPEGs: generates a small
# ImageNet tree (500 x 375 pixels, quality 90, smooth random content; not committed), then runs
# build/bench/bench_loader: images/s delivered per rank against the loader threads, and the
# ResNet-50 estimator's training step at batch 8 with and without overlap. Needs a built tree
# (build/) and Debian's python3-pil and python3-numpy.
#   bench/run_loader_bench.sh [IMAGES] [OUT.json]      (IMAGES train JPEGs, default 256)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
images="${1:-256}"
out="${2:-$root/build/bench_loader.json}"
work="$(mktemp -d /tmp/dualrs_loader.XXXXXX)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/imagenet" "$images" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, count = sys.argv[1], int(sys.argv[2])
wnids = [f"n{10000000 + k:08d}" for k in range(4)]
rng = np.random.default_rng(0)
def picture():
    # Smooth random content compresses like a photograph, not like white noise.
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((500, 375), Image.BICUBIC)
with open(os.path.join(root + "_synsets.txt"), "w") as f:
    f.write("\n".join(wnids) + "\n")
for part, n in (("train", count), ("val", len(wnids))):
    for i in range(n):
        wnid = wnids[i % len(wnids)]
        os.makedirs(os.path.join(root, part, wnid), exist_ok=True)
        picture().save(os.path.join(root, part, wnid, f"{wnid}_{i}.JPEG"), quality=90)
os.rename(root + "_synsets.txt", os.path.join(root, "synsets.txt"))
PY
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
DUALRS_BENCH_IMAGENET="$work/imagenet" "$root/build/bench/bench_loader" --benchmark_out="$out" \
  --benchmark_out_format=json >/dev/null
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
base = {}  # the latest run without loader threads, per benchmark: each overlapped run is paired with it
pairs = []
for r in runs:
    name, threads = r["name"].split("/threads:")[0], int(r["name"].split("threads:")[1].split("/")[0])
    if name == "BM_LoaderDelivery":
        rate = r["items_per_second"]
        if threads == 0:
            base[name] = rate
        print(f"loader, {threads} loader threads: {rate:7.1f} images/s delivered"
              + (f" ({rate / base[name]:.2f}x the unoverlapped loader)" if threads else " (built in turn)"))
    else:
        ms = 1e3 / r["items_per_second"]
        if threads == 0:
            base[name] = ms
        else:
            pairs.append(ms / base[name])
        print(f"ResNet-50 estimator step, batch 8, {threads} loader threads: {ms:8.1f} ms"
              + (f" ({ms / base[name]:.3f}x the step before it, without overlap)" if threads else " (no overlap)"))
if pairs:
    print(f"ResNet-50 estimator step with / without overlap: median of {len(pairs)} interleaved pairs "
          f"{sorted(pairs)[len(pairs) // 2]:.3f}")
PY
