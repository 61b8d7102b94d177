#!/bin/bash
# Installs the Debian 12 packages dualrs needs to build, test and run (as root, apt-get).
# Idempotent: packages already installed are not fetched again. A fresh machine of the
# development kind has only the compiler, CMake, GoogleTest and the CUDA toolkit.
# On Debian 13 (scripts/test-debian13.sh runs it in a Debian 13 root) the same list is
# installed under that release's names (LibTorch 2.6, HDF5 1.14, Open MPI 5).
# DUALRS_SKIP_SLURM=1 leaves out Slurm and munge (a root without services).
set -euo pipefail

packages=(
  cmake g++ make pkg-config git ca-certificates
  libtorch-dev python3-torch           # LibTorch 1.13 (CPU) + the matching Python for fixtures
  libopenblas0-pthread                 # LibTorch's BLAS: the default reference BLAS is ~5x slower
  libtcmalloc-minimal4                 # malloc that reuses LibTorch's large aligned blocks (glibc's page-faults them afresh)
  libhdf5-dev                          # serial HDF5 C API
  libboost-program-options-dev libboost-math-dev
  nlohmann-json3-dev libvalijson-dev   # JSON + JSON Schema
  librandom123-dev                     # counter-based Philox noise
  zlib1g-dev libssl-dev                # gzip'd IDX files; SHA-256 of configs
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin           # distributed execution
  libturbojpeg0-dev                    # ImageNet JPEG decoding
  python3 python3-numpy python3-scipy python3-statsmodels python3-h5py
  python3-matplotlib python3-pandas    # figures (dualrs plot) and data frames (analysis/dualrs_h5.py)
  python3-pil                          # independent JPEG decoder for the ImageNet reference data
  shellcheck                           # the unit.shell_scripts test
)
if [ "${DUALRS_SKIP_SLURM:-0}" != "1" ]; then
  packages+=(slurm-wlm munge)          # the slurm-tier tests start a real single-node Slurm
fi
# Debian 13 renamed the libraries of the 64-bit time_t transition.
version_id="$(. /etc/os-release && echo "${VERSION_ID:-}")"
if [ "$version_id" = "13" ]; then
  for i in "${!packages[@]}"; do
    case "${packages[$i]}" in
      libtcmalloc-minimal4) packages[i]=libtcmalloc-minimal4t64 ;;
    esac
  done
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}"
