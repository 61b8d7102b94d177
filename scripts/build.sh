#!/bin/bash
# Installs dependencies (unless DUALRS_SKIP_DEPS=1), then configures and builds dualrs in
# build/ (Release). Extra arguments go to the CMake configure step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "${DUALRS_SKIP_DEPS:-0}" != "1" ]; then
  bash scripts/install-deps.sh
fi
jobs="${DUALRS_BUILD_JOBS:-$(nproc)}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$jobs"
