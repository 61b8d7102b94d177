#pragma once
/// \file
/// Training of the Dual RS variance estimator (DualRS §5.2, docs/method.md §6): m noisy copies of
/// each image at σ_e, soft labels softmax(R_c(x, ·)), soft cross-entropy plus a weighted
/// consistency term, class-rebalancing weights w_e.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/progress.h"
#include "dualrs/data/dataset.h"
#include "dualrs/model/base_model.h"
#include "dualrs/train/data_parallel.h"
#include "dualrs/train/estimator_loss.h"

namespace dualrs::train {

/// The estimator's training data, from a labels file: kept rows only.
struct EstimatorTrainingSet {
  std::vector<double> sigma_candidates;  ///< Σ (S values)
  std::vector<std::int64_t> idx;         ///< [N] dataset indices
  std::vector<double> radii;             ///< [N, S] R_c(x, σ_i)
  std::vector<std::int64_t> best;        ///< [N] best σ index (for the selection accuracy)
  std::vector<double> weight_e;          ///< [N] w_e(x) (1 when rebalancing is off)
  double radius_cap = 1.0;               ///< C: the largest attainable label radius
};

/// Hyper-parameters (every one in the config; see presets()).
struct EstimatorTrainConfig {
  std::string preset;             ///< "", "cifar10" or "imagenet": defaults from the paper
  double sigma_e = 1.0;           ///< noise level of the estimator's inputs
  std::int64_t epochs = 10;
  std::int64_t batch_size = 128;  ///< clean images per optimizer step
  std::int64_t m = 2;             ///< noisy copies per image
  double lr = 0.01;               ///< AdamW
  double weight_decay = 0.01;
  std::int64_t lr_step_epochs = 30;
  double lr_gamma = 0.5;
  double lambda = 40.0;           ///< consistency weight λ
  double eta = 0.5;               ///< entropy weight η
  std::string radius_weight = "strong";  ///< strong | weak | none (w_r)
  bool rebalance = true;          ///< use w_e = 1/q_best (false: w_e = 1, e.g. strong experts)
  double validation_fraction = 0.1;  ///< held-out slice for the σ-selection accuracy
  std::uint64_t seed = 0;
};

/// The paper's recipes: "cifar10" (ResNet-110, 90 epochs, batch 128 x m = 2, AdamW lr 0.01
/// wd 0.01, lr x0.5 every 30 epochs, λ = 40, η = 0.5, strong w_r) and "imagenet" (ResNet-50,
/// 9 epochs, batch 200, lr 0.005, x0.5 every 3 epochs, λ = 10, η = 0.5, weak w_r).
/// \throws ConfigError on an unknown preset name.
EstimatorTrainConfig estimator_preset(const std::string& name);

/// One epoch's numbers.
struct EstimatorEpochStats {
  std::int64_t epoch = 0;
  double loss = 0.0, ce = 0.0, consistency = 0.0;
  double train_selection_accuracy = 0.0;  ///< argmax of a noisy copy == best σ index
  double val_selection_accuracy = 0.0;    ///< same on the validation slice (NaN when empty)
  double lr = 0.0;
  double seconds = 0.0;
};

/// Called after each epoch on every rank with the same stats (over all ranks' examples); rank
/// 0 writes logs and checkpoints there. The ranks agree on its outcome.
using EstimatorEpochCallback = std::function<void(const EstimatorEpochStats&)>;

/// Trains `estimator` (native, |Σ| outputs) for epochs [first_epoch, config.epochs],
/// data-parallel over the ranks of `context` (dualrs/train/data_parallel.h): every rank starts
/// from rank 0's weights (load a checkpoint to resume from on every rank before calling), and
/// each global batch of config.batch_size images is split over the ranks. The training rows
/// of epoch e are visited in epoch_permutation(N_train, seed, e) order; copy k of image i gets
/// the noise NoiseSource(seed, kTrainEstimator) at counter (i, 0, (e - 1)·m + k), and the
/// validation copy NoiseSource(seed, kEstimatorValidation) at (i, 0, 0): functions of
/// (seed, e, i) only, so K-rank training equals 1-rank training up to float summation order.
/// `optimizer_state` (may be empty) is the path of a saved optimizer: every rank loads it
/// when resuming (first_epoch > 1 and the file exists), and rank 0 writes it after each epoch.
/// \throws ConfigError (bad hyper-parameters), ModelError (output size != |Σ|), DataError;
/// dist::AgreedFailure on every rank when a step or an epoch's callback failed on some rank.
std::vector<EstimatorEpochStats> train_estimator(model::BaseModel& estimator, const data::ImageDataset& dataset,
                                                 const EstimatorTrainingSet& set, const EstimatorTrainConfig& config,
                                                 std::int64_t first_epoch, const std::string& optimizer_state,
                                                 const TrainContext& context, const EstimatorEpochCallback& on_epoch,
                                                 Verbosity verbosity);

/// Checks the hyper-parameters. \throws ConfigError listing every problem under /train_estimator.
void validate(const EstimatorTrainConfig& config);

}  // namespace dualrs::train
