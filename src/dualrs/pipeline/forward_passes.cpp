#include "dualrs/pipeline/forward_passes.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/smooth/sample_plan.h"

namespace dualrs::pipeline {
using nlohmann::json;

std::optional<std::int64_t> ForwardPasses::total() const {
  if (!examples) return std::nullopt;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (*examples > 0 && per_example > kMax / *examples) return kMax;  // saturates: a plan that large is refused anyway
  return *examples * per_example;
}

PlanCheck check_plan(const std::vector<ForwardPasses>& passes, const PlanLimits& limits) {
  PlanCheck out;
  for (const ForwardPasses& p : passes) {
    const std::optional<std::int64_t> total = p.total();
    if (!total) continue;
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    out.total = out.total > kMax - *total ? kMax : out.total + *total;
  }
  out.exceeds = out.total > limits.max_forward_passes;
  return out;
}

std::string group_thousands(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int pos = static_cast<int>(digits.size()) - 3; pos > 0; pos -= 3) digits.insert(static_cast<std::size_t>(pos), ",");
  return (value < 0 ? "-" : "") + digits;
}

namespace {

// Examples a selection picks: from begin/end/skip when end is given, else from the split's
// size counted without reading pixels.
struct ExampleCount {
  std::optional<std::int64_t> count;
  std::string note;
};

ExampleCount count_selection(const ExperimentConfig& config, const SelectionConfig& s) {
  const std::string what = "split '" + s.split + "'";
  std::int64_t end = s.end;
  if (end < 0) {
    try {
      end = data::count_split(config.dataset(), s.split);
    } catch (const DataError& e) {
      return {std::nullopt, what + ": examples unknown (data absent: " + e.what() + ")"};
    } catch (const Error& e) {
      return {std::nullopt, what + ": examples unknown (" + e.what() + ")"};
    }
  }
  const std::int64_t skip = std::max<std::int64_t>(1, s.skip);
  const std::int64_t count = end > s.begin ? (end - s.begin + skip - 1) / skip : 0;
  std::string note = what + " [" + std::to_string(s.begin) + ", " + (s.end < 0 ? "end = " + group_thousands(end) : std::to_string(end)) + ")";
  if (skip > 1) note += " skip " + std::to_string(skip);
  return {count, note};
}

ForwardPasses passes(std::string model, const ExampleCount& examples, std::int64_t per_example, std::string formula,
                     bool training = false, bool at_most = false, std::string note = "") {
  ForwardPasses p;
  p.model = std::move(model);
  p.examples = examples.count;
  p.examples_note = examples.note;
  p.per_example = per_example;
  p.per_example_formula = std::move(formula);
  p.training = training;
  p.at_most = at_most;
  p.note = std::move(note);
  return p;
}

std::string n_of(const char* name, std::int64_t value) { return std::string(name) + " " + group_thousands(value); }

}  // namespace

std::vector<ForwardPasses> with_denoiser(std::vector<ForwardPasses> out, const ExperimentConfig& config) {
  if (!config.has("denoiser") || out.empty()) return out;
  std::vector<ForwardPasses> denoiser;
  for (const auto& p : out) {
    ForwardPasses d = p;
    d.model = "denoiser";
    d.training = false;
    d.note = "one denoising step per " + p.model + " input";
    denoiser.push_back(d);
  }
  out.insert(out.end(), denoiser.begin(), denoiser.end());
  return out;
}

namespace {

// What --dry-run says of a step that may not run.
std::string condition_note(smooth::StepCondition condition) {
  switch (condition) {
    case smooth::StepCondition::kAlways:
      return "";
    case smooth::StepCondition::kUnlessEstimatorAbstains:
      return "not run when the estimator abstains";
    case smooth::StepCondition::kUntilCertifiedOrUndecided:
      return "stops at the first sigma that certifies or is undecided";
    case smooth::StepCondition::kUntilPrediction:
      return "stops at the first sigma that does not abstain";
  }
  return "";
}

// "n 1,000" for one draw, "(n0 100 + n 1,000)" for CERTIFY's two.
std::string step_formula(const smooth::SampleStep& step) {
  std::string terms;
  for (const smooth::SampleDraw& d : step.draws) {
    terms += (terms.empty() ? "" : " + ") + n_of(d.count_key.c_str(), d.count);
  }
  return step.draws.size() > 1 ? "(" + terms + ")" : terms;
}

// One entry per model of `plan` (in the order the method first uses them), per example: the
// copies of all its steps, an upper bound when some step may not run. `classifier` names the
// classifier role ("classifier", or "experts" with routing).
std::vector<ForwardPasses> plan_passes(const smooth::SamplePlan& plan, const ExampleCount& examples,
                                       const std::string& classifier) {
  std::vector<smooth::ModelRole> roles;
  for (const smooth::SampleStep& step : plan.steps) {
    if (std::find(roles.begin(), roles.end(), step.model) == roles.end()) roles.push_back(step.model);
  }
  std::vector<ForwardPasses> out;
  for (const smooth::ModelRole role : roles) {
    std::vector<const smooth::SampleStep*> steps;
    for (const smooth::SampleStep& step : plan.steps) {
      if (step.model == role) steps.push_back(&step);
    }
    // Steps over Σ that draw alike read "|Sigma| 3 x N 100"; anything else is spelled out.
    const std::string first = step_formula(*steps.front());
    bool alike = steps.front()->sigma_source == smooth::SigmaSource::kCandidate;
    for (const smooth::SampleStep* step : steps) {
      alike = alike && step->sigma_source == smooth::SigmaSource::kCandidate && step_formula(*step) == first;
    }
    std::string formula;
    if (alike) {
      formula = "|Sigma| " + std::to_string(steps.size()) + " x " + first;
    } else {
      for (const smooth::SampleStep* step : steps) formula += (formula.empty() ? "" : " + ") + step_formula(*step);
    }
    std::string note;
    for (const smooth::SampleStep* step : steps) {
      if (note.empty()) note = condition_note(step->condition);
    }
    out.push_back(passes(role == smooth::ModelRole::kEstimator ? "estimator" : classifier, examples, plan.copies(role),
                         formula, false, plan.conditional(role), note));
  }
  return out;
}

std::string classifier_name(const ExperimentConfig& config, Method method) {
  return method != Method::kGlobal && config.dual().routing() ? "experts" : "classifier";
}

std::vector<ForwardPasses> certify_passes_plain(const ExperimentConfig& config) {
  const CertifyConfig c = config.certify();
  const DualConfig dual = c.method == Method::kGlobal ? DualConfig{} : config.dual();
  return plan_passes(smooth::certify_method_plan(c, dual), count_selection(config, c.selection),
                     classifier_name(config, c.method));
}

std::vector<ForwardPasses> predict_passes_plain(const ExperimentConfig& config) {
  const PredictConfig c = config.predict();
  const DualConfig dual = c.method == Method::kGlobal ? DualConfig{} : config.dual();
  return plan_passes(smooth::predict_method_plan(c, dual), count_selection(config, c.selection),
                     classifier_name(config, c.method));
}

std::vector<ForwardPasses> train_estimator_passes_plain(const ExperimentConfig& config) {
  const TrainEstimatorConfig c = config.train_estimator();
  const std::int64_t epochs = c.epochs;
  const std::int64_t m = c.m;
  const double validation = c.validation_fraction;
  ExampleCount labelled = count_selection(config, config.label().selection);
  labelled.note = "labelled examples (" + labelled.note + ")";
  std::vector<ForwardPasses> out{passes("estimator", labelled, epochs * m,
                                        n_of("epochs", epochs) + " x " + n_of("m", m), true, true,
                                        "rows whose label radii are all 0 are dropped")};
  if (validation > 0) {
    ExampleCount held_out = labelled;
    if (held_out.count) held_out.count = static_cast<std::int64_t>(std::floor(validation * static_cast<double>(*held_out.count)));
    held_out.note = "validation rows (fraction " + format_decimal(validation) + ")";
    out.push_back(passes("estimator", held_out, epochs, n_of("epochs", epochs), false, true, "one noisy copy each per epoch"));
  }
  return out;
}

}  // namespace

std::vector<ForwardPasses> certify_passes(const ExperimentConfig& config) {
  return with_denoiser(certify_passes_plain(config), config);
}
std::vector<ForwardPasses> predict_passes(const ExperimentConfig& config) {
  return with_denoiser(predict_passes_plain(config), config);
}
std::vector<ForwardPasses> train_estimator_passes(const ExperimentConfig& config) {
  return with_denoiser(train_estimator_passes_plain(config), config);
}

std::vector<ForwardPasses> label_passes(const ExperimentConfig& config) {
  const LabelConfig c = config.label();
  const DualConfig dual = config.dual();
  return with_denoiser(plan_passes(smooth::label_plan(smooth::per_sigma_settings(dual, c)),
                                   count_selection(config, c.selection), dual.routing() ? "experts" : "classifier"),
                       config);
}

std::vector<ForwardPasses> estimate_sigma_passes(const ExperimentConfig& config) {
  const EstimateSigmaConfig c = config.estimate_sigma();
  const DualConfig dual = config.dual();
  const smooth::SamplePlan plan = smooth::estimate_sigma_plan(
      dual.sigma_e, c.n, c.batch_size, c.seed, static_cast<std::int64_t>(dual.sigma_candidates.size()));
  return with_denoiser(plan_passes(plan, count_selection(config, c.selection), "classifier"), config);
}

std::vector<ForwardPasses> finetune_passes(const ExperimentConfig& config) {
  const FinetuneConfig c = config.finetune();
  ExampleCount examples = count_selection(config, config.estimate_sigma().selection);
  examples.note = "sigma-estimated examples (" + examples.note + ")";
  return with_denoiser({passes("classifier", examples, c.epochs, n_of("epochs", c.epochs), true)}, config);
}

std::vector<ForwardPasses> train_base_passes(const ExperimentConfig& config) {
  const TrainBaseConfig c = config.train_base();
  std::vector<ForwardPasses> out = {
      passes("classifier", count_selection(config, c.selection), c.epochs, n_of("epochs", c.epochs), true)};
  if (c.sigma && *c.sigma == 0.0) return out;  // clean images: no denoiser
  return with_denoiser(std::move(out), config);
}

std::string describe(const ForwardPasses& p) {
  std::string line = p.model + (p.training ? " training" : "") + ": ";
  const std::string unit = p.training ? " forward+backward passes" : " forwards";
  if (p.examples) {
    line += group_thousands(*p.examples) + " examples x " + p.per_example_formula + " = " + (p.at_most ? "at most " : "") +
            group_thousands(*p.total()) + unit;
  } else {
    line += "? examples x " + p.per_example_formula + " (" + group_thousands(p.per_example) + unit + " per example)";
  }
  line += " [" + p.examples_note + "]";
  if (!p.note.empty()) line += "; " + p.note;
  return line;
}

}  // namespace dualrs::pipeline
