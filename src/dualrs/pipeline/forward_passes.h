#pragma once
// The cost of a job's stages for `dualrs run --dry-run` (each stage's plan()): model forward passes per stage, from
// the resolved configs. Example counts come from the selections and, where a selection runs
// to the end of a split, from counting the split without reading pixels; when the data is
// absent the count is "unknown" with the reason, never an error.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dualrs/core/config.h"

namespace dualrs::pipeline {

/// Forward passes of one model in one stage: examples × per_example image forwards (one
/// noisy copy through the model = one forward).
struct ForwardPasses {
  std::string model;                    ///< "classifier", "experts", "estimator" or "denoiser"
  bool training = false;                ///< forward + backward (training) or inference
  bool at_most = false;                 ///< an upper bound (abstentions, dropped rows, early stops)
  std::int64_t per_example = 0;         ///< image forwards per example
  std::string per_example_formula;      ///< how per_example follows from the config, e.g. "(n0 100 + n 10,000)"
  std::optional<std::int64_t> examples; ///< examples the stage visits; empty when the data is absent
  std::string examples_note;            ///< which examples, or why their number is unknown
  std::string note;                     ///< extra remark (when the bound is reached, ...)
  /// examples × per_example, when examples is known (saturating at the int64 maximum).
  std::optional<std::int64_t> total() const;
};

/// The forward passes of each stage with `config` (a stage's resolved config); the stages'
/// plan() return these. With a /denoiser section, each classifier or estimator forward of a
/// noisy copy also runs one denoiser forward (inference), listed separately.
std::vector<ForwardPasses> certify_passes(const ExperimentConfig& config);
std::vector<ForwardPasses> predict_passes(const ExperimentConfig& config);
std::vector<ForwardPasses> label_passes(const ExperimentConfig& config);
std::vector<ForwardPasses> train_estimator_passes(const ExperimentConfig& config);
std::vector<ForwardPasses> estimate_sigma_passes(const ExperimentConfig& config);
std::vector<ForwardPasses> finetune_passes(const ExperimentConfig& config);
/// Training with σ = 0 (clean images) runs no denoiser.
std::vector<ForwardPasses> train_base_passes(const ExperimentConfig& config);

/// `passes` plus one denoiser entry per entry when `config` has a /denoiser section.
std::vector<ForwardPasses> with_denoiser(std::vector<ForwardPasses> passes, const ExperimentConfig& config);

/// The most model forward passes one stage may plan unless the user insists (--allow-huge):
/// a slip such as n = 10^12 is refused before it runs for years.
struct PlanLimits {
  std::int64_t max_forward_passes = 1'000'000'000'000;  ///< --max-forwards, per stage
  bool allow_huge = false;                              ///< --allow-huge
};

/// A stage's planned forward passes against the limits.
struct PlanCheck {
  std::int64_t total = 0;  ///< forward passes of every model whose example count is known (saturating)
  bool exceeds = false;    ///< total > limits.max_forward_passes
};
PlanCheck check_plan(const std::vector<ForwardPasses>& passes, const PlanLimits& limits);

/// One line of the plan, e.g. "classifier: 10,000 examples × (n0 100 + n 10,000) = 101,000,000 forwards".
std::string describe(const ForwardPasses& passes);

/// 1234567 -> "1,234,567".
std::string group_thousands(std::int64_t value);

}  // namespace dualrs::pipeline
