#pragma once
/// \file
/// Decision rules of randomized smoothing on vote counts, free of any model or sampling.
/// Source: Cohen, Rosenfeld, Kolter, ICML 2019, Algorithms CERTIFY and PREDICT; docs/method.md §3.

#include <cstdint>
#include <vector>

namespace dualrs {
inline namespace core {

/// Votes of the base classifier per class over a set of noisy copies; size K (classes).
using Counts = std::vector<std::int64_t>;

/// Class label used for "the smoothed classifier abstains".
inline constexpr std::int64_t kAbstain = -1;

/// Index of the largest count; ties go to the lowest class index (Cohen's reference leaves
/// tie order to numpy; dualrs fixes it). \throws DataError on empty counts.
std::int64_t argmax_lowest(const Counts& counts);

/// Outcome of CERTIFY for one input.
struct Certificate {
  std::int64_t prediction = kAbstain;  ///< ĉ, or kAbstain
  double p_a_lower = 0.0;              ///< Clopper–Pearson lower bound on p_A (level alpha)
  double radius = 0.0;                 ///< certified ℓ2 radius in pixel units; 0 when abstaining
  std::int64_t n_a = 0;                ///< estimation votes for the selected class ĉ
  std::int64_t selected = kAbstain;    ///< ĉ from the selection counts, even when abstaining
  bool abstained() const { return prediction == kAbstain; }
};

/// The radius a count gives: p_a_lower = CP lower bound (n_a, n, alpha); abstain when it is
/// < 0.5, else radius = sigma · Φ⁻¹(p_a_lower). `prediction` is set to 0 when certified (the
/// caller names the class). \param sigma noise level (> 0) in [0,1]-pixel units.
/// \throws DataError on sigma <= 0 or counts/alpha out of range.
Certificate radius_from_count(std::int64_t n_a, std::int64_t n, double sigma, double alpha);

/// CERTIFY on counts: ĉ = argmax of the *selection* counts (n0 copies, ties → lowest index);
/// n_a = the *estimation* counts (n fresh copies) for ĉ; then radius_from_count.
/// \param selection   counts from n0 noisy copies, size K
/// \param estimation  counts from n fresh noisy copies, size K
/// \param n           trials behind `estimation`; -1 = their sum. Larger than the sum when
///                    some copies voted for no class (non-finite logits), which keeps the
///                    bound sound.
/// \throws DataError when sizes differ, counts are empty or n < sum.
Certificate certify_from_counts(const Counts& selection, const Counts& estimation, double sigma, double alpha,
                                std::int64_t n = -1);

/// Outcome of PREDICT for one input.
struct Prediction {
  std::int64_t prediction = kAbstain;  ///< top class, or kAbstain
  double p_value = 1.0;                ///< two-sided binomial test of c1 of c1 + c2 at p = 0.5
  std::int64_t count1 = 0;             ///< votes of the top class
  std::int64_t count2 = 0;             ///< votes of the runner-up
  bool abstained() const { return prediction == kAbstain; }
};

/// PREDICT on counts: top two classes c1 >= c2 (ties → lower index first); abstain when the
/// exact two-sided binomial p-value of c1 out of c1 + c2 at 0.5 exceeds alpha.
/// \throws DataError on fewer than 2 classes, no votes or alpha outside (0, 1).
Prediction predict_from_counts(const Counts& counts, double alpha);

}  // namespace core
}  // namespace dualrs
