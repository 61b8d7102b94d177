#pragma once
/// \file
/// Methods that choose σ per input, over models: per-σ radius labels, the smoothed
/// estimator's σ choice, Dual RS CERTIFY/PREDICT (DualRS §4) and the Multiscale cascade
/// (Jeong & Shin, NeurIPS 2023). Decision rules are in dualrs/core/dual.h.
///
/// Noise streams: labels use NoiseStage::kLabel with counter σ word = i (the index in Σ);
/// σ estimates kEstimateSigma; the Dual RS estimator kEstimatorSelection/Estimation/Predict
/// (σ word = |Σ|); classifier stages and Multiscale stages kCertifySelection/Estimation and
/// kPredict with σ word = i. So the classifier stage of Dual RS at σ_i draws exactly the copies
/// a Multiscale stage at σ_i would. Each routine draws exactly the steps of its plan
/// (dualrs/smooth/sample_plan.h: label_plan, estimate_sigma_plan, dual_certify_plan, …), the
/// plan `--dry-run` costs.

#include <cstdint>
#include <vector>

#include "dualrs/core/dual.h"
#include "dualrs/core/records.h"
#include "dualrs/model/base_model.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/sample_plan.h"

namespace dualrs::smooth {

/// The classifier used at each σ_i: one shared model (the same pointer |Σ| times) or one
/// expert per σ (routing, DualRS §5.3). Size |Σ|.
using ClassifierPool = std::vector<model::BaseModel*>;

// PerSigmaSettings and DualSettings are declared with the sample plans they determine
// (dualrs/smooth/sample_plan.h).

/// Per-σ label radii of one example (docs/method.md §5): N = settings.n votes at each σ_i with
/// classifier i; R_c(x, σ_i) from dualrs::label_radius at level alpha.
struct LabelRow {
  std::vector<double> radii;            ///< [|Σ|]; 0 at a σ where some copy had non-finite logits
  std::vector<std::int64_t> top_count;  ///< [|Σ|]
  std::vector<std::int64_t> non_finite; ///< [|Σ|] copies with NaN/Inf logits
};
LabelRow label_example(const ClassifierPool& classifiers, const Example& example, const PerSigmaSettings& settings,
                       double alpha);
/// label_example of several examples at once: at each σ_i the N copies of every example go
/// through classifier i in shared forwards of settings.batch_size rows (sample_counts_grouped;
/// docs/method.md §14). One example: label_example's forwards exactly. \return rows in order.
std::vector<LabelRow> label_examples(const ClassifierPool& classifiers, const std::vector<Example>& examples,
                                     const PerSigmaSettings& settings, double alpha);

/// Votes of the smoothed estimator (output classes = indices of Σ) at σ_e over n copies
/// (NoiseStage::kEstimateSigma) and its majority choice (ties → smaller σ).
struct SigmaVote {
  Counts votes;                   ///< [|Σ|]
  std::int64_t sigma_index = 0;
  std::int64_t non_finite = 0;    ///< copies with NaN/Inf logits (they vote for no σ)
};
/// \param noise Gaussian or grid noise (/estimate_sigma/noise).
SigmaVote estimate_sigma_example(model::BaseModel& estimator, const Example& example, double sigma_e, std::int64_t n,
                                 std::int64_t batch_size, std::uint64_t seed, std::int64_t num_sigmas,
                                 NoiseKind noise = NoiseKind::kGaussian);
/// estimate_sigma_example of several examples, their n copies sharing forwards of
/// `batch_size` rows (sample_counts_grouped). \return votes in order.
std::vector<SigmaVote> estimate_sigma_examples(model::BaseModel& estimator, const std::vector<Example>& examples,
                                               double sigma_e, std::int64_t n, std::int64_t batch_size, std::uint64_t seed,
                                               std::int64_t num_sigmas, NoiseKind noise = NoiseKind::kGaussian);

/// Dual RS CERTIFY of one example. The record holds σ index, R_σ, ŷ, R_c, R = min(R_σ, R_c)
/// and both stages' counts (classifier counts are zeros when the estimator abstains), and
/// n_used / n_used_estimator. With settings.per_sigma.sampling staged both stages run staged
/// CERTIFY at α_e and α_c, and stop early as docs/method.md §16 says: the estimator once R_σ
/// reaches the largest R_c its chosen σ could give, the classifier once R_c ≥ R_σ.
/// \throws ConfigError on invalid settings, ModelError when the estimator's output size is not |Σ|.
CertifyRecord dual_certify_example(model::BaseModel& estimator, const ClassifierPool& classifiers,
                                   const Example& example, const DualSettings& settings);

/// Dual RS PREDICT: PREDICT(g_e; n, α_e) then PREDICT(g_c at the chosen σ; n, α_c).
PredictRecord dual_predict_example(model::BaseModel& estimator, const ClassifierPool& classifiers,
                                   const Example& example, const DualSettings& settings);

/// Multiscale cascade CERTIFY: σ from largest to smallest, stage α from `split`; the record's
/// sigma_index is the deciding stage's σ index (-1 when abstaining), radius capped as in
/// dualrs::combine_multiscale. Staged sampling: each stage's estimation runs in looks at its
/// stage α spread by the schedule; a look that is below half moves on, a look that certifies
/// decides the stage, which continues only while a later look could reach the next stop radius.
CertifyRecord multiscale_certify_example(const ClassifierPool& classifiers, const Example& example,
                                         const PerSigmaSettings& settings, double alpha, AlphaSplit split);

/// Multiscale PREDICT: PREDICT at each σ from largest to smallest (stage α from `split`); the
/// first stage that does not abstain answers.
PredictRecord multiscale_predict_example(const ClassifierPool& classifiers, const Example& example,
                                         const PerSigmaSettings& settings, double alpha, AlphaSplit split);

}  // namespace dualrs::smooth
