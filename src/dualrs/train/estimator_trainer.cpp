#include "dualrs/train/estimator_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "dualrs/core/error.h"
#include "dualrs/train/optimizer_state.h"

namespace dualrs::train {

EstimatorTrainConfig estimator_preset(const std::string& name) {
  EstimatorTrainConfig c;
  c.preset = name;
  if (name.empty()) return c;
  if (name == "cifar10") {
    c.epochs = 90;
    c.batch_size = 128;
    c.m = 2;
    c.lr = 0.01;
    c.weight_decay = 0.01;
    c.lr_step_epochs = 30;
    c.lr_gamma = 0.5;
    c.lambda = 40.0;
    c.eta = 0.5;
    c.radius_weight = "strong";
    return c;
  }
  if (name == "imagenet") {
    c.epochs = 9;
    c.batch_size = 200;
    c.m = 2;
    c.lr = 0.005;
    c.weight_decay = 0.01;
    c.lr_step_epochs = 3;
    c.lr_gamma = 0.5;
    c.lambda = 10.0;
    c.eta = 0.5;
    c.radius_weight = "weak";
    return c;
  }
  throw ConfigError("", "/train_estimator/preset", "unknown preset '" + name + "' (cifar10, imagenet)");
}

void validate(const EstimatorTrainConfig& c) {
  std::vector<ConfigIssue> issues;
  const std::string p = "/train_estimator/";
  if (!(c.sigma_e > 0)) issues.push_back({"/dual/sigma_e", "must be > 0"});
  if (c.epochs < 1) issues.push_back({p + "epochs", "must be >= 1"});
  if (c.batch_size < 1) issues.push_back({p + "batch_size", "must be >= 1"});
  if (c.m < 1) issues.push_back({p + "m", "must be >= 1"});
  if (!(c.lr > 0)) issues.push_back({p + "lr", "must be > 0"});
  if (c.lambda < 0) issues.push_back({p + "lambda", "must be >= 0"});
  if (c.eta < 0) issues.push_back({p + "eta", "must be >= 0"});
  if (c.radius_weight != "strong" && c.radius_weight != "weak" && c.radius_weight != "none") {
    issues.push_back({p + "radius_weight", "must be strong, weak or none"});
  }
  if (!(c.validation_fraction >= 0 && c.validation_fraction < 1)) issues.push_back({p + "validation_fraction", "must be in [0, 1)"});
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}

namespace {
RadiusWeight weight_mode(const std::string& name) {
  if (name == "strong") return RadiusWeight::kStrong;
  if (name == "weak") return RadiusWeight::kWeak;
  return RadiusWeight::kNone;
}

// Accuracy of the estimator's σ choice on one noisy copy per image, over `rows`.
double selection_accuracy(model::BaseModel& estimator, const data::ImageDataset& dataset, const EstimatorTrainingSet& set,
                          const std::vector<std::int64_t>& rows, double sigma_e, std::uint64_t seed) {
  if (rows.empty()) return NAN;
  torch::NoGradGuard no_grad;
  estimator.set_training(false);
  auto generator = at::detail::createCPUGenerator(seed);
  std::int64_t hits = 0;
  for (std::size_t begin = 0; begin < rows.size(); begin += 256) {
    const std::size_t end = std::min(rows.size(), begin + 256);
    std::vector<std::int64_t> idx;
    std::vector<std::int64_t> best;
    for (std::size_t r = begin; r < end; ++r) {
      idx.push_back(set.idx[static_cast<std::size_t>(rows[r])]);
      best.push_back(set.best[static_cast<std::size_t>(rows[r])]);
    }
    at::Tensor x = dataset.batch(idx);
    x = x + sigma_e * torch::randn(x.sizes(), generator);
    const at::Tensor pred = estimator.logits(x).argmax(1);
    hits += pred.eq(torch::tensor(best, torch::kInt64)).sum().item<std::int64_t>();
  }
  return static_cast<double>(hits) / static_cast<double>(rows.size());
}
}  // namespace

std::vector<EstimatorEpochStats> train_estimator(model::BaseModel& estimator, const data::ImageDataset& dataset,
                                                 const EstimatorTrainingSet& set, const EstimatorTrainConfig& config,
                                                 std::int64_t first_epoch, const std::string& optimizer_state,
                                                 const EstimatorEpochCallback& on_epoch, Verbosity verbosity) {
  validate(config);
  torch::nn::Module* module = estimator.module();
  DUALRS_CHECK(module != nullptr, ModelError, "estimator ", estimator.describe(), " is not trainable");
  const auto s = static_cast<std::int64_t>(set.sigma_candidates.size());
  if (estimator.num_classes() != s) {
    DUALRS_THROW(ModelError, "estimator ", estimator.describe(), " has ", estimator.num_classes(),
                 " outputs but |sigma_candidates| = ", s);
  }
  const auto n = static_cast<std::int64_t>(set.idx.size());
  DUALRS_CHECK(n > 0, DataError, "no labelled examples to train the estimator on (every label radius is 0)");
  DUALRS_CHECK(static_cast<std::int64_t>(set.radii.size()) == n * s && static_cast<std::int64_t>(set.weight_e.size()) == n,
               DataError, "estimator training set: radii must be [N, |Σ|] and weight_e [N]");

  // A fixed validation slice: the tail of a seeded permutation of the rows.
  std::vector<std::int64_t> train_rows, val_rows;
  {
    auto generator = at::detail::createCPUGenerator(config.seed);
    const at::Tensor perm = torch::randperm(n, generator, torch::kInt64);
    const auto n_val = static_cast<std::int64_t>(std::floor(config.validation_fraction * static_cast<double>(n)));
    for (std::int64_t i = 0; i < n; ++i) {
      (i < n - n_val ? train_rows : val_rows).push_back(perm[i].item<std::int64_t>());
    }
  }
  const at::Tensor radii_all = torch::tensor(set.radii, torch::kFloat64).view({n, s}).to(torch::kFloat32);
  const at::Tensor weights_all = torch::tensor(set.weight_e, torch::kFloat64).to(torch::kFloat32);
  const at::Tensor best_all = torch::tensor(set.best, torch::kInt64);

  torch::optim::AdamW optimizer(module->parameters(),
                                torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  if (!optimizer_state.empty() && first_epoch > 1 && std::filesystem::exists(optimizer_state)) {
    load_optimizer_state(optimizer, optimizer_state);
  }
  EstimatorLossConfig loss_config;
  loss_config.lambda = config.lambda;
  loss_config.eta = config.eta;
  loss_config.radius_weight = weight_mode(config.radius_weight);
  loss_config.radius_scale_c = set.radius_cap;

  std::vector<EstimatorEpochStats> history;
  const auto n_train = static_cast<std::int64_t>(train_rows.size());
  for (std::int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    // The learning rate and the random streams depend only on the epoch, so a resumed run
    // repeats an uninterrupted one.
    const double lr = stepped_learning_rate(config.lr, config.lr_gamma, config.lr_step_epochs, epoch);
    set_adamw_learning_rate(optimizer, lr);
    auto generator = epoch_generator(config.seed, epoch);
    const at::Tensor order = torch::randperm(n_train, generator, torch::kInt64);
    estimator.set_training(true);
    double loss_sum = 0, ce_sum = 0, con_sum = 0;
    std::int64_t hits = 0;
    ProgressMeter progress("train-estimator epoch " + std::to_string(epoch) + "/" + std::to_string(config.epochs),
                           n_train, "ex", verbosity);
    for (std::int64_t begin = 0; begin < n_train; begin += config.batch_size) {
      const std::int64_t b = std::min(config.batch_size, n_train - begin);
      std::vector<std::int64_t> rows(static_cast<std::size_t>(b)), idx(static_cast<std::size_t>(b));
      for (std::int64_t j = 0; j < b; ++j) {
        rows[static_cast<std::size_t>(j)] = train_rows[static_cast<std::size_t>(order[begin + j].item<std::int64_t>())];
        idx[static_cast<std::size_t>(j)] = set.idx[static_cast<std::size_t>(rows[static_cast<std::size_t>(j)])];
      }
      const at::Tensor row_t = torch::tensor(rows, torch::kInt64);
      const at::Tensor x = dataset.batch(idx);  // [B, C, H, W]
      const auto shape = x.sizes();
      // m noisy copies per image at σ_e: [B*m, C, H, W], copy-major within each image.
      at::Tensor copies = x.unsqueeze(1).expand({b, config.m, shape[1], shape[2], shape[3]}).reshape({b * config.m, shape[1], shape[2], shape[3]});
      copies = copies + config.sigma_e * torch::randn(copies.sizes(), generator);
      optimizer.zero_grad();
      const at::Tensor logits = estimator.logits(copies).view({b, config.m, s});
      const EstimatorLossTerms terms = estimator_loss(logits, radii_all.index_select(0, row_t),
                                                      weights_all.index_select(0, row_t), loss_config);
      terms.total.backward();
      optimizer.step();
      loss_sum += terms.total.item<double>() * static_cast<double>(b);
      ce_sum += terms.ce.sum().item<double>();
      con_sum += terms.consistency.sum().item<double>();
      hits += logits.select(1, 0).argmax(1).eq(best_all.index_select(0, row_t)).sum().item<std::int64_t>();
      progress.update(begin + b);
    }
    progress.finish();
    EstimatorEpochStats stats;
    stats.epoch = epoch;
    stats.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(1, n_train));
    stats.ce = ce_sum / static_cast<double>(std::max<std::int64_t>(1, n_train));
    stats.consistency = con_sum / static_cast<double>(std::max<std::int64_t>(1, n_train));
    stats.train_selection_accuracy = static_cast<double>(hits) / static_cast<double>(std::max<std::int64_t>(1, n_train));
    stats.val_selection_accuracy =
        selection_accuracy(estimator, dataset, set, val_rows, config.sigma_e, config.seed + 17);
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    estimator.set_training(false);
    if (!optimizer_state.empty()) save_optimizer_state(optimizer, optimizer_state);
    history.push_back(stats);
    if (on_epoch) on_epoch(stats);
  }
  return history;
}

}  // namespace dualrs::train
