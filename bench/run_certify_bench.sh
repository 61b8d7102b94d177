#!/bin/bash
# Certification throughput against the bare batched forward of the same model and batch size
# (target: ratio >= 0.9). Needs a built tree (build/). Usage:
#   bench/run_certify_bench.sh [OUT.json]        (REPS=3 repetitions by default)
# Prints, per batch size, the medians over the repetitions of the paired figures of
# BM_CertifyVsForward (each itself a median over interleaved forward/certification pairs),
# and the load average before and after, since the machine is usually shared.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/bench_certify.json}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
"$root/build/bench/bench_certify" --benchmark_filter='CertifyVsForward|NoiseOnly|NoiseOverlap' \
  --benchmark_repetitions="${REPS:-3}" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json >/dev/null
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
for r in runs:
    if r.get("aggregate_name") != "median":
        continue
    name = r["run_name"]
    if name.startswith("BM_CertifyVsForward/"):
        batch = name.split("/")[1]
        print(f"batch {batch}: bare forward {r['forward_per_s']:,.0f} samples/s, certification "
              f"{r['certify_per_s']:,.0f} samples/s, ratio {r['ratio']:.3f} "
              f"(pairs' quartiles {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}; CPU-time ratio {r['cpu_ratio']:.3f}; "
              f"target >= 0.9)")
    elif name.startswith("BM_NoiseOverlap/"):
        print(f"next batch's noise on its own thread during the forward (batch {name.split('/')[1]}): "
              f"{r['overlap_speedup']:.3f}x the in-turn time ({r['in_turn_per_s']:,.0f} -> "
              f"{r['overlapped_per_s']:,.0f} samples/s)")
    elif name.startswith("BM_NoiseOnly/"):
        print(f"noise alone (x + sigma*z, batch {name.split('/')[1]}): {r['items_per_second']:,.0f} samples/s")
PY
