// Certification throughput vs the bare batched forward of the same model (the frozen
// inference form) and batch size.
// Target: sample_counts (noise + add + forward + vote counting) at >= 0.9x the noisy
// samples per second of the bare forward. Run bench/run_certify_bench.sh for the ratio.
//
// The machine is usually shared, so the headline figure is *paired*: BM_CertifyVsForward runs
// one bare forward and one certification batch back to back, many times (alternating which
// goes first), and reports the median of the per-pair ratios, so a change in load hits both
// sides alike and a preempted batch spoils one pair only. Both sides see the same model,
// batch size, process allocator and input memory behaviour: the bare forward reads a noisy
// batch written into a preallocated buffer, as sample_counts does.
// Every benchmark runs warm-up batches first (Google Benchmark 1.7 has no warm-up option):
// the first forwards pay for oneDNN primitive creation and allocator growth.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_main.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/rng/grid_noise.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/sample_counts.h"

namespace {

using dualrs::NoiseSource;
using dualrs::NoiseStage;

constexpr int kWarmupBatches = 3;
constexpr double kSigma = 0.5;

/// Wall and process CPU clocks (CPU: all threads of the process), in seconds.
struct Clocks {
  double wall;
  double cpu;
  static Clocks now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return {wall, static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec)};
  }
  Clocks operator-(const Clocks& o) const { return {wall - o.wall, cpu - o.cpu}; }
  Clocks& operator+=(const Clocks& o) {
    wall += o.wall;
    cpu += o.cpu;
    return *this;
  }
};

/// The q-quantile of `v` (nearest rank; v is reordered).
double quantile(std::vector<double>& v, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

/// Fresh weights from a fixed seed, so every run times the same network, in the frozen
/// inference form every stage runs (docs/method.md §14; DUALRS_BENCH_EAGER=1: the eager one).
std::unique_ptr<dualrs::model::BaseModel> seeded_model() {
  torch::manual_seed(0);
  auto model = dualrs::model::make_mnist_cnn(10);
  model->set_training(false);
  const char* eager = std::getenv("DUALRS_BENCH_EAGER");
  if (eager != nullptr && std::string(eager) == "1") return model;
  return dualrs::model::prepare_for_inference(std::move(model), "/model");
}

/// One fixed model, input image and noise source per benchmark.
struct Fixture {
  explicit Fixture(std::int64_t batch_size)
      : batch(batch_size), model(seeded_model()), noise(0, NoiseStage::kCertifyEstimation) {
    model->set_training(false);
    x = torch::rand({1, 28, 28});
    noisy = torch::empty({batch, 1, 28, 28});
    dualrs::smooth::fill_noisy_copies(noisy, x, noise, 0, 0, kSigma, 0);
  }
  void forward() {
    torch::InferenceMode guard;
    auto logits = model->logits(noisy);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  void certify() {
    const auto counts = dualrs::smooth::sample_counts(*model, x, noise, {0, 0, kSigma, first, batch, batch});
    benchmark::DoNotOptimize(counts.votes.data());
    first += batch;
  }
  void warm_up() {
    for (int i = 0; i < kWarmupBatches; ++i) {
      forward();
      certify();
    }
  }

  std::int64_t batch;
  std::unique_ptr<dualrs::model::BaseModel> model;
  NoiseSource noise;
  torch::Tensor x, noisy;
  std::int64_t first = 0;
};

void BM_BareForward(benchmark::State& state) {
  Fixture f(state.range(0));
  f.warm_up();
  for (auto _ : state) f.forward();
  state.SetItemsProcessed(state.iterations() * f.batch);
}

void BM_SampleCounts(benchmark::State& state) {
  Fixture f(state.range(0));
  f.warm_up();
  for (auto _ : state) f.certify();
  state.SetItemsProcessed(state.iterations() * f.batch);
}

/// The headline: forward and certification back to back, `pairs` times (alternating which
/// goes first). Counters, each the median over the pairs: samples per second of each (wall
/// clock), `ratio` = certification / bare forward throughput of the same pair (wall), its
/// quartiles `ratio_q1`/`ratio_q3`, and `cpu_ratio` (process CPU time, all threads). A
/// preempted batch spoils one pair, not the median.
void BM_CertifyVsForward(benchmark::State& state) {
  Fixture f(state.range(0));
  const auto pairs = static_cast<std::size_t>(state.range(1));
  f.warm_up();
  std::vector<double> forward_wall, certify_wall, ratio, cpu_ratio;
  for (auto _ : state) {
    forward_wall.clear();
    certify_wall.clear();
    ratio.clear();
    cpu_ratio.clear();
    Clocks elapsed{0, 0};
    for (std::size_t i = 0; i < pairs; ++i) {
      const bool forward_first = i % 2 == 0;
      const Clocks t0 = Clocks::now();
      if (forward_first) f.forward(); else f.certify();
      const Clocks t1 = Clocks::now();
      if (forward_first) f.certify(); else f.forward();
      const Clocks t2 = Clocks::now();
      const Clocks forward = forward_first ? t1 - t0 : t2 - t1;
      const Clocks certify = forward_first ? t2 - t1 : t1 - t0;
      forward_wall.push_back(forward.wall);
      certify_wall.push_back(certify.wall);
      ratio.push_back(forward.wall / certify.wall);
      cpu_ratio.push_back(forward.cpu / certify.cpu);
      elapsed += t2 - t0;
    }
    state.SetIterationTime(elapsed.wall);
  }
  const double batch = static_cast<double>(f.batch);
  state.counters["forward_per_s"] = batch / quantile(forward_wall, 0.5);
  state.counters["certify_per_s"] = batch / quantile(certify_wall, 0.5);
  state.counters["ratio"] = quantile(ratio, 0.5);
  state.counters["ratio_q1"] = quantile(ratio, 0.25);
  state.counters["ratio_q3"] = quantile(ratio, 0.75);
  state.counters["cpu_ratio"] = quantile(cpu_ratio, 0.5);
}

/// Noise generation alone (x + σ·z into the batch buffer), for profiling.
void BM_NoiseOnly(benchmark::State& state) {
  Fixture f(state.range(0));
  for (auto _ : state) {
    dualrs::smooth::fill_noisy_copies(f.noisy, f.x, f.noise, 0, 0, kSigma, f.first);
    f.first += f.batch;
    benchmark::DoNotOptimize(f.noisy.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * f.batch);
}

/// Grid noise (docs/method.md §15) against Gaussian noise, paired: one batch of each, back to
/// back (alternating which goes first), many times, on one 28×28 image on the 1/255 grid;
/// counters give the median time ratio grid / gaussian (target ≤ 1.3) and both rates.
void BM_GridVsGaussianNoise(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  const std::int64_t pairs = state.range(1);
  constexpr std::int64_t kNumel = 28 * 28;
  std::vector<std::int32_t> levels(kNumel);
  std::vector<float> clean(kNumel);
  for (std::int64_t e = 0; e < kNumel; ++e) {
    levels[static_cast<std::size_t>(e)] = static_cast<std::int32_t>((e * 37) % 256);
    clean[static_cast<std::size_t>(e)] = static_cast<float>(levels[static_cast<std::size_t>(e)]) / 255.0f;
  }
  const dualrs::NoiseSource gaussian(0, dualrs::NoiseStage::kCertifyEstimation);
  const dualrs::NoiseSource grid(0, dualrs::NoiseStage::kCertifyEstimation, dualrs::NoiseKind::kGrid);
  const dualrs::GridTable& table = dualrs::GridTable::for_sigma(kSigma);
  std::vector<float> out(static_cast<std::size_t>(batch * kNumel));
  std::vector<std::uint8_t> rejected(static_cast<std::size_t>(batch));
  auto seconds = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto run_gaussian = [&](std::int64_t first) {
    at::parallel_for(0, batch, 16, [&](std::int64_t b, std::int64_t e) {
      gaussian.fill(out.data() + b * kNumel, kNumel, 0, 0, first + b, e - b, static_cast<float>(kSigma), clean.data());
    });
  };
  auto run_grid = [&](std::int64_t first) {
    at::parallel_for(0, batch, 16, [&](std::int64_t b, std::int64_t e) {
      grid.fill_grid(out.data() + b * kNumel, rejected.data() + b, kNumel, 0, 0, first + b, e - b, table, levels.data());
    });
  };
  for (auto _ : state) {
    std::vector<double> ratio, t_gauss, t_grid;
    std::int64_t first = 0;
    for (std::int64_t p = 0; p < pairs + 3; ++p, first += batch) {
      double a = 0, b = 0;
      if (p % 2 == 0) {
        a = seconds([&] { run_gaussian(first); });
        b = seconds([&] { run_grid(first); });
      } else {
        b = seconds([&] { run_grid(first); });
        a = seconds([&] { run_gaussian(first); });
      }
      if (p < 3) continue;  // warm-up
      ratio.push_back(b / a);
      t_gauss.push_back(a);
      t_grid.push_back(b);
    }
    state.SetIterationTime(std::accumulate(t_grid.begin(), t_grid.end(), 0.0));
    state.counters["grid_over_gaussian"] = quantile(ratio, 0.5);
    state.counters["gaussian_copies_per_s"] = static_cast<double>(batch) / quantile(t_gauss, 0.5);
    state.counters["grid_copies_per_s"] = static_cast<double>(batch) / quantile(t_grid, 0.5);
  }
}

/// Whether drawing the next batch's noise on a thread of its own while the forward runs pays:
/// paired, `pairs` times (alternating which goes first), (a) in turn: noise for batch b+1 on
/// all cores (as sample_counts does), then the forward of batch b; (b) overlapped: the noise
/// for b+1 on one extra thread (plain fill, no parallel_for) while the forward of b runs.
/// Counter `overlap_speedup` = median of (a)/(b) wall times; above 1 means overlap pays.
void BM_NoiseOverlap(benchmark::State& state) {
  Fixture f(state.range(0));
  const auto pairs = static_cast<std::size_t>(state.range(1));
  f.warm_up();
  torch::Tensor next = torch::empty_like(f.noisy);
  const float* clean = f.x.data_ptr<float>();
  const std::int64_t numel = f.x.numel();
  auto in_turn = [&] {
    dualrs::smooth::fill_noisy_copies(next, f.x, f.noise, 0, 0, kSigma, f.first);
    f.forward();
  };
  auto overlapped = [&] {
    std::thread drawer([&] {
      f.noise.fill(next.data_ptr<float>(), numel, 0, 0, f.first, f.batch, static_cast<float>(kSigma), clean);
    });
    f.forward();
    drawer.join();
  };
  auto seconds = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (auto _ : state) {
    std::vector<double> speedup, t_turn, t_overlap;
    for (std::size_t p = 0; p < pairs; ++p, f.first += f.batch) {
      double a = 0, b = 0;
      if (p % 2 == 0) {
        a = seconds(in_turn);
        b = seconds(overlapped);
      } else {
        b = seconds(overlapped);
        a = seconds(in_turn);
      }
      speedup.push_back(a / b);
      t_turn.push_back(a);
      t_overlap.push_back(b);
    }
    state.SetIterationTime(std::accumulate(t_turn.begin(), t_turn.end(), 0.0) +
                           std::accumulate(t_overlap.begin(), t_overlap.end(), 0.0));
    state.counters["overlap_speedup"] = quantile(speedup, 0.5);
    state.counters["in_turn_per_s"] = static_cast<double>(f.batch) / quantile(t_turn, 0.5);
    state.counters["overlapped_per_s"] = static_cast<double>(f.batch) / quantile(t_overlap, 0.5);
  }
}

// {batch size, pairs per repetition}: about 10 s per repetition on a quiet 2-core machine.
BENCHMARK(BM_CertifyVsForward)->Args({1000, 40})->Args({250, 160})->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
BENCHMARK(BM_BareForward)->Arg(1000)->Arg(250)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SampleCounts)->Arg(1000)->Arg(250)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NoiseOnly)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NoiseOverlap)->Args({1000, 40})->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
BENCHMARK(BM_GridVsGaussianNoise)->Args({1000, 60})->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) { return run_benchmarks(argc, argv); }
