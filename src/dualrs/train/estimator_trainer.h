#pragma once
/// \file
/// Training of the Dual RS variance estimator (DualRS §5.2, docs/method.md §6): m noisy copies of
/// each image at σ_e, soft labels softmax(R_c(x, ·)), soft cross-entropy plus a weighted
/// consistency term, class-rebalancing weights w_e.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
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

/// Hyper-parameters: the config's /train_estimator, parsed and checked in core
/// (ExperimentConfig::train_estimator, train_estimator_preset, validate).
using EstimatorTrainConfig = TrainEstimatorConfig;

/// The training set of the estimator from a labels table of N rows over S = |Σ| levels
/// [docs/method.md §5, §6]: the rows with best >= 0, in order; rows whose radii are all 0
/// (best = -1) are dropped. w_e is the table's weight when `rebalance`, else 1.
/// \param radii [N, S] row-major. \param radius_cap C (label_radius_cap).
/// \throws std::invalid_argument when the columns disagree in length.
EstimatorTrainingSet estimator_training_set(const std::vector<double>& sigma_candidates, const std::vector<std::int64_t>& idx,
                                            const std::vector<double>& radii, const std::vector<std::int64_t>& best,
                                            const std::vector<double>& weight_e, bool rebalance, double radius_cap);

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

}  // namespace dualrs::train
