// The bare forward of every native architecture and of a TorchScript CNN, eager against the
// frozen, optimised inference form (docs/method.md §14), with the machine's measured peak
// (a large float32 matrix multiply) for reference. Target: frozen >= 3x eager for mnist_cnn.
// Run bench/run_inference_bench.sh for the table.
//
// As in bench_certify, the headline figures are paired: each benchmark runs one eager and
// one frozen forward of the same batch back to back, many times (alternating which goes
// first), and reports medians over the pairs, so a change in the machine's load hits both.
// GFLOP/s counts 2 FLOPs per multiply-add of the convolution and linear layers, read off the
// module's layers (macs_per_image); pooling, normalisation and activations are not counted.

#include <benchmark/benchmark.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_main.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_unet.h"
#include "dualrs/model/torchscript_model.h"

namespace {

using dualrs::model::BaseModel;

constexpr int kWarmupBatches = 3;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

/// Multiply-adds per image of the convolutions and linear layers of a native classifier,
/// walking its layers in registration order with the spatial side they see: a convolution
/// of stride s maps side S to ceil(S / s) (padding k/2); a shortcut projection
/// ("downsample") sees its block's input and gives its block's output side; mnist_cnn pools
/// 2x2 after each convolution, resnet50 3x3/2 after its stem.
double macs_per_image(BaseModel& model, const std::string& arch, std::int64_t side) {
  double macs = 0.0;
  double s = static_cast<double>(side);
  for (const auto& item : model.module()->named_modules("", /*include_self=*/false)) {
    if (auto* conv = item.value()->as<torch::nn::Conv2d>()) {
      const auto& w = conv->weight;
      const double stride = static_cast<double>(conv->options.stride()->at(0));
      const bool projection = item.key().find("downsample") != std::string::npos;
      const double out_side = projection ? s : std::ceil(s / stride);
      macs += out_side * out_side * static_cast<double>(w.size(0) * w.size(1) * w.size(2) * w.size(3));
      if (!projection) s = out_side;
      if (arch == "mnist_cnn") s = std::floor(s / 2.0);
      if (arch == "resnet50" && item.key() == "conv1") s = std::ceil(s / 2.0);
    } else if (auto* linear = item.value()->as<torch::nn::Linear>()) {
      macs += static_cast<double>(linear->weight.numel());
    }
  }
  return macs;
}

/// Eager and frozen forms of one model with the same weights, and one noisy batch.
struct Pair {
  std::unique_ptr<BaseModel> eager, frozen;
  at::Tensor x;
  double macs = 0.0;
};

Pair native_pair(const std::string& arch, std::int64_t channels, std::int64_t side, std::int64_t batch) {
  Pair p;
  torch::manual_seed(0);
  p.eager = dualrs::model::make_native_model(arch, 10);
  p.eager->set_training(false);
  torch::manual_seed(0);
  p.frozen = dualrs::model::prepare_for_inference(dualrs::model::make_native_model(arch, 10), "/model");
  p.macs = macs_per_image(*p.eager, arch, side);
  p.x = (torch::rand({1, channels, side, side}) + 0.5 * torch::randn({batch, channels, side, side})).contiguous();
  return p;
}

/// The TorchScript CNN: mnist_cnn's script source saved as a TorchScript file, loaded as a
/// user's model is, without (eager) and with (frozen) optimize.
Pair torchscript_pair(std::int64_t batch) {
  Pair p;
  torch::manual_seed(0);
  auto native = dualrs::model::make_native_model("mnist_cnn", 10);
  const std::string path = (std::filesystem::temp_directory_path() / "dualrs_bench_cnn.pt").string();
  dualrs::model::script_from_source(*native->module(), "BenchCnn", native->script_source()).save(path);
  p.eager = dualrs::model::load_torchscript_model(path, 10, "cpu", /*optimize=*/false);
  p.frozen = dualrs::model::load_torchscript_model(path, 10, "cpu", /*optimize=*/true);
  p.macs = macs_per_image(*native, "mnist_cnn", 28);
  p.x = (torch::rand({1, 1, 28, 28}) + 0.5 * torch::randn({batch, 1, 28, 28})).contiguous();
  return p;
}

void forward(BaseModel& model, const at::Tensor& x) {
  torch::InferenceMode guard;
  auto logits = model.logits(x);
  benchmark::DoNotOptimize(logits.data_ptr<float>());
}

/// Pairs of eager and frozen forwards; counters: images/s and GFLOP/s of each (medians over
/// the pairs) and `ratio` = frozen / eager throughput (median of the per-pair ratios).
void run_pairs(benchmark::State& state, Pair& p, int pairs) {
  for (int i = 0; i < kWarmupBatches; ++i) {
    forward(*p.eager, p.x);
    forward(*p.frozen, p.x);
  }
  std::vector<double> eager_s, frozen_s, ratio;
  for (auto _ : state) {
    double elapsed = 0.0;
    for (int i = 0; i < pairs; ++i) {
      const bool eager_first = i % 2 == 0;
      const double t0 = now();
      forward(eager_first ? *p.eager : *p.frozen, p.x);
      const double t1 = now();
      forward(eager_first ? *p.frozen : *p.eager, p.x);
      const double t2 = now();
      const double e = eager_first ? t1 - t0 : t2 - t1;
      const double f = eager_first ? t2 - t1 : t1 - t0;
      eager_s.push_back(e);
      frozen_s.push_back(f);
      ratio.push_back(e / f);
      elapsed += t2 - t0;
    }
    state.SetIterationTime(elapsed);
  }
  const double batch = static_cast<double>(p.x.size(0));
  const double eager_rate = batch / median(eager_s), frozen_rate = batch / median(frozen_s);
  state.counters["eager_img_per_s"] = eager_rate;
  state.counters["frozen_img_per_s"] = frozen_rate;
  state.counters["eager_gflops"] = eager_rate * 2.0 * p.macs * 1e-9;
  state.counters["frozen_gflops"] = frozen_rate * 2.0 * p.macs * 1e-9;
  state.counters["ratio"] = median(ratio);
}

void BM_Native(benchmark::State& state, const std::string& arch, std::int64_t channels, std::int64_t side,
               std::int64_t batch, int pairs) {
  Pair p = native_pair(arch, channels, side, batch);
  run_pairs(state, p, pairs);
}

void BM_TorchScriptCnn(benchmark::State& state) {
  Pair p = torchscript_pair(1000);
  run_pairs(state, p, 20);
}

/// The ε-model of denoised smoothing (no FLOP count: group norms and upsampling dominate
/// less predictably). Counters as run_pairs, images/s only.
void BM_MnistUnet(benchmark::State& state) {
  torch::manual_seed(0);
  auto eager = dualrs::model::make_mnist_unet();
  eager->set_training(false);
  torch::manual_seed(0);
  auto frozen = dualrs::model::prepare_epsilon_for_inference(dualrs::model::make_mnist_unet());
  const std::int64_t batch = 250;
  const at::Tensor x = torch::randn({batch, 1, 28, 28});
  const at::Tensor t = torch::full({batch}, 200.0f);
  auto run = [&](dualrs::model::EpsilonModel& m) {
    torch::InferenceMode guard;
    auto out = m.epsilon(x, t);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  };
  for (int i = 0; i < kWarmupBatches; ++i) {
    run(*eager);
    run(*frozen);
  }
  std::vector<double> eager_s, frozen_s, ratio;
  for (auto _ : state) {
    double elapsed = 0.0;
    for (int i = 0; i < 20; ++i) {
      const double t0 = now();
      run(i % 2 == 0 ? *eager : *frozen);
      const double t1 = now();
      run(i % 2 == 0 ? *frozen : *eager);
      const double t2 = now();
      const double e = i % 2 == 0 ? t1 - t0 : t2 - t1;
      const double f = i % 2 == 0 ? t2 - t1 : t1 - t0;
      eager_s.push_back(e);
      frozen_s.push_back(f);
      ratio.push_back(e / f);
      elapsed += t2 - t0;
    }
    state.SetIterationTime(elapsed);
  }
  state.counters["eager_img_per_s"] = static_cast<double>(batch) / median(eager_s);
  state.counters["frozen_img_per_s"] = static_cast<double>(batch) / median(frozen_s);
  state.counters["ratio"] = median(ratio);
}

/// The machine's float32 peak for reference: a 2048 x 2048 matrix multiply (BLAS).
void BM_PeakMatmul(benchmark::State& state) {
  const std::int64_t n = 2048;
  const at::Tensor a = torch::rand({n, n}), b = torch::rand({n, n});
  at::Tensor c = torch::empty({n, n});
  for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);
  std::vector<double> s;
  for (auto _ : state) {
    const double t0 = now();
    torch::mm_out(c, a, b);
    const double t1 = now();
    s.push_back(t1 - t0);
    state.SetIterationTime(t1 - t0);
  }
  state.counters["gflops"] = 2.0 * std::pow(static_cast<double>(n), 3) / median(s) * 1e-9;
}

// Batches: what the stages run (1000 copies per forward for the MNIST models; smaller for the
// big ones, to keep a pair under a few seconds on two cores).
BENCHMARK_CAPTURE(BM_Native, mnist_cnn, "mnist_cnn", 1, 28, 1000, 20)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Native, cifar_resnet20, "cifar_resnet20", 3, 32, 250, 8)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Native, cifar_resnet110, "cifar_resnet110", 3, 32, 100, 4)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Native, resnet50, "resnet50", 3, 224, 16, 3)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TorchScriptCnn)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MnistUnet)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PeakMatmul)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return run_benchmarks(argc, argv); }
