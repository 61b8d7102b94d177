#!/bin/bash
# Runs the certification benchmark and prints the throughput ratio
# sample_counts / bare forward per batch size (target >= 0.9). Needs a built tree (build/).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/bench_certify.json}"
"$root/build/bench/bench_certify" --benchmark_repetitions="${REPS:-5}" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json
/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
med = {r["run_name"]: r["items_per_second"] for r in runs if r.get("aggregate_name") == "median"}
for batch in ("1000", "250"):
    fwd, cert = med.get(f"BM_BareForward/{batch}/real_time"), med.get(f"BM_SampleCounts/{batch}/real_time")
    if fwd and cert:
        print(f"batch {batch}: bare forward {fwd:,.0f} samples/s, certification {cert:,.0f} samples/s, "
              f"ratio {cert / fwd:.3f} (target >= 0.9)")
PY
