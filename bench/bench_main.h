#pragma once
// The main() of every benchmark executable: LibTorch's threads as the dualrs executable sets
// them (every core unless OMP_NUM_THREADS says otherwise; OpenBLAS one thread unless
// OPENBLAS_NUM_THREADS says otherwise), then Google Benchmark.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "dualrs/model/blas_threads.h"

inline int run_benchmarks(int argc, char** argv) {
  const char* env = std::getenv("OMP_NUM_THREADS");
  at::set_num_threads(env != nullptr && std::atoi(env) > 0 ? std::atoi(env)
                                                           : static_cast<int>(std::thread::hardware_concurrency()));
  dualrs::model::limit_openblas_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
