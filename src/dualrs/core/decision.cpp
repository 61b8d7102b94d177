#include "dualrs/core/decision.h"

#include <numeric>
#include <string>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs {
inline namespace core {

std::int64_t argmax_lowest(const Counts& counts) {
  if (counts.empty()) DUALRS_THROW(DataError, "argmax of empty counts");
  std::size_t best = 0;
  for (std::size_t i = 1; i < counts.size(); ++i) {
    if (counts[i] > counts[best]) best = i;
  }
  return static_cast<std::int64_t>(best);
}

Certificate radius_from_count(std::int64_t n_a, std::int64_t n, double sigma, double alpha) {
  if (!(sigma > 0.0)) DUALRS_THROW(DataError, "sigma must be > 0, got " + std::to_string(sigma));
  Certificate cert;
  cert.n_a = n_a;
  // Rounding-safe (stats::kRoundingUlps): both values lowered a few ulps; abstain at <= 0.5.
  cert.p_a_lower = stats::toward_zero(stats::clopper_pearson_lower(n_a, n, alpha));
  if (cert.p_a_lower <= 0.5) return cert;
  cert.prediction = 0;
  cert.radius = stats::toward_zero(sigma * stats::norm_ppf(cert.p_a_lower));
  return cert;
}

Certificate certify_from_counts(const Counts& selection, const Counts& estimation, double sigma, double alpha,
                                std::int64_t n) {
  if (selection.size() != estimation.size()) {
    DUALRS_THROW(DataError, "selection and estimation counts differ in size (" + std::to_string(selection.size()) +
                            " vs " + std::to_string(estimation.size()) + ")");
  }
  const std::int64_t c_hat = argmax_lowest(selection);
  const std::int64_t votes = std::accumulate(estimation.begin(), estimation.end(), std::int64_t{0});
  if (n < 0) n = votes;
  if (n < votes) {
    DUALRS_THROW(DataError, "n = " + std::to_string(n) + " is less than the " + std::to_string(votes) + " votes counted");
  }
  Certificate cert = radius_from_count(estimation[static_cast<std::size_t>(c_hat)], n, sigma, alpha);
  cert.selected = c_hat;
  if (!cert.abstained()) cert.prediction = c_hat;
  return cert;
}

Prediction predict_from_counts(const Counts& counts, double alpha) {
  if (counts.size() < 2) DUALRS_THROW(DataError, "PREDICT needs at least 2 classes");
  if (!(alpha > 0.0 && alpha < 1.0)) DUALRS_THROW(DataError, "alpha must be in (0, 1), got " + std::to_string(alpha));
  std::size_t first = 0, second = 1;
  if (counts[1] > counts[0]) std::swap(first, second);
  for (std::size_t i = 2; i < counts.size(); ++i) {
    if (counts[i] > counts[first]) {
      second = first;
      first = i;
    } else if (counts[i] > counts[second]) {
      second = i;
    }
  }
  Prediction out;
  out.count1 = counts[first];
  out.count2 = counts[second];
  if (out.count1 + out.count2 == 0) DUALRS_THROW(DataError, "PREDICT needs at least one vote");
  out.p_value = stats::binom_test_two_sided(out.count1, out.count1 + out.count2, 0.5);
  if (out.p_value <= alpha) out.prediction = static_cast<std::int64_t>(first);
  return out;
}

}  // namespace core
}  // namespace dualrs
