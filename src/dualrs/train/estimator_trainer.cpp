#include "dualrs/train/estimator_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "dualrs/core/error.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/noise_augment.h"
#include "dualrs/train/optimizer_state.h"
#include "dualrs/train/prefetch.h"

namespace dualrs::train {

EstimatorTrainingSet estimator_training_set(const std::vector<double>& sigma_candidates, const std::vector<std::int64_t>& idx,
                                            const std::vector<double>& radii, const std::vector<std::int64_t>& best,
                                            const std::vector<double>& weight_e, bool rebalance, double radius_cap) {
  const std::size_t n = idx.size();
  const std::size_t s = sigma_candidates.size();
  if (best.size() != n || weight_e.size() != n || radii.size() != n * s) {
    throw std::invalid_argument("estimator_training_set: idx, best, weight_e and radii [N, S] disagree in length");
  }
  EstimatorTrainingSet set;
  set.sigma_candidates = sigma_candidates;
  set.radius_cap = radius_cap;
  for (std::size_t i = 0; i < n; ++i) {
    if (best[i] < 0) continue;  // all radii 0: dropped (docs/method.md §5)
    set.idx.push_back(idx[i]);
    set.best.push_back(best[i]);
    set.weight_e.push_back(rebalance ? weight_e[i] : 1.0);
    set.radii.insert(set.radii.end(), radii.begin() + static_cast<std::ptrdiff_t>(i * s),
                     radii.begin() + static_cast<std::ptrdiff_t>((i + 1) * s));
  }
  return set;
}

namespace {

// Hits of the estimator's σ choice on one noisy copy per image (noise
// NoiseSource(seed, kEstimatorValidation) at counter (idx, 0, 0), the same every epoch), over
// this rank's slice of `rows`.
std::int64_t selection_hits(model::BaseModel& estimator, const data::ImageDataset& dataset, const EstimatorTrainingSet& set,
                            const std::vector<std::int64_t>& rows, RankSlice mine, double sigma_e, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  estimator.set_training(false);
  const NoiseSource noise(seed, NoiseStage::kEstimatorValidation);
  std::int64_t hits = 0;
  const auto end_all = static_cast<std::size_t>(mine.begin + mine.count);
  for (auto begin = static_cast<std::size_t>(mine.begin); begin < end_all; begin += 256) {
    const std::size_t end = std::min(end_all, begin + 256);
    std::vector<std::int64_t> idx;
    std::vector<std::int64_t> best;
    for (std::size_t r = begin; r < end; ++r) {
      idx.push_back(set.idx[static_cast<std::size_t>(rows[r])]);
      best.push_back(set.best[static_cast<std::size_t>(rows[r])]);
    }
    const at::Tensor x = noisy_copies(dataset, idx, std::vector<float>(idx.size(), static_cast<float>(sigma_e)), 1, noise, 0);
    const at::Tensor pred = estimator.logits(x).argmax(1).to(torch::kCPU);
    hits += pred.eq(torch::tensor(best, torch::kInt64)).sum().item<std::int64_t>();
  }
  return hits;
}
}  // namespace

std::vector<EstimatorEpochStats> train_estimator(model::BaseModel& estimator, const data::ImageDataset& dataset,
                                                 const EstimatorTrainingSet& set, const EstimatorTrainConfig& config,
                                                 std::int64_t first_epoch, const std::string& optimizer_state,
                                                 const TrainContext& context, const EstimatorEpochCallback& on_epoch,
                                                 Verbosity verbosity) {
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
  DataParallel dp(*module, context);
  dp.broadcast_parameters_and_buffers();  // after the caller loaded a checkpoint to resume from
  if (!dp.is_root()) verbosity = Verbosity::kQuiet;

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
  // Every rank loads the same optimizer state, so the ranks' optimizers stay identical.
  if (!optimizer_state.empty() && first_epoch > 1 && std::filesystem::exists(optimizer_state)) {
    load_optimizer_state(optimizer, optimizer_state);
  }
  EstimatorLossConfig loss_config;
  loss_config.lambda = config.lambda;
  loss_config.eta = config.eta;
  loss_config.radius_weight = config.radius_weight;
  loss_config.radius_scale_c = set.radius_cap;
  loss_config.hard_labels = config.loss == EstimatorTarget::kCe;
  const NoiseSource noise(config.seed, NoiseStage::kTrainEstimator);

  std::vector<EstimatorEpochStats> history;
  const auto n_train = static_cast<std::int64_t>(train_rows.size());
  const auto n_val = static_cast<std::int64_t>(val_rows.size());
  const int loader_threads = loader_threads_of(config.loader_threads);
  for (std::int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    // The learning rate and the random streams depend only on the epoch, so a resumed run
    // repeats an uninterrupted one.
    const double lr = stepped_learning_rate(config.lr, config.lr_gamma, config.lr_step_epochs, epoch);
    set_adamw_learning_rate(optimizer, lr);
    const at::Tensor order = epoch_permutation(n_train, config.seed, epoch);
    const std::int64_t* position = order.data_ptr<std::int64_t>();
    estimator.set_training(true);
    double sums[5] = {0, 0, 0, 0, 0};  // loss · examples, ce, consistency, train hits, validation hits
    ProgressMeter progress("train-estimator epoch " + std::to_string(epoch) + "/" + std::to_string(config.epochs),
                           n_train, "ex", verbosity);
    // This rank's slice of every step with its m noisy copies per image, built ahead on the
    // loader threads (the copies are counter-based: a function of the step alone).
    struct Batch {
      std::vector<std::int64_t> rows;
      at::Tensor copies;
    };
    const std::int64_t steps = (n_train + config.batch_size - 1) / config.batch_size;
    BatchPrefetcher<Batch> batches(steps, loader_threads, [&](std::int64_t step) {
      const std::int64_t begin = step * config.batch_size;
      const RankSlice mine = dp.slice(std::min(config.batch_size, n_train - begin));
      Batch batch;
      if (mine.count == 0) return batch;
      std::vector<std::int64_t> idx;
      for (std::int64_t j = 0; j < mine.count; ++j) {
        batch.rows.push_back(train_rows[static_cast<std::size_t>(position[begin + mine.begin + j])]);
        idx.push_back(set.idx[static_cast<std::size_t>(batch.rows.back())]);
      }
      // m noisy copies per image at σ_e: [B*m, C, H, W], copy-major within each image.
      batch.copies = noisy_copies(dataset, idx, std::vector<float>(idx.size(), static_cast<float>(config.sigma_e)),
                                  config.m, noise, (epoch - 1) * config.m);
      return batch;
    });
    for (std::int64_t begin = 0; begin < n_train; begin += config.batch_size) {
      const std::int64_t b = std::min(config.batch_size, n_train - begin);
      const RankSlice mine = dp.slice(b);
      optimizer.zero_grad();
      dp.broadcast_buffers();
      std::exception_ptr error;
      try {
        const Batch batch = batches.next();  // every step takes its batch, so a failed one is this step's
        if (mine.count > 0) {
          const at::Tensor row_t = torch::tensor(batch.rows, torch::kInt64);
          const at::Tensor& copies = batch.copies;
          const at::Tensor logits = estimator.logits(copies).view({mine.count, config.m, s});
          const EstimatorLossTerms terms =
              estimator_loss(logits, radii_all.index_select(0, row_t).to(logits.device()),
                             weights_all.index_select(0, row_t).to(logits.device()), loss_config);
          terms.total.backward();
          sums[0] += terms.total.item<double>() * static_cast<double>(mine.count);
          sums[1] += terms.ce.sum().item<double>();
          sums[2] += terms.consistency.sum().item<double>();
          sums[3] += static_cast<double>(
              logits.select(1, 0).argmax(1).to(torch::kCPU).eq(best_all.index_select(0, row_t)).sum().item<std::int64_t>());
        }
      } catch (...) {
        error = std::current_exception();
      }
      dp.reduce_gradients(mine.count, b, error);
      optimizer.step();
      progress.update(begin + b);
    }
    progress.finish();
    dp.agreed([&] {
      sums[4] = static_cast<double>(
          selection_hits(estimator, dataset, set, val_rows, dp.slice(n_val), config.sigma_e, config.seed));
    });
    dp.sum(sums, 5);
    const auto examples = static_cast<double>(std::max<std::int64_t>(1, n_train));
    EstimatorEpochStats stats;
    stats.epoch = epoch;
    stats.loss = sums[0] / examples;
    stats.ce = sums[1] / examples;
    stats.consistency = sums[2] / examples;
    stats.train_selection_accuracy = sums[3] / examples;
    stats.val_selection_accuracy = n_val > 0 ? sums[4] / static_cast<double>(n_val) : NAN;
    stats.lr = lr;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    estimator.set_training(false);
    history.push_back(stats);
    dp.agreed([&] {
      if (dp.is_root() && !optimizer_state.empty()) save_optimizer_state(optimizer, optimizer_state);
      if (on_epoch) on_epoch(stats);
    });
  }
  return history;
}

}  // namespace dualrs::train
