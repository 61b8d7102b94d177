// Certification throughput vs the bare batched forward of the same model and batch size.
// Target (issue 2): sample_counts (noise + add + forward + vote counting) at >= 0.9x the noisy
// samples per second of the bare forward. Run bench/run_certify_bench.sh for the ratio.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "dualrs/model/mnist_cnn.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/sample_counts.h"

namespace {

using dualrs::NoiseSource;
using dualrs::NoiseStage;

void BM_BareForward(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  auto model = dualrs::model::make_mnist_cnn(10);
  model->set_training(false);
  torch::InferenceMode guard;
  const auto x = torch::rand({batch, 1, 28, 28});
  for (auto _ : state) {
    auto logits = model->logits(x);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_SampleCounts(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  auto model = dualrs::model::make_mnist_cnn(10);
  model->set_training(false);
  const auto x = torch::rand({1, 28, 28});
  const NoiseSource noise(0, NoiseStage::kCertifyEstimation);
  std::int64_t first = 0;
  for (auto _ : state) {
    auto counts = dualrs::smooth::sample_counts(*model, x, noise, {0, 0, 0.5, first, batch, batch});
    benchmark::DoNotOptimize(counts.votes.data());
    first += batch;
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_NoiseOnly(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const auto x = torch::rand({1, 28, 28});
  auto out = torch::empty({batch, 1, 28, 28});
  const NoiseSource noise(0, NoiseStage::kCertifyEstimation);
  for (auto _ : state) {
    dualrs::smooth::fill_noisy_copies(out, x, noise, 0, 0, 0.5, 0);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

BENCHMARK(BM_BareForward)->Arg(1000)->Arg(250)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SampleCounts)->Arg(1000)->Arg(250)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NoiseOnly)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  // Same threading as the dualrs executable: every core unless OMP_NUM_THREADS says otherwise.
  const char* env = std::getenv("OMP_NUM_THREADS");
  at::set_num_threads(env != nullptr && std::atoi(env) > 0 ? std::atoi(env)
                                                           : static_cast<int>(std::thread::hardware_concurrency()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
