#include "dualrs/pipeline/registry.h"

namespace dualrs::pipeline {

// Each stage's factory, defined in its file under stages/. Adding a stage: its file, one
// declaration here and one line in the list below.
std::unique_ptr<Stage> make_train_denoiser_stage();
std::unique_ptr<Stage> make_train_base_stage();
std::unique_ptr<Stage> make_label_stage();
std::unique_ptr<Stage> make_train_estimator_stage();
std::unique_ptr<Stage> make_estimate_sigma_stage();
std::unique_ptr<Stage> make_finetune_stage();
std::unique_ptr<Stage> make_certify_stage();
std::unique_ptr<Stage> make_predict_stage();
std::unique_ptr<Stage> make_table_stage();
std::unique_ptr<Stage> make_analyze_stage();
std::unique_ptr<Stage> make_plot_stage();

const std::vector<std::unique_ptr<Stage>>& stages() {
  static const std::vector<std::unique_ptr<Stage>> list = [] {
    std::vector<std::unique_ptr<Stage>> v;
    v.push_back(make_train_denoiser_stage());
    v.push_back(make_train_base_stage());
    v.push_back(make_label_stage());
    v.push_back(make_train_estimator_stage());
    v.push_back(make_estimate_sigma_stage());
    v.push_back(make_finetune_stage());
    v.push_back(make_certify_stage());
    v.push_back(make_predict_stage());
    v.push_back(make_table_stage());
    v.push_back(make_analyze_stage());
    v.push_back(make_plot_stage());
    return v;
  }();
  return list;
}

const Stage* find_stage(const std::string& name) {
  for (const auto& stage : stages()) {
    if (stage->name() == name) return stage.get();
  }
  return nullptr;
}

const Stage& stage_for(const std::string& command, const std::string& source, const std::string& pointer) {
  const Stage* stage = find_stage(command);
  if (stage == nullptr) {
    std::string known;
    for (const auto& s : stages()) known += (known.empty() ? "" : ", ") + s->name();
    throw ConfigError(source, pointer, "unknown command '" + command + "' (stages: " + known + ")");
  }
  return *stage;
}

std::string gpu_mode(const StageTraits& traits) {
  if (!traits.slurm_gpus.empty()) return traits.slurm_gpus;
  if (traits.sharded) return "per-task";
  if (traits.training) return "per-node";
  return "none";
}

nlohmann::json stages_json() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& stage : stages()) {
    const StageTraits t = stage->traits();
    const char* config = t.config == ConfigUse::kRequired ? "required" : t.config == ConfigUse::kOptional ? "optional" : "none";
    out.push_back({{"name", stage->name()},
                   {"summary", stage->summary()},
                   {"sections", stage->sections()},
                   {"outputs", stage->outputs()},
                   {"sharded", t.sharded},
                   {"training", t.training},
                   {"root_only", t.root_only},
                   {"config", config},
                   {"takes_inputs", t.takes_inputs},
                   {"slurm_template", t.slurm_template},
                   {"gpus", gpu_mode(t)}});
  }
  return out;
}

}  // namespace dualrs::pipeline
