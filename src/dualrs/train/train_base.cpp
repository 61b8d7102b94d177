#include "dualrs/train/train_base.h"

#include <torch/torch.h>

#include <chrono>

#include "dualrs/core/error.h"

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
// noise level is drawn uniformly from the config's sigma / sigma_candidates each time.
std::vector<EpochStats> train_with_noise(model::BaseModel& model, const data::ImageDataset& dataset,
                                         const std::vector<std::int64_t>& indices, const std::vector<double>& fixed,
                                         const TrainBaseConfig& config, const std::string& label,
                                         const EpochCallback& on_epoch, Verbosity verbosity) {
  torch::nn::Module* module = model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "model ", model.describe(), " is not trainable");
  DUALRS_CHECK(!indices.empty(), DataError, "no training examples selected");
  torch::manual_seed(config.seed);
  auto generator = at::detail::createCPUGenerator(config.seed);
  torch::optim::AdamW optimizer(module->parameters(),
                                torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  const std::vector<double> sigmas =
      config.sigma ? std::vector<double>{*config.sigma} : config.sigma_candidates;
  // σ stays float64 for the denoiser's t* search; the noise itself is float32.
  const at::Tensor sigma_table = torch::tensor(sigmas, torch::kFloat64);
  const at::Tensor fixed_sigma = torch::tensor(fixed, torch::kFloat64);
  const at::Tensor all_indices = torch::tensor(indices, torch::kInt64);
  const auto n = static_cast<std::int64_t>(indices.size());
  std::vector<EpochStats> history;
  double lr = config.lr;
  for (std::int64_t epoch = 1; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    model.set_training(true);
    const at::Tensor order = torch::randperm(n, generator, torch::kInt64);
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    ProgressMeter progress(label + " epoch " + std::to_string(epoch) + "/" + std::to_string(config.epochs), n, "ex",
                           verbosity);
    for (std::int64_t begin = 0; begin < n; begin += config.batch_size) {
      const std::int64_t b = std::min(config.batch_size, n - begin);
      const at::Tensor positions = order.narrow(0, begin, b);
      const at::Tensor batch_indices = all_indices.index_select(0, positions);
      std::vector<std::int64_t> idx(batch_indices.data_ptr<std::int64_t>(), batch_indices.data_ptr<std::int64_t>() + b);
      at::Tensor x = dataset.batch(idx);
      std::vector<std::int64_t> labels(static_cast<std::size_t>(b));
      for (std::int64_t i = 0; i < b; ++i) labels[static_cast<std::size_t>(i)] = dataset.label(idx[static_cast<std::size_t>(i)]);
      const at::Tensor y = torch::tensor(labels, torch::kInt64);
      at::Tensor sigma;
      if (fixed.empty()) {
        const at::Tensor which = torch::randint(static_cast<std::int64_t>(sigmas.size()), {b}, generator, torch::kInt64);
        sigma = sigma_table.index_select(0, which).view({b, 1, 1, 1});
      } else {
        sigma = fixed_sigma.index_select(0, positions).view({b, 1, 1, 1});
      }
      x = x + sigma.to(torch::kFloat32) * torch::randn(x.sizes(), generator);
      optimizer.zero_grad();
      // A denoised-smoothing classifier denoises each row at its own σ (METHOD.md §3).
      const at::Tensor logits = model.logits_under_noise(x, sigma.view({b}));
      const at::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(b);
      correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
      progress.update(begin + b);
    }
    progress.finish();
    EpochStats stats;
    stats.epoch = epoch;
    stats.loss = loss_sum / static_cast<double>(n);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(n);
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(stats);
    model.set_training(false);
    if (on_epoch) on_epoch(stats);
    if (config.lr_step_epochs > 0 && epoch % config.lr_step_epochs == 0) {
      lr *= config.lr_gamma;
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      }
    }
  }
  return history;
}
}  // namespace

std::vector<EpochStats> train_base(model::BaseModel& model, const data::ImageDataset& dataset,
                                   const std::vector<std::int64_t>& indices, const TrainBaseConfig& config,
                                   const EpochCallback& on_epoch, Verbosity verbosity) {
  validate(config);
  return train_with_noise(model, dataset, indices, {}, config, "train-base", on_epoch, verbosity);
}

std::vector<EpochStats> finetune_classifier(model::BaseModel& model, const data::ImageDataset& dataset,
                                            const std::vector<std::int64_t>& indices,
                                            const std::vector<double>& sigma_per_example, const TrainBaseConfig& config,
                                            const EpochCallback& on_epoch, Verbosity verbosity) {
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
  return train_with_noise(model, dataset, indices, sigma_per_example, checked, "finetune", on_epoch, verbosity);
}

}  // namespace dualrs::train
