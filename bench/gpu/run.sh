#!/bin/bash
# The GPU validation run (docs/cluster.md §9), for a machine with NVIDIA GPUs and a Python
# torch built with CUDA: builds dualrs against that torch's LibTorch (its share/cmake/Torch),
# runs `ctest -L gpu`, then the GPU benchmarks, and writes one JSON summary:
#   - certification throughput vs the bare frozen forward (dualrs calibrate) for a
#     ResNet-110-sized and a ViT-B/16-sized TorchScript classifier at batch 1,000, fp32 and bf16;
#   - the NCCL all-reduce of the ResNet-50 estimator's gradient buckets on 1 and 2 GPUs.
# About 10 minutes on one H200 (most of it the build).
#   bench/gpu/run.sh [OUT.json]            (default build-gpu/gpu_summary.json)
# Environment: PYTHON (default python3), DUALRS_GPU_BUILD (default build-gpu), JOBS (nproc),
# SKIP_BUILD=1 (reuse the build), COUNT (images certified per model, default 20).
# Needs the Debian packages of scripts/install-deps.sh (HDF5, Boost, Open MPI, ...) on the
# machine, and a LibTorch with the C++11 ABI (torch >= 2.7 wheels; older wheels were built
# with the pre-C++11 ABI, which cannot link against Debian's Boost and HDF5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
build="${DUALRS_GPU_BUILD:-build-gpu}"
out="${1:-$build/gpu_summary.json}"
count="${COUNT:-20}"
work="$(mktemp -d /tmp/dualrs_gpu.XXXXXX)"
trap 'rm -rf "$work"' EXIT
start_all=$(date +%s)

read -r cuda_ok abi prefix torch_version < <("$python" - <<'PY'
import torch
print(int(torch.cuda.is_available()), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.utils.cmake_prefix_path, torch.__version__)
PY
)
if [ "$cuda_ok" != "1" ]; then
  echo "bench/gpu/run.sh: $python's torch $torch_version sees no CUDA device; nothing to validate" >&2
  exit 77
fi
if [ "$abi" != "1" ]; then
  echo "bench/gpu/run.sh: $python's torch $torch_version was built with the pre-C++11 ABI; use torch >= 2.7" \
       "or a cxx11-abi LibTorch (CMAKE_PREFIX_PATH)" >&2
  exit 1
fi
echo "torch $torch_version at $prefix; $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) x $(nvidia-smi -L | wc -l)"

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DDUALRS_WITH_CUDA=ON \
    -DDUALRS_WITH_NCCL=ON >"$work/configure.log"
  grep "dualrs: CUDA" "$work/configure.log" || true
  cmake --build "$build" -j "${JOBS:-$(nproc)}" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
fi
bin="$build/dualrs"
gpu_tests=0
(cd "$build" && ctest -L gpu --output-on-failure) | tee "$work/ctest.log" || gpu_tests=$?

"$python" bench/gpu/make_models.py "$work" --count "$count" | tee "$work/models.log"
results="$work/results.jsonl"
: >"$results"
for model in resnet110 vit_b16; do
  size=32
  if [ "$model" = vit_b16 ]; then size=224; fi
  for precision in fp32 bf16; do
    config="$work/${model}_$precision.json"
    cat >"$config" <<JSON
{
  "name": "gpu_$model",
  "dataset": {"format": "cifar10_bin", "root": "$work/cifar"},
  "model": {"torchscript": "$work/$model.pt", "num_classes": 10, "device": "cuda:0", "precision": "$precision",
            "input_size": $size},
  "certify": {"sigma": 0.5, "n0": 100, "n": 10000, "alpha": 0.001, "batch_size": 1000, "seed": 0,
              "selection": {"split": "test", "begin": 0, "end": $count}}
}
JSON
    "$bin" calibrate -c "$config" -o "$work/cal_${model}_$precision.json" --seconds 5 -q
    begin=$(date +%s.%N)
    "$bin" certify -c "$config" -o "$work/certify_${model}_$precision" -q
    end=$(date +%s.%N)
    "$python" - "$work/cal_${model}_$precision.json" "$begin" "$end" "$count" "$model" "$precision" >>"$results" <<'PY'
import json, sys
cal = json.load(open(sys.argv[1]))
forward = cal["rates"]["classifier"]["samples_per_s"]
seconds = float(sys.argv[3]) - float(sys.argv[2])
samples = int(sys.argv[4]) * (100 + 10000)
print(json.dumps({"model": sys.argv[5], "precision": sys.argv[6], "bare_forward_samples_per_s": forward,
                  "certify_samples_per_s": samples / seconds, "ratio": samples / seconds / forward,
                  "certify_seconds": seconds, "examples": int(sys.argv[4])}))
PY
    tail -1 "$results"
  done
done

nccl="$work/nccl.jsonl"
: >"$nccl"
gpus=$(nvidia-smi -L | wc -l)
for np in 1 2; do
  if [ "$np" -le "$gpus" ] && [ -x "$build/bench/bench_nccl_buckets" ]; then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np "$np" --oversubscribe \
      "$build/bench/bench_nccl_buckets" --iterations 50 | tee -a "$nccl"
  fi
done

mkdir -p "$(dirname "$out")"
"$python" - "$results" "$nccl" "$out" "$torch_version" "$gpu_tests" "$start_all" <<'PY'
import json, subprocess, sys, time
read = lambda p: [json.loads(l) for l in open(p) if l.strip()]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                     capture_output=True, text=True).stdout.strip().splitlines()
summary = {"torch": sys.argv[4], "gpus": gpu, "ctest_gpu_exit_code": int(sys.argv[5]),
           "certify_vs_forward": read(sys.argv[1]), "nccl_gradient_buckets": read(sys.argv[2]),
           "seconds": time.time() - float(sys.argv[6])}
json.dump(summary, open(sys.argv[3], "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
echo "bench/gpu/run.sh: wrote $out"
