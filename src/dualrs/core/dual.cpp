#include "dualrs/core/dual.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs {
inline namespace core {

void validate_sigma_candidates(const std::vector<double>& sigmas, const std::string& pointer) {
  std::vector<ConfigIssue> issues;
  if (sigmas.empty()) issues.push_back({pointer, "needs at least one sigma"});
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    if (!(sigmas[i] > 0)) issues.push_back({pointer + "/" + std::to_string(i), "sigma must be > 0"});
    if (i > 0 && !(sigmas[i] > sigmas[i - 1])) {
      issues.push_back({pointer + "/" + std::to_string(i),
                        "sigma_candidates must be strictly increasing (sorted, no duplicates)"});
    }
  }
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}

double label_radius(const Counts& votes, std::int64_t label, double sigma, double alpha, std::int64_t n) {
  const std::int64_t top = argmax_lowest(votes);
  if (n < 0) n = std::accumulate(votes.begin(), votes.end(), std::int64_t{0});
  if (n < 1) DUALRS_THROW(DataError, "label_radius needs at least one vote");
  const Certificate cert = radius_from_count(votes[static_cast<std::size_t>(top)], n, sigma, alpha);
  return (top == label && !cert.abstained()) ? cert.radius : 0.0;
}

std::int64_t best_sigma_index(const std::vector<double>& radii) {
  std::int64_t best = -1;
  double best_radius = 0.0;
  for (std::size_t i = 0; i < radii.size(); ++i) {
    if (radii[i] > best_radius) {
      best = static_cast<std::int64_t>(i);
      best_radius = radii[i];
    }
  }
  return best;
}

LabelRowSummary summarize_label_row(const std::vector<double>& radii) {
  if (radii.empty()) throw std::invalid_argument("summarize_label_row needs the radius at every sigma");
  return {best_sigma_index(radii), *std::max_element(radii.begin(), radii.end())};
}

std::vector<double> rebalancing_weights(const std::vector<std::int64_t>& best, std::int64_t num_sigmas) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_sigmas), 0);
  std::int64_t kept = 0;
  for (auto b : best) {
    if (b >= num_sigmas) DUALRS_THROW(DataError, "best sigma index out of range");
    if (b >= 0) {
      ++counts[static_cast<std::size_t>(b)];
      ++kept;
    }
  }
  std::vector<double> weights(best.size(), 0.0);
  for (std::size_t i = 0; i < best.size(); ++i) {
    if (best[i] >= 0) {
      const double q = static_cast<double>(counts[static_cast<std::size_t>(best[i])]) / static_cast<double>(kept);
      weights[i] = 1.0 / q;
    }
  }
  return weights;
}

DualCertificate combine_dual(const Certificate& estimator, const Certificate& classifier) {
  DualCertificate out;
  if (estimator.abstained()) return out;
  out.sigma_index = estimator.prediction;
  out.r_sigma = estimator.radius;
  if (classifier.abstained()) return out;
  out.prediction = classifier.prediction;
  out.r_c = classifier.radius;
  out.radius = std::min(out.r_sigma, out.r_c);
  return out;
}

MultiscaleStage multiscale_stage(const Counts& selection, const Counts& estimation, double sigma, double alpha_stage,
                                 std::int64_t trials) {
  if (!(sigma > 0)) DUALRS_THROW(DataError, "sigma must be > 0");
  if (selection.size() != estimation.size() || estimation.empty()) {
    DUALRS_THROW(DataError, "selection and estimation counts must have the same, non-zero size");
  }
  const std::int64_t votes = std::accumulate(estimation.begin(), estimation.end(), std::int64_t{0});
  const std::int64_t n = trials < 0 ? votes : trials;
  if (n < votes) DUALRS_THROW(DataError, "multiscale stage: ", trials, " trials but ", votes, " votes");
  const auto k = static_cast<double>(estimation.size());
  MultiscaleStage stage;
  stage.selected = argmax_lowest(selection);
  stage.p_a_lower = stats::toward_zero(
      stats::clopper_pearson_lower(estimation[static_cast<std::size_t>(stage.selected)], n, alpha_stage / 2));
  stage.p_high = 0.0;
  // Rejected copies (grid noise) count as trials of no class, so they lower only the lower bounds;
  // the upper bound's class counts are the votes, and n includes the rejects: still an upper
  // bound for each class (a reject is a copy of unknown class: p_c <= (votes_c + rejects)/n).
  const std::int64_t unknown = n - votes;
  for (auto c : estimation) {
    stage.p_high = std::max(stage.p_high, stats::clopper_pearson_upper(c + unknown, n, alpha_stage / (2 * k)));
  }
  if (stage.p_a_lower > 0.5) {
    stage.decision = StageDecision::kCertify;
    stage.radius = stats::toward_zero(sigma * stats::norm_ppf(stage.p_a_lower));
  } else if (stage.p_high >= 0.5) {
    stage.decision = StageDecision::kUndecided;
  } else {
    stage.decision = StageDecision::kBelowHalf;
    stage.cap = stats::toward_zero(sigma * (-stats::norm_ppf(stage.p_high)));
  }
  return stage;
}

DualAlpha dual_alpha_split(double alpha, double alpha_e, double alpha_c) {
  return {alpha_e < 0 ? alpha / 2 : alpha_e, alpha_c < 0 ? alpha / 2 : alpha_c};
}

double multiscale_stage_alpha(double alpha, std::int64_t stage, std::int64_t num_stages, AlphaSplit split) {
  if (split == AlphaSplit::kBonferroni) return alpha / static_cast<double>(num_stages);
  return alpha / static_cast<double>(stage + 2);  // stage s = stage + 1 (1-based): alpha / (s + 1)
}

MultiscaleCertificate combine_multiscale(const std::vector<MultiscaleStage>& stages, const std::vector<double>& sigmas) {
  MultiscaleCertificate out;
  if (stages.empty() || stages.back().decision != StageDecision::kCertify) return out;
  double cap = INFINITY;
  for (std::size_t i = 0; i + 1 < stages.size(); ++i) {
    if (stages[i].decision != StageDecision::kBelowHalf) {
      DUALRS_THROW(DataError, "a cascade continues only past below-half stages");
    }
    cap = std::min(cap, stages[i].cap);
  }
  out.prediction = stages.back().selected;
  out.radius = std::min(stages.back().radius, cap);
  out.stage = static_cast<std::int64_t>(stages.size()) - 1;
  out.sigma = sigmas.at(stages.size() - 1);
  return out;
}

}  // namespace core
}  // namespace dualrs
