// The NCCL all-reduce of the Dual RS estimator's gradient buckets, as data-parallel training
// makes it (train/data_parallel.h): ResNet-50 with |Σ| = 3 outputs (ImageNet's estimator),
// float32 gradients in 25 MiB buckets, all-reduced (mean) on the current stream, timed over
// --iterations steps after a warm-up. Not a Google Benchmark: run it under mpirun with one
// GPU per rank (bench/gpu/run.sh runs -np 1 and -np 2); rank 0 prints one JSON line.
//   mpirun -np 2 build/bench/bench_nccl_buckets [--iterations 50]

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "dualrs/dist/mpi_communicator.h"
#include "dualrs/dist/nccl_communicator.h"
#include "dualrs/model/resnet.h"
#include "dualrs/train/data_parallel.h"

namespace {

void cuda_check(cudaError_t result, const char* what) {
  if (result != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(result));
}

int run(dualrs::dist::Communicator& comm, const dualrs::dist::World& world, int iterations) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < world.local_size) {
    if (world.rank == 0) std::fprintf(stderr, "bench_nccl_buckets: %d CUDA device(s) for %d local ranks\n", devices, world.local_size);
    return 77;
  }
  const auto estimator = dualrs::model::make_resnet50(3);
  std::vector<std::int64_t> numels;
  for (const auto& p : estimator->module()->parameters()) numels.push_back(p.numel());
  const auto buckets = dualrs::train::plan_buckets(numels, sizeof(float), dualrs::train::kDefaultBucketBytes);
  dualrs::dist::NcclCommunicator nccl(comm, world.local_rank);
  cudaStream_t stream = nullptr;
  cuda_check(cudaStreamCreate(&stream), "cudaStreamCreate");
  std::vector<float*> buffers;
  std::int64_t total = 0;
  for (const auto& b : buckets) {
    float* data = nullptr;
    cuda_check(cudaMalloc(&data, static_cast<std::size_t>(b.numel) * sizeof(float)), "cudaMalloc");
    cuda_check(cudaMemset(data, 0, static_cast<std::size_t>(b.numel) * sizeof(float)), "cudaMemset");
    buffers.push_back(data);
    total += b.numel;
  }
  auto step = [&] {
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      nccl.all_reduce(buffers[i], static_cast<std::size_t>(buckets[i].numel), dualrs::dist::ReduceOp::kMean, stream);
    }
    cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  };
  for (int i = 0; i < 5; ++i) step();
  comm.barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (world.rank == 0) {
    const double per_step_ms = 1e3 * seconds / iterations;
    const double bytes = static_cast<double>(total) * sizeof(float);
    // Bus bandwidth as nccl-tests reports it for all-reduce: bytes · 2(K−1)/K per step time.
    const double bus = world.size > 1 ? bytes * 2.0 * (world.size - 1) / world.size / (seconds / iterations) / 1e9 : 0.0;
    std::printf("{\"ranks\": %d, \"parameters\": %lld, \"buckets\": %zu, \"step_ms\": %.3f, \"bus_gb_per_s\": %.2f, "
                "\"nccl\": \"%s\"}\n",
                world.size, static_cast<long long>(total), buckets.size(), per_step_ms, bus,
                nccl.versions().describe().c_str());
  }
  for (float* b : buffers) cudaFree(b);
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dualrs::dist::MpiEnvironment env(&argc, &argv);
  int iterations = 50;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::max(1, std::atoi(argv[i + 1]));
  }
  try {
    return run(env.communicator(), env.world(), iterations);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", env.world().rank, e.what());
    if (env.world().size > 1) env.communicator().abort(1, "bench_nccl_buckets: ending the job");
    return 1;
  }
}
