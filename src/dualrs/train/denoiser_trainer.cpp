#include "dualrs/train/denoiser_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>

#include "dualrs/core/error.h"
#include "dualrs/train/optimizer_state.h"
#include "dualrs/train/prefetch.h"

namespace dualrs::train {

void validate(const TrainDenoiserConfig& c) {
  std::vector<ConfigIssue> issues;
  const std::string p = "/train_denoiser/";
  if (c.epochs < 1) issues.push_back({p + "epochs", "must be >= 1"});
  if (c.batch_size < 1) issues.push_back({p + "batch_size", "must be >= 1"});
  if (!(c.lr > 0)) issues.push_back({p + "lr", "must be > 0"});
  if (c.weight_decay < 0) issues.push_back({p + "weight_decay", "must be >= 0"});
  if (!(c.t_window >= 0 && c.t_window <= 1)) issues.push_back({p + "t_window", "must be in [0, 1]"});
  if (!(c.validation_fraction >= 0 && c.validation_fraction < 1)) issues.push_back({p + "validation_fraction", "must be in [0, 1)"});
  for (std::size_t i = 0; i < c.sigmas.size(); ++i) {
    if (!(c.sigmas[i] > 0)) issues.push_back({p + "sigmas/" + std::to_string(i), "must be > 0"});
  }
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}

std::vector<std::pair<std::int64_t, std::int64_t>> timestep_windows(const DiffusionSchedule& schedule,
                                                                    const std::vector<double>& sigmas, double t_window) {
  if (!(t_window >= 0 && t_window <= 1)) throw ConfigError("", "/train_denoiser/t_window", "must be in [0, 1]");
  if (sigmas.empty()) throw ConfigError("", "/train_denoiser/sigmas", "needs at least one noise level");
  std::vector<std::pair<std::int64_t, std::int64_t>> windows;
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    const DenoiseStep step = denoise_step(schedule, sigmas[i], "/train_denoiser/sigmas/" + std::to_string(i));
    const double t = static_cast<double>(step.t);
    const auto lo = static_cast<std::int64_t>(std::floor(t * (1.0 - t_window)));
    const auto hi = std::min<std::int64_t>(schedule.steps - 1, static_cast<std::int64_t>(std::ceil(t * (1.0 + t_window))));
    windows.emplace_back(std::max<std::int64_t>(0, lo), hi);
  }
  return windows;
}

namespace {

// RMSE of (x̂0 + 1)/2 against x for each σ, one noisy copy per held-out image.
std::vector<double> validation_rmse(model::DiffusionDenoiser& denoiser, const data::ImageDataset& dataset,
                                    const std::vector<std::int64_t>& rows, const std::vector<double>& sigmas,
                                    std::uint64_t seed) {
  std::vector<double> out;
  if (rows.empty()) return std::vector<double>(sigmas.size(), NAN);
  torch::NoGradGuard no_grad;
  denoiser.epsilon_model().set_training(false);
  for (double sigma : sigmas) {
    auto generator = at::detail::createCPUGenerator(seed);
    double sum = 0.0;
    std::int64_t count = 0;
    for (std::size_t begin = 0; begin < rows.size(); begin += 256) {
      const std::vector<std::int64_t> idx(rows.begin() + static_cast<std::ptrdiff_t>(begin),
                                          rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), begin + 256)));
      const at::Tensor x = dataset.batch(idx);
      const at::Tensor x0 = denoiser.denoise(x + sigma * torch::randn(x.sizes(), generator), sigma).to(torch::kCPU);
      sum += ((x0 + 1.0) * 0.5 - x).pow(2).sum().item<double>();
      count += x.numel();
    }
    out.push_back(std::sqrt(sum / static_cast<double>(count)));
  }
  return out;
}

}  // namespace

std::vector<DenoiserEpochStats> train_denoiser(model::DiffusionDenoiser& denoiser, const data::ImageDataset& dataset,
                                               const std::vector<std::int64_t>& indices, const std::vector<double>& sigmas,
                                               const TrainDenoiserConfig& config, std::int64_t first_epoch,
                                               const std::string& optimizer_state, const DenoiserEpochCallback& on_epoch,
                                               Verbosity verbosity) {
  validate(config);
  model::EpsilonModel& eps_model = denoiser.epsilon_model();
  torch::nn::Module* module = eps_model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "epsilon-model ", eps_model.describe(), " is not trainable (TorchScript?)");
  const DiffusionSchedule& schedule = denoiser.schedule();
  const auto windows = timestep_windows(schedule, sigmas, config.t_window);
  const auto n = static_cast<std::int64_t>(indices.size());
  DUALRS_CHECK(n > 0, DataError, "no training images selected for the denoiser");

  // A fixed held-out slice: the tail of a seeded permutation.
  std::vector<std::int64_t> train_idx, val_idx;
  {
    auto generator = at::detail::createCPUGenerator(config.seed);
    const at::Tensor perm = torch::randperm(n, generator, torch::kInt64);
    const auto n_val = static_cast<std::int64_t>(std::floor(config.validation_fraction * static_cast<double>(n)));
    for (std::int64_t i = 0; i < n; ++i) {
      (i < n - n_val ? train_idx : val_idx).push_back(indices[static_cast<std::size_t>(perm[i].item<std::int64_t>())]);
    }
  }
  const at::Tensor alpha_bar = torch::tensor(schedule.alpha_bar, torch::kFloat64);
  std::vector<double> lo_values, width_values;
  for (const auto& [lo, hi] : windows) {
    lo_values.push_back(static_cast<double>(lo));
    width_values.push_back(static_cast<double>(hi - lo + 1));
  }
  const at::Tensor window_lo = torch::tensor(lo_values, torch::kFloat64);
  const at::Tensor window_width = torch::tensor(width_values, torch::kFloat64);
  const double timestep_scale = schedule.network_timestep(1) - schedule.network_timestep(0);

  torch::optim::AdamW optimizer(module->parameters(), torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  if (!optimizer_state.empty() && first_epoch > 1 && std::filesystem::exists(optimizer_state)) {
    load_optimizer_state(optimizer, optimizer_state);
  }
  std::vector<DenoiserEpochStats> history;
  const auto n_train = static_cast<std::int64_t>(train_idx.size());
  const int loader_threads = loader_threads_of(config.loader_threads);
  for (std::int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const double lr = stepped_learning_rate(config.lr, config.lr_gamma, config.lr_step_epochs, epoch);
    set_adamw_learning_rate(optimizer, lr);
    auto generator = epoch_generator(config.seed, epoch);
    const at::Tensor order = torch::randperm(n_train, generator, torch::kInt64);
    eps_model.set_training(true);
    double loss_sum = 0.0;
    ProgressMeter progress("train-denoiser epoch " + std::to_string(epoch) + "/" + std::to_string(config.epochs), n_train,
                           "img", verbosity);
    // Batches are built ahead on the loader threads. Their random draws come from the epoch's
    // one generator in step order, as when each batch is built in turn (a step waits for the
    // previous step's draws); decoding, the larger part, runs side by side.
    struct Batch {
      at::Tensor x_t, net_t, noise;
    };
    std::mutex draw_mutex;
    std::condition_variable draw_turn;
    std::int64_t next_draw = 0;
    const std::int64_t steps = (n_train + config.batch_size - 1) / config.batch_size;
    BatchPrefetcher<Batch> batches(steps, loader_threads, [&](std::int64_t step) {
      const std::int64_t begin = step * config.batch_size;
      const std::int64_t b = std::min(config.batch_size, n_train - begin);
      std::vector<std::int64_t> idx(static_cast<std::size_t>(b));
      for (std::int64_t j = 0; j < b; ++j) {
        idx[static_cast<std::size_t>(j)] = train_idx[static_cast<std::size_t>(order[begin + j].item<std::int64_t>())];
      }
      // A failure before the draws still passes the turn on, or the later steps would wait forever.
      std::exception_ptr failed;
      at::Tensor x0, which, u, noise;
      try {
        x0 = dataset.batch(idx) * 2.0 - 1.0;  // model space
      } catch (...) {
        failed = std::current_exception();
      }
      {
        std::unique_lock<std::mutex> lock(draw_mutex);
        draw_turn.wait(lock, [&] { return next_draw == step; });
        try {
          if (!failed) {
            // σ uniformly from `sigmas`, then t uniformly from its window (float64 index arithmetic).
            which = torch::randint(static_cast<std::int64_t>(windows.size()), {b}, generator, torch::kInt64);
            u = torch::rand({b}, generator, torch::kFloat64);
            noise = torch::randn(x0.sizes(), generator);
          }
        } catch (...) {
          failed = std::current_exception();
        }
        ++next_draw;
      }
      draw_turn.notify_all();
      if (failed) std::rethrow_exception(failed);
      const at::Tensor t = (window_lo.index_select(0, which) + torch::floor(u * window_width.index_select(0, which)))
                               .to(torch::kInt64)
                               .clamp_max(schedule.steps - 1);
      const at::Tensor abar = alpha_bar.index_select(0, t);
      const at::Tensor a = abar.sqrt().to(torch::kFloat32).view({b, 1, 1, 1});
      const at::Tensor c = (1.0 - abar).sqrt().to(torch::kFloat32).view({b, 1, 1, 1});
      return Batch{a * x0 + c * noise, (t.to(torch::kFloat64) * timestep_scale).to(torch::kFloat32), noise};
    });
    for (std::int64_t begin = 0; begin < n_train; begin += config.batch_size) {
      const std::int64_t b = std::min(config.batch_size, n_train - begin);
      const Batch batch = batches.next();
      const at::Tensor& x_t = batch.x_t;
      const at::Tensor& net_t = batch.net_t;
      const at::Tensor& noise = batch.noise;
      optimizer.zero_grad();
      const at::Tensor eps = eps_model.epsilon(x_t, net_t);  // on the model's device; the draws stay on the CPU
      const at::Tensor loss = torch::mse_loss(eps, noise.to(eps.device()));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(b);
      progress.update(begin + b);
    }
    progress.finish();
    eps_model.set_training(false);
    DenoiserEpochStats stats;
    stats.epoch = epoch;
    stats.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, n_train));
    stats.val_rmse = validation_rmse(denoiser, dataset, val_idx, sigmas, config.seed + 17);
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!optimizer_state.empty()) save_optimizer_state(optimizer, optimizer_state);
    history.push_back(stats);
    if (on_epoch) on_epoch(stats);
  }
  return history;
}

}  // namespace dualrs::train
