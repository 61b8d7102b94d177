#include "dualrs/smooth/sample_plan.h"

#include "dualrs/core/dual.h"

namespace dualrs::smooth {
namespace {

// CERTIFY's two vote sets [Cohen]: n0 copies pick the class, n fresh copies bound p_A.
std::vector<SampleDraw> certify_draws(NoiseStage selection, NoiseStage estimation, std::int64_t n0, std::int64_t n) {
  return {{selection, "n0", n0}, {estimation, "n", n}};
}

SampleStep step(ModelRole model, SigmaSource source, std::uint32_t sigma_index, double sigma, StepCondition condition,
                std::vector<SampleDraw> draws) {
  SampleStep s;
  s.model = model;
  s.sigma_source = source;
  s.sigma_index = sigma_index;
  s.sigma = sigma;
  s.condition = condition;
  s.draws = std::move(draws);
  return s;
}

SamplePlan plan(std::uint64_t seed, std::int64_t batch_size, NoiseKind noise) {
  SamplePlan p;
  p.seed = seed;
  p.batch_size = batch_size;
  p.noise = noise;
  return p;
}

std::uint32_t word(std::size_t i) { return static_cast<std::uint32_t>(i); }

}  // namespace

PerSigmaSettings per_sigma_settings(const DualConfig& dual, const CertifyConfig& certify) {
  return {dual.sigma_candidates, certify.n0, certify.n, certify.batch_size, certify.seed,
          certify.noise, certify.sampling, certify.staged, certify.stop_radii};
}
PerSigmaSettings per_sigma_settings(const DualConfig& dual, const PredictConfig& predict) {
  return {dual.sigma_candidates, 0, predict.n, predict.batch_size, predict.seed, predict.noise, Sampling::kFixed, {}, {}};
}
PerSigmaSettings per_sigma_settings(const DualConfig& dual, const LabelConfig& label) {
  return {dual.sigma_candidates, 0, label.n, label.batch_size, label.seed, label.noise, Sampling::kFixed, {}, {}};
}

std::int64_t SampleStep::copies() const {
  std::int64_t total = 0;
  for (const SampleDraw& d : draws) total += d.count;
  return total;
}

SampleStep SampleStep::at(std::uint32_t index, double level) const {
  SampleStep s = *this;
  s.sigma_index = index;
  s.sigma = level;
  return s;
}

std::int64_t SamplePlan::copies(ModelRole role) const {
  std::int64_t total = 0;
  for (const SampleStep& s : steps) {
    if (s.model == role) total += s.copies();
  }
  return total;
}

bool SamplePlan::conditional(ModelRole role) const {
  for (const SampleStep& s : steps) {
    if (s.model == role && s.condition != StepCondition::kAlways) return true;
  }
  return false;
}

SamplePlan certify_plan(const CertifyConfig& config, std::uint32_t sigma_index) {
  SamplePlan p = plan(config.seed, config.batch_size, config.noise);
  p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kGlobal, sigma_index, config.sigma, StepCondition::kAlways,
                         certify_draws(NoiseStage::kCertifySelection, NoiseStage::kCertifyEstimation, config.n0, config.n)));
  return p;
}

SamplePlan predict_plan(const PredictConfig& config, std::uint32_t sigma_index) {
  SamplePlan p = plan(config.seed, config.batch_size, config.noise);
  p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kGlobal, sigma_index, config.sigma, StepCondition::kAlways,
                         {{NoiseStage::kPredict, "n", config.n}}));
  return p;
}

SamplePlan label_plan(const PerSigmaSettings& settings) {
  SamplePlan p = plan(settings.seed, settings.batch_size, settings.noise);
  for (std::size_t i = 0; i < settings.sigma_candidates.size(); ++i) {
    p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kCandidate, word(i), settings.sigma_candidates[i],
                           StepCondition::kAlways, {{NoiseStage::kLabel, "N", settings.n}}));
  }
  return p;
}

SamplePlan estimate_sigma_plan(double sigma_e, std::int64_t n, std::int64_t batch_size, std::uint64_t seed,
                               std::int64_t num_sigmas, NoiseKind noise) {
  SamplePlan p = plan(seed, batch_size, noise);
  p.steps.push_back(step(ModelRole::kEstimator, SigmaSource::kSigmaE, static_cast<std::uint32_t>(num_sigmas), sigma_e,
                         StepCondition::kAlways, {{NoiseStage::kEstimateSigma, "n", n}}));
  return p;
}

SamplePlan dual_certify_plan(const DualSettings& settings) {
  const PerSigmaSettings& ps = settings.per_sigma;
  SamplePlan p = plan(ps.seed, ps.batch_size, ps.noise);
  p.steps.push_back(step(ModelRole::kEstimator, SigmaSource::kSigmaE, word(ps.sigma_candidates.size()), settings.sigma_e,
                         StepCondition::kAlways,
                         certify_draws(NoiseStage::kEstimatorSelection, NoiseStage::kEstimatorEstimation, ps.n0, ps.n)));
  p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kChosen, 0, 0.0, StepCondition::kUnlessEstimatorAbstains,
                         certify_draws(NoiseStage::kCertifySelection, NoiseStage::kCertifyEstimation, ps.n0, ps.n)));
  return p;
}

SamplePlan dual_predict_plan(const DualSettings& settings) {
  const PerSigmaSettings& ps = settings.per_sigma;
  SamplePlan p = plan(ps.seed, ps.batch_size, ps.noise);
  p.steps.push_back(step(ModelRole::kEstimator, SigmaSource::kSigmaE, word(ps.sigma_candidates.size()), settings.sigma_e,
                         StepCondition::kAlways, {{NoiseStage::kEstimatorPredict, "n", ps.n}}));
  p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kChosen, 0, 0.0, StepCondition::kUnlessEstimatorAbstains,
                         {{NoiseStage::kPredict, "n", ps.n}}));
  return p;
}

SamplePlan multiscale_certify_plan(const PerSigmaSettings& settings) {
  SamplePlan p = plan(settings.seed, settings.batch_size, settings.noise);
  for (std::size_t step_index = 0; step_index < settings.sigma_candidates.size(); ++step_index) {
    const std::size_t i = settings.sigma_candidates.size() - 1 - step_index;  // largest σ first
    p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kCandidate, word(i), settings.sigma_candidates[i],
                           StepCondition::kUntilCertifiedOrUndecided,
                           certify_draws(NoiseStage::kCertifySelection, NoiseStage::kCertifyEstimation, settings.n0,
                                         settings.n)));
  }
  return p;
}

SamplePlan multiscale_predict_plan(const PerSigmaSettings& settings) {
  SamplePlan p = plan(settings.seed, settings.batch_size, settings.noise);
  for (std::size_t step_index = 0; step_index < settings.sigma_candidates.size(); ++step_index) {
    const std::size_t i = settings.sigma_candidates.size() - 1 - step_index;  // largest σ first
    p.steps.push_back(step(ModelRole::kClassifier, SigmaSource::kCandidate, word(i), settings.sigma_candidates[i],
                           StepCondition::kUntilPrediction, {{NoiseStage::kPredict, "n", settings.n}}));
  }
  return p;
}

SamplePlan certify_method_plan(const CertifyConfig& config, const DualConfig& dual) {
  switch (config.method) {
    case Method::kGlobal:
      return certify_plan(config, config.sigma_word);
    case Method::kDual:
      return dual_certify_plan({per_sigma_settings(dual, config), dual.sigma_e, config.alpha_e, config.alpha_c});
    case Method::kMultiscale:
      return multiscale_certify_plan(per_sigma_settings(dual, config));
  }
  return certify_plan(config);
}

SamplePlan predict_method_plan(const PredictConfig& config, const DualConfig& dual) {
  switch (config.method) {
    case Method::kGlobal:
      return predict_plan(config);
    case Method::kDual: {
      const DualAlpha alpha = dual_alpha_split(config.alpha);
      return dual_predict_plan({per_sigma_settings(dual, config), dual.sigma_e, alpha.alpha_e, alpha.alpha_c});
    }
    case Method::kMultiscale:
      return multiscale_predict_plan(per_sigma_settings(dual, config));
  }
  return predict_plan(config);
}

}  // namespace dualrs::smooth
