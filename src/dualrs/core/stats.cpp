#include "dualrs/core/stats.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>

#include "dualrs/core/error.h"

namespace dualrs {
inline namespace core {
namespace stats {
namespace {
void check_counts(std::int64_t n_a, std::int64_t n, double alpha) {
  if (n < 1) DUALRS_THROW(DataError, "n must be >= 1, got " + std::to_string(n));
  if (n_a < 0 || n_a > n) {
    DUALRS_THROW(DataError, "count must be in [0, n=" + std::to_string(n) + "], got " + std::to_string(n_a));
  }
  if (!(alpha > 0.0 && alpha < 1.0)) {
    DUALRS_THROW(DataError, "alpha must be in (0, 1), got " + std::to_string(alpha));
  }
}
}  // namespace

double clopper_pearson_lower(std::int64_t n_a, std::int64_t n, double alpha) {
  check_counts(n_a, n, alpha);
  if (n_a == 0) return 0.0;
  const boost::math::beta_distribution<double> beta(static_cast<double>(n_a), static_cast<double>(n - n_a + 1));
  return boost::math::quantile(beta, alpha);
}

double clopper_pearson_upper(std::int64_t n_a, std::int64_t n, double alpha) {
  check_counts(n_a, n, alpha);
  if (n_a == n) return 1.0;
  const boost::math::beta_distribution<double> beta(static_cast<double>(n_a + 1), static_cast<double>(n - n_a));
  return boost::math::quantile(boost::math::complement(beta, alpha));
}

double toward_zero(double value, int ulps) {
  if (value == 0.0 || !std::isfinite(value)) return value;
  for (int i = 0; i < ulps && value != 0.0; ++i) value = std::nextafter(value, 0.0);
  return value;
}

double norm_ppf(double p) {
  if (!(p > 0.0 && p < 1.0)) DUALRS_THROW(DataError, "norm_ppf needs 0 < p < 1, got " + std::to_string(p));
  return boost::math::quantile(boost::math::normal_distribution<double>(), p);
}

double binom_test_two_sided(std::int64_t k, std::int64_t n, double p) {
  if (n < 1) DUALRS_THROW(DataError, "binomial test needs n >= 1, got " + std::to_string(n));
  if (k < 0 || k > n) DUALRS_THROW(DataError, "binomial test needs 0 <= k <= n, got k=" + std::to_string(k));
  if (!(p > 0.0 && p < 1.0)) DUALRS_THROW(DataError, "binomial test needs 0 < p < 1, got " + std::to_string(p));
  const boost::math::binomial_distribution<double> dist(static_cast<double>(n), p);
  const double dk = static_cast<double>(k);
  const double mean = static_cast<double>(n) * p;
  if (dk == mean) return 1.0;
  // Outcomes on the far side of the mean whose probability is <= pmf(k) (scipy's rule, with
  // its relative tolerance so ties in exact arithmetic are not lost to rounding).
  const double d = boost::math::pdf(dist, dk) * (1.0 + 1e-7);
  double pval;
  if (dk < mean) {
    // pmf is non-increasing on [ceil(mean), n]: find the first i there with pmf(i) <= d.
    std::int64_t lo = static_cast<std::int64_t>(std::ceil(mean)), hi = n;
    if (boost::math::pdf(dist, static_cast<double>(hi)) > d) {
      pval = boost::math::cdf(dist, dk);
    } else {
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (boost::math::pdf(dist, static_cast<double>(mid)) <= d) hi = mid; else lo = mid + 1;
      }
      // P(X <= k) + P(X >= lo)
      pval = boost::math::cdf(dist, dk) + boost::math::cdf(boost::math::complement(dist, static_cast<double>(lo - 1)));
    }
  } else {
    // pmf is non-decreasing on [0, floor(mean)]: find the last i there with pmf(i) <= d.
    std::int64_t lo = 0, hi = static_cast<std::int64_t>(std::floor(mean));
    if (boost::math::pdf(dist, 0.0) > d) {
      pval = boost::math::cdf(boost::math::complement(dist, dk - 1.0));
    } else {
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo + 1) / 2;
        if (boost::math::pdf(dist, static_cast<double>(mid)) <= d) lo = mid; else hi = mid - 1;
      }
      // P(X <= lo) + P(X >= k)
      pval = boost::math::cdf(dist, static_cast<double>(lo)) + boost::math::cdf(boost::math::complement(dist, dk - 1.0));
    }
  }
  return std::min(1.0, pval);
}

}  // namespace stats
}  // namespace core
}  // namespace dualrs
