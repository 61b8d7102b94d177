#pragma once
/// \file
/// What every smoothing method draws for one example: which model sees how many noisy copies,
/// at which σ and from which noise stream, and which draws depend on the outcome of earlier
/// ones. The routines of certify.h and dual.h build their plan here and draw exactly its
/// steps; `--dry-run` costs a stage from the same plan (pipeline/forward_passes.h), so the
/// two cannot drift apart (docs/architecture.md §6).
///
/// No Torch here: the plan is plain numbers from the config sections.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/rng/noise.h"

namespace dualrs::smooth {

/// Settings shared by the per-σ methods.
struct PerSigmaSettings {
  std::vector<double> sigma_candidates;  ///< Σ, strictly increasing
  std::int64_t n0 = 100;
  std::int64_t n = 1000;
  std::int64_t batch_size = 1000;
  std::uint64_t seed = 0;
  NoiseKind noise = NoiseKind::kGaussian;
  Sampling sampling = Sampling::kFixed;  ///< certify only
  StagedConfig staged;                   ///< certify only, when staged
  std::vector<double> stop_radii;        ///< certify only, when staged (CertifyConfig::stop_radii)
};

/// The per-σ settings of the certify (n0, n), predict (n; no selection copies) and label
/// (N = label.n) stages: Σ from /dual, the rest from the stage's section.
PerSigmaSettings per_sigma_settings(const DualConfig& dual, const CertifyConfig& certify);
PerSigmaSettings per_sigma_settings(const DualConfig& dual, const PredictConfig& predict);
PerSigmaSettings per_sigma_settings(const DualConfig& dual, const LabelConfig& label);

/// Dual RS settings (docs/method.md §4): estimator at σ_e with α_e, classifier at the chosen σ
/// with α_c; the certificate fails with probability at most α_e + α_c.
struct DualSettings {
  PerSigmaSettings per_sigma;
  double sigma_e = 1.0;
  double alpha_e = 0.0005;
  double alpha_c = 0.0005;
};

/// Which model of a method draws a step's copies.
enum class ModelRole {
  kClassifier,  ///< the base classifier at the step's σ, or with routing the expert of that σ
  kEstimator,   ///< the variance estimator at σ_e (outputs: indices of Σ)
};

/// Where a step's noise level comes from.
enum class SigmaSource {
  kGlobal,     ///< the single σ of global-σ smoothing (σ word 0)
  kSigmaE,     ///< the estimator's σ_e (σ word |Σ|)
  kCandidate,  ///< σ_i of Σ (σ word i)
  kChosen,     ///< the σ_i the estimator chose for this example: known only at run time
};

/// Whether a step runs, given the outcome of the steps before it.
enum class StepCondition {
  kAlways,                     ///< runs for every example
  kUnlessEstimatorAbstains,    ///< Dual RS: the classifier stage, skipped when the estimator abstains
  kUntilCertifiedOrUndecided,  ///< Multiscale CERTIFY: a cascade stage; the cascade stops at the
                               ///< first σ that certifies or is undecided (or has non-finite logits)
  kUntilPrediction,            ///< Multiscale PREDICT: a cascade stage; the cascade stops at the
                               ///< first σ that does not abstain (or has non-finite logits)
};

/// One set of noisy copies: samples [0, count) of noise stream `stage`.
struct SampleDraw {
  NoiseStage stage = NoiseStage::kPredict;
  std::string count_key;   ///< the config word for `count`: "n0", "n" or "N" (label votes)
  std::int64_t count = 0;  ///< noisy copies, each one forward of the step's model
};

/// The draws of one model at one σ, in the order they are drawn. A CERTIFY step has two
/// draws, selection (n0) then estimation (n); a PREDICT, label or σ-estimate step has one.
struct SampleStep {
  ModelRole model = ModelRole::kClassifier;
  SigmaSource sigma_source = SigmaSource::kGlobal;
  std::uint32_t sigma_index = 0;  ///< the noise counter's σ word (and, for the classifier, its pool index); 0 when kChosen
  double sigma = 0.0;             ///< noise level, pixel units; 0 when kChosen
  StepCondition condition = StepCondition::kAlways;
  std::vector<SampleDraw> draws;

  /// Noisy copies of the step: the sum of its draws' counts.
  std::int64_t copies() const;
  /// This step at σ_i = `sigma` (σ word `sigma_index`): how a kChosen step is drawn once the
  /// estimator has chosen.
  SampleStep at(std::uint32_t sigma_index, double sigma) const;
};

/// Every draw of one method for one example, in the order the method makes them. Steps with
/// a condition other than kAlways may not run, so the copies a plan lists are the most the
/// method draws; they are exactly what it draws when no step is skipped or cut off.
struct SamplePlan {
  std::uint64_t seed = 0;          ///< the noise key's seed
  NoiseKind noise = NoiseKind::kGaussian;  ///< Gaussian or grid noise (docs/method.md §15)
  std::int64_t batch_size = 1000;  ///< copies per forward pass (memory only, not the numbers)
  std::vector<SampleStep> steps;

  /// Copies drawn by `role` when every step runs.
  std::int64_t copies(ModelRole role) const;
  /// Whether some step of `role` may not run (its copies are then an upper bound).
  bool conditional(ModelRole role) const;
};

/// CERTIFY [Cohen] at config.sigma: one classifier step, n0 (kCertifySelection) then n
/// (kCertifyEstimation) copies, with σ word `sigma_index`.
SamplePlan certify_plan(const CertifyConfig& config, std::uint32_t sigma_index = 0);
/// PREDICT [Cohen] at config.sigma: n copies of kPredict.
SamplePlan predict_plan(const PredictConfig& config, std::uint32_t sigma_index = 0);
/// Per-σ labels (docs/method.md §5): N = settings.n copies of kLabel at each σ_i of Σ in
/// increasing order, classifier i.
SamplePlan label_plan(const PerSigmaSettings& settings);
/// The smoothed estimator's σ choice (docs/method.md §7): n copies of kEstimateSigma at σ_e,
/// σ word |Σ| = num_sigmas.
SamplePlan estimate_sigma_plan(double sigma_e, std::int64_t n, std::int64_t batch_size, std::uint64_t seed,
                               std::int64_t num_sigmas, NoiseKind noise = NoiseKind::kGaussian);
/// Dual RS CERTIFY (DualRS §4): the estimator's CERTIFY at σ_e (kEstimatorSelection/Estimation),
/// then, unless it abstains, the classifier's CERTIFY at the chosen σ (kCertifySelection/Estimation).
SamplePlan dual_certify_plan(const DualSettings& settings);
/// Dual RS PREDICT: n estimator copies (kEstimatorPredict), then unless it abstains n classifier
/// copies (kPredict) at the chosen σ.
SamplePlan dual_predict_plan(const DualSettings& settings);
/// Multiscale CERTIFY [Multiscale]: a CERTIFY step at each σ of Σ from the largest down,
/// stopping at the first that certifies or is undecided.
SamplePlan multiscale_certify_plan(const PerSigmaSettings& settings);
/// Multiscale PREDICT: a PREDICT step at each σ from the largest down, stopping at the first
/// that does not abstain.
SamplePlan multiscale_predict_plan(const PerSigmaSettings& settings);

/// The plan per example of the certify / predict stage with `config`'s method (`dual` is read
/// for Dual RS and Multiscale only): the plan the routine that method calls builds.
SamplePlan certify_method_plan(const CertifyConfig& config, const DualConfig& dual);
SamplePlan predict_method_plan(const PredictConfig& config, const DualConfig& dual);

}  // namespace dualrs::smooth
