#pragma once
/// \file
/// The estimator's training settings from a config's /train_estimator: the preset's recipe
/// first, then the keys the section gives (DualRS §5.2; docs/method.md §6).

#include <string>

#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/train/estimator_trainer.h"

namespace dualrs::pipeline {

/// /train_estimator resolved: the hyper-parameters, the labels file and the optional
/// classifier checkpoint whose feature layers start the estimator.
struct EstimatorTraining {
  train::EstimatorTrainConfig train;
  std::string labels;           ///< labels.h5 from `dualrs label` (required)
  std::string init_checkpoint;  ///< "" for fresh weights
};

/// Parses /train_estimator of `config` with σ_e from `dual`.
/// \throws ConfigError (unknown preset, missing labels, values out of range) naming the key.
EstimatorTraining estimator_training(const ExperimentConfig& config, const DualConfig& dual);

/// The recipe used when /train_estimator names no preset.
train::EstimatorTrainConfig estimator_defaults();

/// Resolved values, as recorded in provenance (init_checkpoint only when set, so config
/// hashes of runs without it stay as they were).
nlohmann::json estimator_train_json(const train::EstimatorTrainConfig& c, const std::string& init_checkpoint);

}  // namespace dualrs::pipeline
