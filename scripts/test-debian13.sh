#!/bin/bash
# Builds dualrs against Debian 13's LibTorch 2.6 (with its HDF5 1.14 and Open MPI 5) and runs
# the unit and integration tiers there, inside a Debian 13 root made by debootstrap in the
# project's scratch folder. The root is made once and reused; the build folder inside it too.
#   scripts/test-debian13.sh                 build, then ctest -L 'unit|integration'
#   scripts/test-debian13.sh -R golden       build, then ctest with these arguments instead
#   scripts/test-debian13.sh --run CMD ARGS  build, then run CMD in the root's /dualrs instead of
#                                            ctest (e.g. the golden digests of this environment:
#                                            --run python3 tests/golden/test_golden.py --regenerate)
# Environment:
#   DUALRS_DEBIAN13_ROOT   the root (default: scratch/debian13 in the repository)
#   DUALRS_DEBIAN_MIRROR   the Debian archive (default: http://deb.debian.org/debian)
#   DUALRS_BUILD_JOBS      compile jobs (default: nproc); DUALRS_TEST_JOBS ctest jobs (default 2)
#   DUALRS_WERROR          ON (default) builds with -Werror: the 2.x build must be warning-clean
#   DUALRS_KEEP_GOING=1    compile past the first error (make -k), to see every error at once
# Needs root (debootstrap, chroot, bind mounts). The repository is bind-mounted at /dualrs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${DUALRS_DEBIAN13_ROOT:-$root/scratch/debian13}"
mirror="${DUALRS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
jobs="${DUALRS_BUILD_JOBS:-$(nproc)}"
test_jobs="${DUALRS_TEST_JOBS:-2}"
werror="${DUALRS_WERROR:-ON}"
keep_going="${DUALRS_KEEP_GOING:-0}"
mode=ctest
if [ "${1:-}" = "--run" ]; then
  mode=run
  shift
  if [ $# -eq 0 ]; then echo "test-debian13: --run needs a command" >&2; exit 2; fi
fi
ctest_args=("$@")
if [ "$mode" = ctest ] && [ ${#ctest_args[@]} -eq 0 ]; then ctest_args=(-L 'unit|integration'); fi

if [ "$(id -u)" -ne 0 ]; then
  echo "test-debian13: needs root (debootstrap, chroot and bind mounts); run it with sudo" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  echo "test-debian13: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

marker="$target/.dualrs-bootstrapped"
if [ ! -f "$marker" ]; then
  if [ -e "$target" ] && [ -n "$(ls -A "$target" 2>/dev/null)" ]; then
    echo "test-debian13: $target holds an unfinished root; remove it and run again" >&2
    exit 1
  fi
  mkdir -p "$target"
  echo "test-debian13: debootstrap trixie into $target (a few minutes)"
  debootstrap --variant=minbase --include=ca-certificates trixie "$target" "$mirror"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_into() {  # mount_into <mount arguments...> <mount point inside the root>
  local point="$target${*: -1}"
  mkdir -p "$point"
  if mountpoint -q "$point"; then return; fi
  mount "${@:1:$#-1}" "$point"
  mounted+=("$point")
}
mount_into -t proc proc /proc
mount_into --bind /dev /dev
mount_into -t devpts devpts /dev/pts
mount_into -t tmpfs tmpfs /dev/shm
mount_into --bind "$root" /dualrs
cp /etc/resolv.conf "$target/etc/resolv.conf"

# Inside the root: the project's own dependency script (it picks Debian 13's package names),
# then a Release build with -Werror, then the tests. The script's variables expand inside the
# root (single quotes on purpose).
# shellcheck disable=SC2016
chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive DUALRS_SKIP_SLURM=1 TMPDIR=/tmp \
  JOBS="$jobs" TEST_JOBS="$test_jobs" WERROR="$werror" KEEP_GOING="$keep_going" MODE="$mode" \
  bash -euo pipefail -c '
    cd /dualrs
    bash scripts/install-deps.sh
    git config --global --add safe.directory /dualrs
    echo "test-debian13: $(. /etc/os-release && echo "$PRETTY_NAME"), LibTorch $(dpkg-query -W -f="\${Version}" libtorch-dev)"
    cmake -S /dualrs -B /build-debian13 -DCMAKE_BUILD_TYPE=Release -DDUALRS_WERROR="$WERROR"
    if [ "$KEEP_GOING" = 1 ]; then cmake --build /build-debian13 -j "$JOBS" -- -k; else cmake --build /build-debian13 -j "$JOBS"; fi
    if [ "$MODE" = run ]; then
      export DUALRS_BIN=/build-debian13/dualrs
      exec "$@"
    fi
    cd /build-debian13
    ctest --output-on-failure -j "$TEST_JOBS" "$@"
  ' test-debian13 "${ctest_args[@]}"
