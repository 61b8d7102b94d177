#pragma once
/// \file
/// Training of a base classifier under Gaussian noise augmentation [Cohen et al. 2019 §4]:
/// each example gets x + δ, δ ~ N(0, σ²I), with σ fixed or drawn uniformly per example from Σ.
/// Data-parallel over the ranks of `context` (dualrs/train/data_parallel.h): with K ranks each
/// trains on a slice of every global batch of config.batch_size examples.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "dualrs/data/dataset.h"
#include "dualrs/model/base_model.h"
#include "dualrs/train/data_parallel.h"

namespace dualrs::train {

/// Numbers of one finished epoch.
struct EpochStats {
  std::int64_t epoch = 0;       ///< 1-based
  double loss = 0.0;            ///< mean cross-entropy over the epoch's examples
  double accuracy = 0.0;        ///< fraction of noisy training copies classified correctly
  double lr = 0.0;
  double seconds = 0.0;
};

/// Called after every epoch on every rank with the same stats (loss and accuracy are over all
/// ranks' examples); rank 0 writes the log line and the checkpoint there. The ranks agree on
/// its outcome, so a failure on one rank (e.g. a full disk on rank 0) ends every rank.
using EpochCallback = std::function<void(const EpochStats&)>;

/// Trains `model` (native; AdamW) on `indices` of `dataset` for epochs [first_epoch,
/// config.epochs] and returns their stats. The examples of epoch e are visited in
/// epoch_permutation(N, seed, e) order in global batches of config.batch_size. Example i
/// gets in epoch e the noise level sigma or sigma_candidates[u] with u uniform from
/// NoiseSource(seed, kTrainSigmaChoice).uniform_index(i, 0, e - 1, |Σ|), and the noise
/// NoiseSource(seed, kTrainBase) at counter (i, 0, e - 1): a function of (seed, e, i) only,
/// so training on K ranks equals training on one up to float summation order. σ = 0 trains
/// on clean images. The model receives its batch through logits_under_noise(x + δ, σ per
/// row), so a DenoisedClassifier trains its classifier on denoised inputs [DDS; docs/method.md §9].
/// The learning rate of epoch e is lr·gamma^⌊(e − 1)/lr_step_epochs⌋, multiplied out epoch by
/// epoch as an uninterrupted run does. Resuming: load the checkpoint of epoch first_epoch − 1
/// into `model` on every rank before calling (every rank then starts from rank 0's weights);
/// `optimizer_state` (may be empty) is the path of the saved AdamW state, which every rank
/// loads when first_epoch > 1 and the file exists, and rank 0 writes after each epoch, before
/// `on_epoch`. A resumed run repeats an uninterrupted one bit for bit.
/// \throws ConfigError on invalid settings (σ <= 0, epochs or batch size < 1, lr <= 0),
/// ModelError when the model has no trainable module or the optimizer state does not load,
/// DataError when `indices` is empty, dualrs::Error when first_epoch < 1.
std::vector<EpochStats> train_base(model::BaseModel& model, const data::ImageDataset& dataset,
                                   const std::vector<std::int64_t>& indices, const TrainBaseConfig& config,
                                   std::int64_t first_epoch, const std::string& optimizer_state,
                                   const TrainContext& context, const EpochCallback& on_epoch = {},
                                   Verbosity verbosity = Verbosity::kNormal);

/// Classifier fine-tuning under the estimator's choice (DualRS §5.2.2): as train_base, but
/// example indices[j] always gets noise level sigma_per_example[j] (σ_c(x) from
/// estimate-sigma), with noise from NoiseSource(seed, kFinetune). The config's own sigma /
/// sigma_candidates are ignored. Resumes from first_epoch with `optimizer_state` as train_base.
/// \throws ConfigError on bad settings or a size mismatch, ModelError, DataError.
std::vector<EpochStats> finetune_classifier(model::BaseModel& model, const data::ImageDataset& dataset,
                                            const std::vector<std::int64_t>& indices,
                                            const std::vector<double>& sigma_per_example, const TrainBaseConfig& config,
                                            std::int64_t first_epoch, const std::string& optimizer_state,
                                            const TrainContext& context, const EpochCallback& on_epoch = {},
                                            Verbosity verbosity = Verbosity::kNormal);

/// Checks a TrainBaseConfig. \throws ConfigError listing every problem under `/train_base`.
void validate(const TrainBaseConfig& config);

}  // namespace dualrs::train
