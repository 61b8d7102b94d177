#!/bin/bash
# Quick start, command 1: set up, build, and run the main job on the embedded MNIST digits.
#   scripts/main-job.sh [OUT_DIR] [JOB]
# Defaults: OUT_DIR=runs/mnist_dual_rs, JOB=jobs/mnist_dual_rs.json. Re-running
# resumes: finished stages are skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
job="${2:-jobs/mnist_dual_rs.json}"
out="${1:-runs/$(basename "$job" .json)}"
bash scripts/build.sh
./build/dualrs run "$job" --out "$out"
echo "results: $out/certified_accuracy.md (.tex, .csv), figures in $out/figures/"
