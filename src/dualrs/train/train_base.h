#pragma once
/// \file
/// Training of a base classifier under Gaussian noise augmentation [Cohen et al. 2019 §4]:
/// each example gets x + δ, δ ~ N(0, σ²I), with σ fixed or drawn uniformly per example from Σ.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "dualrs/data/dataset.h"
#include "dualrs/model/base_model.h"

namespace dualrs::train {

/// Numbers of one finished epoch.
struct EpochStats {
  std::int64_t epoch = 0;       ///< 1-based
  double loss = 0.0;            ///< mean cross-entropy over the epoch's examples
  double accuracy = 0.0;        ///< fraction of noisy training copies classified correctly
  double lr = 0.0;
  double seconds = 0.0;
};

/// Called after every epoch (write the log line and the checkpoint there).
using EpochCallback = std::function<void(const EpochStats&)>;

/// Trains `model` (native; AdamW) on `indices` of `dataset` for config.epochs epochs, a
/// seeded shuffle per epoch, and returns the per-epoch stats. Training noise uses torch's
/// seeded generator (not the certification RNG). σ = 0 trains on clean images. The model
/// receives its batch through logits_under_noise(x + δ, σ per row), so a DenoisedClassifier
/// trains its classifier on denoised inputs [DDS; METHOD.md §3].
/// \throws ConfigError on invalid settings (σ <= 0, epochs or batch size < 1, lr <= 0),
/// ModelError when the model has no trainable module.
std::vector<EpochStats> train_base(model::BaseModel& model, const data::ImageDataset& dataset,
                                   const std::vector<std::int64_t>& indices, const TrainBaseConfig& config,
                                   const EpochCallback& on_epoch = {}, Verbosity verbosity = Verbosity::kNormal);

/// Classifier fine-tuning under the estimator's choice (DualRS §5.2.2): as train_base, but
/// example indices[j] always gets noise level sigma_per_example[j] (σ_c(x) from
/// estimate-sigma). The config's own sigma / sigma_candidates are ignored.
/// 	hrows ConfigError on bad settings or a size mismatch, ModelError, DataError.
std::vector<EpochStats> finetune_classifier(model::BaseModel& model, const data::ImageDataset& dataset,
                                            const std::vector<std::int64_t>& indices,
                                            const std::vector<double>& sigma_per_example, const TrainBaseConfig& config,
                                            const EpochCallback& on_epoch = {},
                                            Verbosity verbosity = Verbosity::kNormal);

/// Checks a TrainBaseConfig. \throws ConfigError listing every problem under `/train_base`.
void validate(const TrainBaseConfig& config);

}  // namespace dualrs::train
