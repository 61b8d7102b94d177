#!/bin/bash
# The bare forward, eager against the frozen, optimised inference form, for every native
# architecture, a TorchScript CNN and the denoiser's U-Net, with the machine's float32 peak
# (target: frozen >= 3x eager for mnist_cnn). Needs a built tree (build/). Usage:
#   bench/run_inference_bench.sh [OUT.json]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/bench_inference.json}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
"$root/build/bench/bench_inference" --benchmark_out="$out" --benchmark_out_format=json >/dev/null
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
peak = next((r["gflops"] for r in runs if r["name"].startswith("BM_PeakMatmul")), float("nan"))
print(f"machine peak (2048^2 float32 matmul): {peak:.1f} GFLOP/s")
print(f"{'model':<18} {'eager img/s':>12} {'frozen img/s':>13} {'eager GFLOP/s':>14} {'frozen GFLOP/s':>15} {'ratio':>6}")
for r in runs:
    name = r["name"].split("/")[0]
    if name.startswith("BM_PeakMatmul"):
        continue
    label = r["name"].split("/iterations")[0].replace("BM_Native/", "").replace("BM_", "")
    eg = r.get("eager_gflops"); fg = r.get("frozen_gflops")
    g = (f"{eg:>14.1f} {fg:>15.1f}" if eg is not None else f"{'-':>14} {'-':>15}")
    print(f"{label:<18} {r['eager_img_per_s']:>12,.0f} {r['frozen_img_per_s']:>13,.0f} {g} {r['ratio']:>6.2f}")
PY
