#pragma once
/// \file
/// The one list of pipeline stages (docs/architecture.md §4).

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/pipeline/stage.h"

namespace dualrs::pipeline {

/// Every stage, in the order `dualrs --help` lists them (the data flow of an experiment).
const std::vector<std::unique_ptr<Stage>>& stages();

/// The stage named `name` ("certify", ...), or nullptr.
const Stage* find_stage(const std::string& name);

/// The stage a job's `command` names. \throws ConfigError at `pointer` for an unknown one.
const Stage& stage_for(const std::string& command, const std::string& source, const std::string& pointer);

/// What `dualrs stages --json` prints: per stage its name, summary, sections, outputs, traits
/// (sharded, training, root_only, config, takes_inputs), slurm template and GPU mode
/// ("per-task" for sharded stages, "per-node" for training, "none").
nlohmann::json stages_json();

/// The GPU mode slurm/submit gives a stage's ranks: "per-task", "per-node" or "none"
/// (StageTraits::slurm_gpus, else sharded: per-task, training: per-node, else none).
std::string gpu_mode(const StageTraits& traits);

}  // namespace dualrs::pipeline
