#!/bin/bash
# The ablation family of jobs/ablations/ (Dual RS paper §6.2, App. E) on the embedded digits:
#   scripts/ablations.sh [OUT_DIR] [JOB...]
# Default OUT_DIR=runs/ablations, every job of jobs/ablations/. The jobs share their first
# stages (base classifier, labels, reference runs) through the one output folder, so those run
# once; each job writes OUT_DIR/ablation_NAME/ablation_table.{md,csv}. Re-running resumes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-runs/ablations}"
shift || true
jobs=("$@")
if [ ${#jobs[@]} -eq 0 ]; then jobs=(jobs/ablations/*.json); fi
bash scripts/build.sh
start=$(date +%s)
for job in "${jobs[@]}"; do
  t0=$(date +%s)
  ./build/dualrs run "$job" --out "$out"
  echo "ablations: $(basename "$job" .json) done in $(( $(date +%s) - t0 )) s"
done
echo "ablations: all done in $(( $(date +%s) - start )) s; tables: $out/ablation_*/ablation_table.md"
