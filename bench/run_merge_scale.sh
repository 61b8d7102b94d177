#!/bin/bash
# ImageNet-scale merge (docs/cluster.md §3): generates the shard files of the paper's ImageNet
# label job (1,281,167 train images x |Sigma| = 2, shard_size 100: 12,812 shards) and of a
# 50,000-example Dual RS certification (1,000 classes, shard_size 20: 2,500 shards), with
# synthetic values in the stages' own layout (bench_merge_scale), and times `dualrs merge`
# on them: wall time, peak resident memory of the merge process, and a second merge of the
# same shards (nothing to rewrite). The label merge also runs at a quarter and half of the
# shards, to check that its time grows linearly (the marginal time per shard, start-up
# excluded). Targets: the label merge under 2 minutes
# and under 2 GiB. Prints a table and writes a JSON summary.
#
#   bench/run_merge_scale.sh [SUMMARY_JSON] [SCALE]   (needs build/; SCALE < 1 for a quick run)
#
# $DUALRS_BIN and $DUALRS_MERGE_GENERATOR override build/dualrs and build/bench/bench_merge_scale
# (ctest runs it at SCALE 0.002 as integration.merge_scale_smoke).
#
# Files go to a temporary folder under $TMPDIR (about 0.5 GB at full scale), removed after.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec /usr/bin/python3 - "$root" "${1:-}" "${2:-1}" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, time

import h5py
import numpy as np

root, summary_path, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
dualrs = os.environ.get("DUALRS_BIN", os.path.join(root, "build", "dualrs"))
generator = os.environ.get("DUALRS_MERGE_GENERATOR", os.path.join(root, "build", "bench", "bench_merge_scale"))
config = os.path.join(root, "configs", "imagenet_dual.json")
for exe in (dualrs, generator):
    if not os.access(exe, os.X_OK):
        sys.exit(f"run_merge_scale: {exe} is missing; build first (scripts/build.sh)")


def timed(cmd):
    """Runs cmd; returns (wall seconds, peak RSS in MiB of that process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run_merge_scale: {' '.join(cmd)} failed:\n{out}")
    return wall, usage.ru_maxrss / 1024.0


def case(name, kind, examples, shard_size, width, work):
    folder = os.path.join(work, name)
    gen_s, _ = timed([generator, kind, folder, str(examples), str(shard_size), str(width), config])
    shards = len(os.listdir(os.path.join(folder, "shards")))
    shard_bytes = sum(os.path.getsize(os.path.join(folder, "shards", f)) for f in os.listdir(os.path.join(folder, "shards")))
    merge_s, rss = timed([dualrs, "merge", folder, "--quiet"])
    again_s, _ = timed([dualrs, "merge", folder, "--quiet"])
    out = os.path.join(folder, "labels.h5" if kind == "labels" else "certify.h5")
    with h5py.File(out, "r") as f:  # every example once, in order
        idx = f["idx"][:]
        assert np.array_equal(idx, np.arange(examples)), f"{out}: idx is not 0..{examples - 1}"
    row = {"case": name, "kind": kind, "examples": examples, "shards": shards, "shard_size": shard_size,
           "width": width, "shard_mib": shard_bytes / 2**20, "generate_s": gen_s, "merge_s": merge_s,
           "merge_peak_rss_mib": rss, "merge_again_s": again_s, "merged_mib": os.path.getsize(out) / 2**20}
    shutil.rmtree(folder)
    print(f"{name:>16}: {shards:>6} shards, {examples:>9} examples: merge {merge_s:7.1f} s, peak {rss:7.0f} MiB; "
          f"again {again_s:5.1f} s (generated in {gen_s:.0f} s, {row['shard_mib']:.0f} MiB of shards)", flush=True)
    return row


work = tempfile.mkdtemp(prefix="dualrs_merge_scale_")
try:
    imagenet_train, label_shard = 1281167, 100
    rows = []
    for fraction in (0.25, 0.5, 1.0):
        n = max(label_shard, int(imagenet_train * fraction * scale))
        rows.append(case(f"labels_{fraction:g}", "labels", n, label_shard, 2, work))
    rows.append(case("certify_50k", "certify", max(20, int(50000 * scale)), 20, 1000, work))
finally:
    shutil.rmtree(work, ignore_errors=True)

full = rows[2]
# Marginal seconds per shard between the three label cases (start-up, about 1 s, cancels):
# equal slopes mean the merge is linear in the number of shards.
slopes = [(b["merge_s"] - a["merge_s"]) / (b["shards"] - a["shards"]) for a, b in zip(rows[:2], rows[1:3])]
summary = {"rows": rows, "label_merge_s": full["merge_s"], "label_merge_peak_rss_mib": full["merge_peak_rss_mib"],
           "label_merge_marginal_s_per_shard": slopes, "linearity": slopes[1] / slopes[0] if slopes[0] > 0 else None,
           "targets": {"label_merge_s": 120, "label_merge_peak_rss_mib": 2048}, "scale": scale}
print(f"label merge: {full['merge_s']:.1f} s (target < 120 s), peak {full['merge_peak_rss_mib']:.0f} MiB "
      f"(target < 2048 MiB); marginal time per shard 1/4 -> 1/2: {1000 * slopes[0]:.2f} ms, 1/2 -> 1: "
      f"{1000 * slopes[1]:.2f} ms (ratio {summary['linearity'] or float('nan'):.2f}; 1.00 = linear)")
if summary_path:
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"summary: {summary_path}")
PY
