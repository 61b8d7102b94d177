#include "dualrs/pipeline/estimator_config.h"

#include "dualrs/core/error.h"
#include "dualrs/pipeline/model_assembly.h"

namespace dualrs::pipeline {
using nlohmann::json;

train::EstimatorTrainConfig estimator_defaults() { return train::estimator_preset(""); }

EstimatorTraining estimator_training(const ExperimentConfig& config, const DualConfig& dual) {
  const json j = config.doc().value("train_estimator", json::object());
  EstimatorTraining out;
  train::EstimatorTrainConfig& c = out.train;
  with_source(config, [&] { c = train::estimator_preset(j.value("preset", std::string())); });
  c.sigma_e = dual.sigma_e;
  c.epochs = j.value("epochs", c.epochs);
  c.batch_size = j.value("batch_size", c.batch_size);
  c.m = j.value("m", c.m);
  c.lr = j.value("lr", c.lr);
  c.weight_decay = j.value("weight_decay", c.weight_decay);
  c.lr_step_epochs = j.value("lr_step_epochs", c.lr_step_epochs);
  c.lr_gamma = j.value("lr_gamma", c.lr_gamma);
  c.lambda = j.value("lambda", c.lambda);
  c.eta = j.value("eta", c.eta);
  c.radius_weight = j.value("radius_weight", c.radius_weight);
  c.rebalance = j.value("rebalance", c.rebalance);
  c.validation_fraction = j.value("validation_fraction", c.validation_fraction);
  c.seed = j.value("seed", c.seed);
  out.labels = j.value("labels", std::string());
  out.init_checkpoint = j.value("init_checkpoint", std::string());
  if (out.labels.empty()) throw ConfigError(config.source(), "/train_estimator/labels", "missing: the labels file from 'dualrs label'");
  with_source(config, [&] { train::validate(c); });
  return out;
}

json estimator_train_json(const train::EstimatorTrainConfig& c, const std::string& init_checkpoint) {
  json j = {{"preset", c.preset}, {"sigma_e", c.sigma_e}, {"epochs", c.epochs}, {"batch_size", c.batch_size},
            {"m", c.m}, {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"lr_step_epochs", c.lr_step_epochs},
            {"lr_gamma", c.lr_gamma}, {"lambda", c.lambda}, {"eta", c.eta}, {"radius_weight", c.radius_weight},
            {"rebalance", c.rebalance}, {"validation_fraction", c.validation_fraction}, {"seed", c.seed}};
  if (!init_checkpoint.empty()) j["init_checkpoint"] = init_checkpoint;  // absent: hashes of older runs stay valid
  return j;
}

}  // namespace dualrs::pipeline
