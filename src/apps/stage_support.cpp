#include "stage_support.h"

#include <torch/torch.h>

#include "dualrs/core/error.h"

namespace dualrs::app {

io::Provenance stage_provenance(const std::string& schema, const std::string& command, nlohmann::json resolved,
                                std::uint64_t seed, int rng_layout_version) {
  io::Provenance p = io::make_provenance(schema, command, resolved, seed, rng_layout_version);
  p.library_versions += "; torch " + std::string(TORCH_VERSION);
  return p;
}

DataSelection load_selection(const ExperimentConfig& config, const SelectionConfig& selection, const std::string& pointer) {
  DataSelection in;
  const DatasetConfig dataset_config = config.dataset();
  with_source(config, [&] { in.dataset = data::load_dataset(dataset_config); });
  in.indices = data::select_indices(dataset_config, in.dataset.size(), selection, config.source(), pointer,
                                    in.dataset.builtin_splits());
  return in;
}

smooth::ExampleFn example_fn(const DataSelection& in) {
  return [&in](std::int64_t position) {
    const std::int64_t idx = in.indices[static_cast<std::size_t>(position)];
    return smooth::Example{idx, in.dataset.label(idx), in.dataset.image(idx)};
  };
}

std::unique_ptr<model::BaseModel> load_classifier(const ExperimentConfig& config, std::int64_t num_classes) {
  auto model = model::load_model(config.model());
  if (model->num_classes() != num_classes) {
    throw ConfigError(config.source(), "/model/num_classes",
                      std::to_string(model->num_classes()) + " classes but the dataset has " + std::to_string(num_classes));
  }
  return model;
}

ClassifierSet load_classifiers(const ExperimentConfig& config, const DualConfig& dual, std::int64_t num_classes) {
  ClassifierSet set;
  if (dual.routing()) {
    for (const auto& expert : dual.experts) {
      set.owned.push_back(model::load_model(to_model_config(expert, num_classes)));
      set.pool.push_back(set.owned.back().get());
    }
  } else {
    set.owned.push_back(load_classifier(config, num_classes));
    set.pool.assign(dual.sigma_candidates.size(), set.owned.back().get());
  }
  return set;
}

std::unique_ptr<model::BaseModel> load_estimator(const ExperimentConfig& config, const DualConfig& dual) {
  if (dual.estimator.empty()) {
    throw ConfigError(config.source(), "/dual/estimator", "missing: the variance estimator ('arch' + 'checkpoint' or 'torchscript')");
  }
  const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
  if (!dual.estimator.torchscript.empty()) return model::load_model(to_model_config(dual.estimator, s));
  auto estimator = model::make_native_model(dual.estimator.arch, s);
  if (dual.estimator.checkpoint.empty()) {
    throw ConfigError(config.source(), "/dual/estimator/checkpoint", "missing: the trained estimator's checkpoint");
  }
  try {
    model::load_checkpoint(*estimator, dual.estimator.checkpoint);
  } catch (const ModelError& e) {
    DUALRS_THROW(ModelError, "estimator checkpoint ", dual.estimator.checkpoint, " does not load as a ", dual.estimator.arch,
                 " with |sigma_candidates| = ", s, " outputs: ", e.what());
  }
  return estimator;
}

}  // namespace dualrs::app
