// The overlapped input pipeline of the training stages (docs/method.md §19) on ImageNet-sized
// JPEGs, per rank:
//   BM_LoaderDelivery/threads:L   images/s delivered (decode, resize 256, crop 224, noise) by a
//                                 BatchPrefetcher with L loader threads (0: built in turn by
//                                 the consuming thread, with LibTorch's parallel_for), batch 32
//   BM_Resnet50EstimatorStep/threads:L
//                                 one training step of the ResNet-50 estimator (|Σ| = 3 outputs,
//                                 forward + backward + AdamW) at batch 8, with the next batches
//                                 built ahead on L loader threads (0: no overlap)
// Needs a tree made by bench/run_loader_bench.sh (DUALRS_BENCH_IMAGENET=ROOT).

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <numeric>
#include <string>

#include "bench_main.h"
#include "dualrs/data/dataset.h"
#include "dualrs/model/resnet.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/noise_augment.h"
#include "dualrs/train/prefetch.h"

namespace {

using dualrs::train::BatchPrefetcher;

const dualrs::data::ImageDataset* bench_dataset() {
  static const dualrs::data::ImageDataset* ds = [] () -> const dualrs::data::ImageDataset* {
    const char* root = std::getenv("DUALRS_BENCH_IMAGENET");
    if (root == nullptr) return nullptr;
    dualrs::DatasetConfig c;
    c.format = dualrs::DatasetFormat::kImagenetFolder;
    c.root = root;
    c.synsets = std::string(root) + "/synsets.txt";
    return new dualrs::data::ImageDataset(dualrs::data::load_dataset(c));
  }();
  return ds;
}

// The noisy batch of `step`: images [step·batch, (step+1)·batch) mod the dataset, σ = 0.5.
at::Tensor make_batch(const dualrs::data::ImageDataset& ds, std::int64_t step, std::int64_t batch) {
  static const dualrs::NoiseSource noise(1, dualrs::NoiseStage::kTrainBase);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(batch));
  for (std::int64_t j = 0; j < batch; ++j) idx[static_cast<std::size_t>(j)] = (step * batch + j) % ds.size();
  return dualrs::train::noisy_copies(ds, idx, std::vector<float>(idx.size(), 0.5f), 1, noise, 0);
}

void BM_LoaderDelivery(benchmark::State& state) {
  const auto* ds = bench_dataset();
  if (ds == nullptr) return state.SkipWithError("set DUALRS_BENCH_IMAGENET (bench/run_loader_bench.sh)");
  const auto threads = static_cast<int>(state.range(0));
  constexpr std::int64_t kBatch = 32, kSteps = 8;
  for (auto _ : state) {
    BatchPrefetcher<at::Tensor> batches(kSteps, threads, [&](std::int64_t step) { return make_batch(*ds, step, kBatch); });
    for (std::int64_t s = 0; s < kSteps; ++s) benchmark::DoNotOptimize(batches.next().data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch * kSteps);
}

void BM_Resnet50EstimatorStep(benchmark::State& state) {
  const auto* ds = bench_dataset();
  if (ds == nullptr) return state.SkipWithError("set DUALRS_BENCH_IMAGENET (bench/run_loader_bench.sh)");
  const auto threads = static_cast<int>(state.range(0));
  constexpr std::int64_t kBatch = 8, kSteps = 4;
  torch::manual_seed(0);
  auto estimator = dualrs::model::make_resnet50(3);
  estimator->set_training(true);
  torch::optim::AdamW optimizer(estimator->module()->parameters(), torch::optim::AdamWOptions(1e-3));
  const at::Tensor target = torch::zeros({kBatch}, torch::kInt64);
  auto train_step = [&](const at::Tensor& x) {
    optimizer.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(estimator->logits(x), target);
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  };
  // Warm-up outside the timing: the first steps create oneDNN primitives and the allocator's pools.
  for (std::int64_t s = 0; s < 2; ++s) (void)train_step(make_batch(*ds, s, kBatch));
  for (auto _ : state) {
    BatchPrefetcher<at::Tensor> batches(kSteps, threads, [&](std::int64_t step) { return make_batch(*ds, step, kBatch); });
    for (std::int64_t s = 0; s < kSteps; ++s) {
      benchmark::DoNotOptimize(train_step(batches.next()));
    }
  }
  state.SetItemsProcessed(state.iterations() * kSteps);  // steps
  state.counters["step_ms"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kSteps), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_LoaderDelivery)->ArgName("threads")->Arg(0)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
// 0, 1, 0, 1, 0, 1: each setting three times, interleaved, so that a drift of the machine shows.
BENCHMARK(BM_Resnet50EstimatorStep)->ArgName("threads")->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) { return run_benchmarks(argc, argv); }
