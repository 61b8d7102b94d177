#pragma once
/// \file
/// Statistics for randomized-smoothing certificates, on top of Boost.Math.
/// Source: Cohen, Rosenfeld, Kolter, ICML 2019, Algorithm CERTIFY/PREDICT; docs/method.md §2–3.

#include <cstdint>

namespace dualrs {
inline namespace core {
namespace stats {

/// One-sided Clopper–Pearson lower confidence bound on a binomial proportion:
/// `BetaQuantile(alpha; n_a, n - n_a + 1)`, and 0 when `n_a == 0`. Equals statsmodels
/// `proportion_confint(n_a, n, alpha=2*alpha, method="beta")[0]`.
/// \param n_a    successes, 0 <= n_a <= n
/// \param n      trials, n >= 1
/// \param alpha  failure probability of the bound, in (0, 1)
/// \throws DataError on arguments out of range.
double clopper_pearson_lower(std::int64_t n_a, std::int64_t n, double alpha);

/// One-sided Clopper–Pearson upper bound: `BetaQuantile(1 - alpha; n_a + 1, n - n_a)`, 1 when
/// `n_a == n`. Same arguments and errors as clopper_pearson_lower. Used by the Multiscale
/// cascade's radius cap (docs/method.md §11).
double clopper_pearson_upper(std::int64_t n_a, std::int64_t n, double alpha);

/// How far certificates are moved toward zero to absorb floating-point error: p_a_lower and
/// the radius are each computed in double and then lowered by this many units in the last
/// place (docs/method.md §15). Boost.Math documents its beta and normal quantiles to a few
/// ε in double; the radius σ·Φ⁻¹(p) adds one rounding per operation, so 8 ulps on each
/// value leaves a margin over the sum of those errors.
inline constexpr int kRoundingUlps = 8;

/// `value` moved `ulps` representable doubles toward zero (0 and non-finite values unchanged).
double toward_zero(double value, int ulps = kRoundingUlps);

/// Standard normal quantile Φ⁻¹(p). \throws DataError unless 0 < p < 1.
double norm_ppf(double p);

/// Exact two-sided binomial test p-value for k successes in n trials under success
/// probability p, as `scipy.stats.binomtest(k, n, p).pvalue` (outcomes no more likely than k,
/// with scipy's relative tolerance 1e-7). \throws DataError on bad arguments.
double binom_test_two_sided(std::int64_t k, std::int64_t n, double p = 0.5);

}  // namespace stats
}  // namespace core
}  // namespace dualrs
