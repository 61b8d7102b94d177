#include "dualrs/train/train_base.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "dualrs/core/error.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/noise_augment.h"
#include "dualrs/train/optimizer_state.h"
#include "dualrs/train/prefetch.h"

namespace dualrs::train {

void validate(const TrainBaseConfig& config) {
  std::vector<ConfigIssue> issues;
  if (config.epochs < 1) issues.push_back({"/train_base/epochs", "must be >= 1"});
  if (config.batch_size < 1) issues.push_back({"/train_base/batch_size", "must be >= 1"});
  if (!(config.lr > 0)) issues.push_back({"/train_base/lr", "must be > 0"});
  if (config.sigma && !(*config.sigma >= 0)) issues.push_back({"/train_base/sigma", "must be >= 0 (0 = clean images)"});
  for (std::size_t i = 0; i < config.sigma_candidates.size(); ++i) {
    if (!(config.sigma_candidates[i] > 0)) {
      issues.push_back({"/train_base/sigma_candidates/" + std::to_string(i), "must be > 0"});
    }
  }
  if (!config.sigma && config.sigma_candidates.empty()) {
    issues.push_back({"/train_base", "needs 'sigma' or 'sigma_candidates'"});
  }
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}

namespace {

// Shared loop: when `fixed` is non-empty, example j trains at noise fixed[j]; otherwise its
// noise level is drawn uniformly from the config's sigma / sigma_candidates each epoch. The
// noise of example i in epoch e is a function of (seed, e, i) only (rng/noise.h), so K-rank
// training sees the same noise as 1-rank training.
std::vector<EpochStats> train_with_noise(model::BaseModel& model, const data::ImageDataset& dataset,
                                         const std::vector<std::int64_t>& indices, const std::vector<double>& fixed,
                                         const TrainBaseConfig& config, std::int64_t first_epoch,
                                         const std::string& optimizer_state, const std::string& label, NoiseStage stage,
                                         const TrainContext& context, const EpochCallback& on_epoch,
                                         Verbosity verbosity) {
  torch::nn::Module* module = model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "model ", model.describe(), " is not trainable");
  DUALRS_CHECK(!indices.empty(), DataError, "no training examples selected");
  DUALRS_CHECK(first_epoch >= 1, Error, label, ": the first epoch is ", first_epoch, ", must be >= 1");
  torch::manual_seed(config.seed);
  DataParallel dp(*module, context);
  dp.broadcast_parameters_and_buffers();  // after the caller loaded a checkpoint to resume from
  if (!dp.is_root()) verbosity = Verbosity::kQuiet;
  torch::optim::AdamW optimizer(module->parameters(),
                                torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  // Every rank loads the same optimizer state, so the ranks' optimizers stay identical.
  if (!optimizer_state.empty() && first_epoch > 1 && std::filesystem::exists(optimizer_state)) {
    load_optimizer_state(optimizer, optimizer_state);
  }
  const std::vector<double> sigmas =
      config.sigma ? std::vector<double>{*config.sigma} : config.sigma_candidates;
  const NoiseSource noise(config.seed, stage);
  const NoiseSource choice(config.seed, NoiseStage::kTrainSigmaChoice);
  const auto n = static_cast<std::int64_t>(indices.size());
  const int loader_threads = loader_threads_of(config.loader_threads);
  std::vector<EpochStats> history;
  // The learning rate is multiplied by gamma after every lr_step_epochs-th epoch. A resumed
  // run repeats those multiplications instead of computing gamma^k, so its rate equals an
  // uninterrupted run's to the last bit.
  double lr = config.lr;
  for (std::int64_t epoch = 1; epoch < first_epoch; ++epoch) {
    if (config.lr_step_epochs > 0 && epoch % config.lr_step_epochs == 0) lr *= config.lr_gamma;
  }
  set_adamw_learning_rate(optimizer, lr);
  for (std::int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    model.set_training(true);
    const at::Tensor order = epoch_permutation(n, config.seed, epoch);
    const std::int64_t* position = order.data_ptr<std::int64_t>();
    double sums[2] = {0.0, 0.0};  // loss · examples, correct
    ProgressMeter progress(label + " epoch " + std::to_string(epoch) + "/" + std::to_string(config.epochs), n, "ex",
                           verbosity);
    // This rank's slice of every step, decoded and noised ahead on the loader threads.
    struct Batch {
      at::Tensor x;
      std::vector<std::int64_t> labels;
      std::vector<double> sigma_exact;  // float64 for a denoiser's t* search
    };
    const std::int64_t steps = (n + config.batch_size - 1) / config.batch_size;
    BatchPrefetcher<Batch> batches(steps, loader_threads, [&](std::int64_t step) {
      const std::int64_t begin = step * config.batch_size;
      const RankSlice mine = dp.slice(std::min(config.batch_size, n - begin));
      Batch batch;
      if (mine.count == 0) return batch;
      std::vector<std::int64_t> idx;
      std::vector<float> sigma;
      for (std::int64_t k = 0; k < mine.count; ++k) {
        const std::int64_t p = position[begin + mine.begin + k];
        const std::int64_t i = indices[static_cast<std::size_t>(p)];
        idx.push_back(i);
        batch.labels.push_back(dataset.label(i));
        const std::size_t s =
            fixed.empty() ? choice.uniform_index(i, 0, epoch - 1, static_cast<std::uint32_t>(sigmas.size())) : 0;
        batch.sigma_exact.push_back(fixed.empty() ? sigmas[s] : fixed[static_cast<std::size_t>(p)]);
        sigma.push_back(static_cast<float>(batch.sigma_exact.back()));
      }
      batch.x = noisy_copies(dataset, idx, sigma, 1, noise, epoch - 1);
      return batch;
    });
    for (std::int64_t begin = 0; begin < n; begin += config.batch_size) {
      const std::int64_t b = std::min(config.batch_size, n - begin);
      const RankSlice mine = dp.slice(b);
      optimizer.zero_grad();
      dp.broadcast_buffers();
      std::exception_ptr error;
      try {
        Batch batch = batches.next();  // every step takes its batch, so a failed one is this step's
        if (mine.count > 0) {
          // A denoised-smoothing classifier denoises each row at its own σ (docs/method.md §9).
          // The model moves x to its device; the targets follow the logits there.
          const at::Tensor logits = model.logits_under_noise(batch.x, torch::tensor(batch.sigma_exact, torch::kFloat64));
          const at::Tensor y = torch::tensor(batch.labels, torch::kInt64).to(logits.device());
          const at::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
          loss.backward();
          sums[0] += loss.item<double>() * static_cast<double>(mine.count);
          sums[1] += static_cast<double>(logits.argmax(1).eq(y).sum().item<std::int64_t>());
        }
      } catch (...) {
        error = std::current_exception();
      }
      dp.reduce_gradients(mine.count, b, error);
      optimizer.step();
      progress.update(begin + b);
    }
    progress.finish();
    dp.sum(sums, 2);
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = sums[0] / static_cast<double>(n);
    stats.accuracy = sums[1] / static_cast<double>(n);
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(stats);
    model.set_training(false);
    dp.agreed([&] {
      if (dp.is_root() && !optimizer_state.empty()) save_optimizer_state(optimizer, optimizer_state);
      if (on_epoch) on_epoch(stats);
    });
    if (config.lr_step_epochs > 0 && epoch % config.lr_step_epochs == 0) {
      lr *= config.lr_gamma;
      set_adamw_learning_rate(optimizer, lr);
    }
  }
  return history;
}
}  // namespace

std::vector<EpochStats> train_base(model::BaseModel& model, const data::ImageDataset& dataset,
                                   const std::vector<std::int64_t>& indices, const TrainBaseConfig& config,
                                   std::int64_t first_epoch, const std::string& optimizer_state,
                                   const TrainContext& context, const EpochCallback& on_epoch, Verbosity verbosity) {
  validate(config);
  return train_with_noise(model, dataset, indices, {}, config, first_epoch, optimizer_state, "train-base",
                          NoiseStage::kTrainBase, context, on_epoch, verbosity);
}

std::vector<EpochStats> finetune_classifier(model::BaseModel& model, const data::ImageDataset& dataset,
                                            const std::vector<std::int64_t>& indices,
                                            const std::vector<double>& sigma_per_example, const TrainBaseConfig& config,
                                            std::int64_t first_epoch, const std::string& optimizer_state,
                                            const TrainContext& context, const EpochCallback& on_epoch,
                                            Verbosity verbosity) {
  TrainBaseConfig checked = config;
  checked.sigma.reset();
  checked.sigma_candidates = {1.0};  // placeholder: the per-example levels replace it
  validate(checked);
  if (sigma_per_example.size() != indices.size()) {
    throw ConfigError("", "/finetune", "need one noise level per example: " + std::to_string(indices.size()) +
                                           " examples, " + std::to_string(sigma_per_example.size()) + " levels");
  }
  for (double s : sigma_per_example) {
    if (!(s > 0)) throw ConfigError("", "/finetune", "per-example noise levels must be > 0");
  }
  return train_with_noise(model, dataset, indices, sigma_per_example, checked, first_epoch, optimizer_state, "finetune",
                          NoiseStage::kFinetune, context, on_epoch, verbosity);
}

}  // namespace dualrs::train
