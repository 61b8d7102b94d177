#!/bin/bash
# Quick start, command 2: set up, build, and run the whole test suite (ctest).
#   scripts/test.sh [ctest arguments, e.g. -L unit]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build.sh
cd build
ctest --output-on-failure -j "${DUALRS_TEST_JOBS:-2}" "$@"
