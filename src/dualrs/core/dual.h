#pragma once
/// \file
/// Decision rules of Dual Randomized Smoothing and its baselines on vote counts, free of any
/// model or sampling. Sources: Sun, Mao, Vechev, "Dual Randomized Smoothing", ICLR 2026
/// (DualRS) §4, §5.2.1; Jeong & Shin, "Multi-scale Diffusion Denoised Smoothing", NeurIPS 2023
/// (Multiscale); docs/method.md §4, §5, §11.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/core/decision.h"

namespace dualrs {
inline namespace core {

/// Checks Σ: non-empty, every σ > 0, strictly increasing (sorted, no duplicates).
/// \throws ConfigError naming `pointer` (e.g. "/dual/sigma_candidates") and the offending entry.
void validate_sigma_candidates(const std::vector<double>& sigma_candidates, const std::string& pointer);

// ---- Per-σ radius labels (DualRS §5.2.1, docs/method.md §5) -----------------------------

/// The label radius of one example at one σ from N noisy votes: the top class ĉ of the votes
/// (ties → lowest index), p = Clopper–Pearson lower bound (count ĉ, N, alpha); radius =
/// σ·Φ⁻¹(p) when ĉ is the true label and p >= 0.5, else 0.
/// \param n trials behind the votes (-1 = their sum; more when some copies voted for no class).
/// \throws DataError on empty votes, sigma <= 0 or alpha outside (0, 1).
double label_radius(const Counts& votes, std::int64_t label, double sigma, double alpha, std::int64_t n = -1);

/// Index of the largest radius, ties → the smaller σ (lower index); -1 when every radius is
/// 0 (the example is dropped from estimator training).
std::int64_t best_sigma_index(const std::vector<double>& radii);

/// What a labels row records besides its radii [docs/method.md §5].
struct LabelRowSummary {
  std::int64_t best = -1;   ///< best_sigma_index(radii)
  double max_radius = 0.0;  ///< the largest radius (0 for a dropped row)
};

/// best(x) and the largest radius of one example's radii R_c(x, σ_1 … σ_S).
/// \throws std::invalid_argument on empty radii.
LabelRowSummary summarize_label_row(const std::vector<double>& radii);

/// Class-rebalancing weights w_e(x) = 1/q_{best(x)}, q_i = fraction of kept examples (best >= 0)
/// whose best index is i. Dropped examples (best = -1) get weight 0. Size = best.size().
/// \param num_sigmas |Σ|. \throws DataError on an index >= num_sigmas.
std::vector<double> rebalancing_weights(const std::vector<std::int64_t>& best, std::int64_t num_sigmas);

// ---- Dual RS certification (DualRS §4, Theorem 4.2) -----------------------------------------

/// The failure budgets of the two Dual RS stages: the estimator's CERTIFY/PREDICT at σ_e and
/// the classifier's at the chosen σ. The whole fails with probability at most
/// alpha_e + alpha_c (union bound, Theorem 4.2).
struct DualAlpha {
  double alpha_e = 0.0;
  double alpha_c = 0.0;
};

/// The α split of Dual RS [docs/method.md §4]: each stage gets the budget given for it, or
/// alpha/2 when that is negative (not given). CERTIFY reads /certify/alpha_e and
/// /certify/alpha_c; PREDICT always splits evenly.
DualAlpha dual_alpha_split(double alpha, double alpha_e = -1.0, double alpha_c = -1.0);

/// Outcome of dual certification for one input.
struct DualCertificate {
  std::int64_t sigma_index = kAbstain;  ///< σ chosen by the smoothed estimator, or kAbstain
  double r_sigma = 0.0;                 ///< estimator's certified radius R_σ
  std::int64_t prediction = kAbstain;   ///< classifier's class at that σ, or kAbstain
  double r_c = 0.0;                     ///< classifier's certified radius R_c
  double radius = 0.0;                  ///< min(R_σ, R_c); 0 when either stage abstains
  bool abstained() const { return prediction == kAbstain; }
};

/// Combines the two CERTIFY outcomes: estimator abstain ⇒ abstain (the classifier is not
/// consulted, pass an abstained certificate); else the classifier's class with radius
/// min(R_σ, R_c). Failure probability ≤ α_e + α_c by the union bound (Theorem 4.2).
DualCertificate combine_dual(const Certificate& estimator, const Certificate& classifier);

// ---- Multiscale cascade (Multiscale; docs/method.md §11) ------------------------------------

/// What one stage of the cascade decided.
enum class StageDecision {
  kCertify,      ///< lower bound on the top class >= 0.5: certify here and stop
  kUndecided,    ///< some class's upper bound >= 0.5: abstain and stop
  kBelowHalf,    ///< every class confidently below 0.5: go to the next smaller σ
};

/// One stage at noise level sigma with selection and estimation counts.
struct MultiscaleStage {
  StageDecision decision = StageDecision::kBelowHalf;
  std::int64_t selected = kAbstain;  ///< ĉ from the selection counts
  double p_a_lower = 0.0;            ///< CP lower bound on p_ĉ at alpha_stage / 2
  double p_high = 1.0;               ///< Bonferroni CP upper bound on max_c p_c at alpha_stage / (2K)
  double radius = 0.0;               ///< σ·Φ⁻¹(p_a_lower) when certifying
  double cap = 0.0;                  ///< σ·(−Φ⁻¹(p_high)) when below half: the radius within which this stage stays below 0.5
};

/// Decides one cascade stage. **dualrs:** the stage's failure budget alpha_stage is split
/// evenly between the lower bound on the selected class and the simultaneous (Bonferroni over
/// the K classes) upper bound on every class, so the whole cascade fails with probability at
/// most the sum of the stage budgets, whatever path it takes.
/// \param trials copies behind `estimation` (-1: their sum); more when some voted for no class
/// (grid-noise rejects): they count against every lower bound and toward every upper bound.
MultiscaleStage multiscale_stage(const Counts& selection, const Counts& estimation, double sigma, double alpha_stage,
                                 std::int64_t trials = -1);

/// How the cascade splits α over stages: Bonferroni α/|Σ| (dualrs default) or the
/// reference's α/(s+1) at stage s = 1, 2, … (which sums to more than α for |Σ| ≥ 3 —
/// offered to reproduce published numbers).
enum class AlphaSplit { kBonferroni, kReference };

/// α for stage `stage` (0 = first, largest σ) of `num_stages`.
double multiscale_stage_alpha(double alpha, std::int64_t stage, std::int64_t num_stages, AlphaSplit split);

/// Final certificate of a cascade whose stages (largest σ first) ended with `stages.back()`:
/// the last stage's radius capped by every earlier below-half stage's cap.
struct MultiscaleCertificate {
  std::int64_t prediction = kAbstain;
  double radius = 0.0;
  std::int64_t stage = -1;      ///< index (into the visited stages) that decided; -1 if none
  double sigma = 0.0;           ///< σ of the deciding stage (0 when abstaining)
  bool abstained() const { return prediction == kAbstain; }
};
MultiscaleCertificate combine_multiscale(const std::vector<MultiscaleStage>& stages, const std::vector<double>& sigmas);

}  // namespace core
}  // namespace dualrs
