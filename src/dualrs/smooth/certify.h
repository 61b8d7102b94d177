#pragma once
/// \file
/// Standard randomized smoothing over a model: CERTIFY and PREDICT of Cohen, Rosenfeld,
/// Kolter (ICML 2019) with counter-based noise, for one example or a list of them.

#include <cstdint>
#include <functional>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "dualrs/core/records.h"
#include "dualrs/core/staged.h"
#include "dualrs/model/base_model.h"
#include "dualrs/smooth/sample_counts.h"

namespace dualrs::smooth {

/// One input: its dataset index, true label and image (float `[C, H, W]` in [0, 1]).
struct Example {
  std::int64_t idx = 0;
  std::int64_t label = 0;
  at::Tensor image;
};

/// Supplies example number `position` (0-based) of a list of `count`.
using ExampleFn = std::function<Example(std::int64_t position)>;

/// Non-finite logits: every method counts the noisy copies whose logits hold NaN/Inf
/// (record field `non_finite`) and abstains on such an example — a certificate resting on a
/// broken forward pass is worse than none. Labels get radius 0 at that σ.

/// `cert` turned into an abstention (prediction kAbstain, radius 0; p_a_lower kept).
Certificate abstain_non_finite(Certificate cert);

/// PREDICT on counts of which `non_finite` copies had NaN/Inf logits: predict_from_counts, or
/// an abstention (p-value 1) when `non_finite` > 0, without testing (there may be no votes).
Prediction predict_unless_non_finite(const Counts& votes, std::int64_t non_finite, double alpha);

/// CERTIFY(f, σ, x, n0, n, α): n0 selection copies (NoiseStage::kCertifySelection) pick ĉ,
/// n fresh copies (kCertifyEstimation) bound p_A; abstain below 0.5, else radius σΦ⁻¹(p_A);
/// abstain when any copy's logits are not finite.
/// \param sigma_index the counter's σ word (0 for global σ; the index in Σ for Dual RS).
/// \throws ConfigError on invalid settings, DataError on NaN pixels, ModelError.
CertifyRecord certify_example(model::BaseModel& model, const Example& example, const CertifyConfig& config,
                              std::uint32_t sigma_index = 0);

/// PREDICT(f, σ, x, n, α) with noise stage kPredict. Same errors as certify_example.
PredictRecord predict_example(model::BaseModel& model, const Example& example, const PredictConfig& config,
                              std::uint32_t sigma_index = 0);

/// The thresholds of one staged CERTIFY (schedule, σ, stop radii, α scale), built once per
/// process and shared (thread-safe): every example at that σ uses the same.
const StagedThresholds& shared_thresholds(const LookSchedule& schedule, double sigma,
                                          const std::vector<double>& stop_radii, double alpha_scale = 1.0,
                                          double futility_beta = 0.0);

/// The estimation copies of a staged CERTIFY (docs/method.md §16): samples [0, n_1), then
/// [n_1, n_2), … of `request`'s stream (so the first n_j copies are those of fixed CERTIFY),
/// stopping by next_look. `best` is the best look's certificate (p_a_lower, radius, n_a at
/// that look; selected = ĉ), `counts` the votes of every copy drawn.
struct StagedEstimate {
  Certificate best;
  SampleCounts counts;
  std::size_t looks_taken = 0;
  LookOutcome outcome = LookOutcome::kLastLook;
};
/// \param request its first_sample and count are ignored (the looks give them).
/// \param cap  the radius above which nothing reported changes (INFINITY: the top stop radius).
StagedEstimate staged_estimate(model::BaseModel& model, const at::Tensor& x, const NoiseSource& noise,
                               NoiseRequest request, std::int64_t c_hat, const StagedThresholds& thresholds, double cap);

/// One CERTIFY step with sampling "staged" (docs/method.md §16): n0 selection copies of the
/// step's first draw pick ĉ, then staged_estimate over the second draw's stream with the
/// looks of `staged` for n copies at level `alpha` and the cap `cap(ĉ)`. Used by global σ and
/// by both Dual RS stages.
struct StagedCertificate {
  Certificate cert;          ///< the best look's certificate
  SampleCounts selection;    ///< the n0 selection copies
  SampleCounts estimation;   ///< the estimation copies drawn
  std::int64_t copies = 0;   ///< forward passes: n0 + estimation copies drawn
};
StagedCertificate staged_certify_step(model::BaseModel& model, const Example& example, const SamplePlan& plan,
                                      const SampleStep& step, std::int64_t n0, std::int64_t n, const StagedConfig& staged,
                                      const std::vector<double>& stop_radii, double alpha,
                                      const std::function<double(std::int64_t c_hat)>& cap);

/// Certifies `count` examples in order, sending each record to `sink` (not finished here).
/// \throws ConfigError when `config` fails validate(CertifyConfig) (core/config.h).
/// \param progress optional; updated after every example.
void certify_all(model::BaseModel& model, std::int64_t count, const ExampleFn& examples, const CertifyConfig& config,
                 ResultSink& sink, ProgressMeter* progress = nullptr);

/// Predicts `count` examples in order (see certify_all).
void predict_all(model::BaseModel& model, std::int64_t count, const ExampleFn& examples, const PredictConfig& config,
                 ResultSink& sink, ProgressMeter* progress = nullptr);

}  // namespace dualrs::smooth
