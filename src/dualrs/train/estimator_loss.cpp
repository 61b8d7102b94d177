#include "dualrs/train/estimator_loss.h"

#include <cmath>
#include <tuple>

#include <torch/torch.h>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs::train {
namespace {

// log(clamp(p̄, 1e-20)) in the entropy: 0·log 0 would be NaN and its gradient infinite.
constexpr double kEntropyFloor = 1e-20;

void check_logits(const at::Tensor& logits, const char* what) {
  DUALRS_CHECK(logits.defined() && logits.dim() == 3, DataError, what, ": logits must be [B, m, S], got ",
               logits.defined() ? logits.sizes() : at::IntArrayRef{});
  DUALRS_CHECK(logits.size(1) >= 1 && logits.size(2) >= 1, DataError, what,
               ": logits need m >= 1 copies and S >= 1 noise levels, got ", logits.sizes());
  DUALRS_CHECK(logits.is_floating_point(), DataError, what, ": logits must be floating point, got ",
               logits.scalar_type());
}

// `t` must be [B, S] matching logits [B, m, S].
void check_per_level(const at::Tensor& logits, const at::Tensor& t, const char* what, const char* name) {
  DUALRS_CHECK(t.defined() && t.dim() == 2 && t.size(0) == logits.size(0) && t.size(1) == logits.size(2), DataError,
               what, ": ", name, " must be [B, S] = [", logits.size(0), ", ", logits.size(2), "] to match logits ",
               logits.sizes(), ", got ", t.defined() ? t.sizes() : at::IntArrayRef{});
}

}  // namespace

at::Tensor soft_labels(const at::Tensor& radii) {
  DUALRS_CHECK(radii.defined() && radii.dim() == 2 && radii.size(1) >= 1, DataError,
               "soft_labels: radii must be [B, S] with S >= 1, got ", radii.defined() ? radii.sizes() : at::IntArrayRef{});
  const auto r = radii.is_floating_point() ? radii : radii.to(torch::kDouble);
  return torch::softmax(r, /*dim=*/1);
}

at::Tensor hard_labels(const at::Tensor& radii) {
  DUALRS_CHECK(radii.defined() && radii.dim() == 2 && radii.size(1) >= 1, DataError,
               "hard_labels: radii must be [B, S] with S >= 1, got ", radii.defined() ? radii.sizes() : at::IntArrayRef{});
  const auto r = radii.is_floating_point() ? radii : radii.to(torch::kDouble);
  // The first maximum of each row (ties → the smaller σ), whatever argmax does with ties.
  const auto is_max = r.eq(std::get<0>(r.max(/*dim=*/1, /*keepdim=*/true)));
  const auto first = is_max.logical_and(is_max.to(torch::kLong).cumsum(/*dim=*/1).eq(1));
  return first.to(r.scalar_type());
}

at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& labels) {
  check_logits(logits, "soft_cross_entropy");
  check_per_level(logits, labels, "soft_cross_entropy", "labels");
  const auto log_p = torch::log_softmax(logits, /*dim=*/2);                     // [B, m, S]
  const auto y = labels.to(logits.scalar_type()).unsqueeze(1);                 // [B, 1, S]
  return -(y * log_p).sum(/*dim=*/2).mean(/*dim=*/1);                          // [B]
}

at::Tensor consistency_loss(const at::Tensor& logits, double lambda, double eta) {
  check_logits(logits, "consistency_loss");
  const auto m = static_cast<double>(logits.size(1));
  const auto log_p = torch::log_softmax(logits, /*dim=*/2);                     // [B, m, S]
  const auto log_pbar = torch::logsumexp(log_p, /*dim=*/1) - std::log(m);       // [B, S]
  const auto pbar = log_pbar.exp();
  // KL(p̄ ‖ p_k) = Σ_i p̄_i (log p̄_i − log p_k,i); every factor is finite, so is the gradient.
  const auto kl = (pbar.unsqueeze(1) * (log_pbar.unsqueeze(1) - log_p)).sum(/*dim=*/2);  // [B, m]
  const auto entropy = -(pbar * pbar.clamp_min(kEntropyFloor).log()).sum(/*dim=*/1);   // [B]
  return lambda * kl.mean(/*dim=*/1) + eta * entropy;
}

at::Tensor radius_weight(const at::Tensor& logits, const at::Tensor& radii, RadiusWeight mode, double c) {
  check_logits(logits, "radius_weight");
  check_per_level(logits, radii, "radius_weight", "radii");
  torch::NoGradGuard no_grad;
  if (mode == RadiusWeight::kNone) return torch::ones({logits.size(0)}, logits.options().requires_grad(false));
  DUALRS_CHECK(std::isfinite(c) && c > 0.0, DataError, "radius_weight: the radius scale C must be > 0, got ", c);
  const auto predicted = logits.detach().argmax(/*dim=*/2);                     // [B, m] σ index per copy
  const auto sigma_hat = mode == RadiusWeight::kStrong ? std::get<0>(predicted.max(/*dim=*/1))
                                                       : std::get<0>(predicted.min(/*dim=*/1));  // [B]
  const auto r = radii.detach().to(logits.scalar_type());
  return (r.gather(/*dim=*/1, sigma_hat.unsqueeze(1)).squeeze(1) / c).detach();
}

EstimatorLossTerms estimator_loss(const at::Tensor& logits, const at::Tensor& radii, const at::Tensor& w_e,
                                  const EstimatorLossConfig& config) {
  check_logits(logits, "estimator_loss");
  check_per_level(logits, radii, "estimator_loss", "radii");
  DUALRS_CHECK(logits.size(0) >= 1, DataError, "estimator_loss: needs B >= 1 examples, got ", logits.sizes());
  DUALRS_CHECK(w_e.defined() && w_e.dim() == 1 && w_e.size(0) == logits.size(0), DataError,
               "estimator_loss: w_e must be [B] = [", logits.size(0), "], got ",
               w_e.defined() ? w_e.sizes() : at::IntArrayRef{});
  EstimatorLossTerms terms;
  terms.ce = soft_cross_entropy(logits, config.hard_labels ? hard_labels(radii) : soft_labels(radii));
  terms.consistency = consistency_loss(logits, config.lambda, config.eta);
  terms.w_r = radius_weight(logits, radii, config.radius_weight, config.radius_scale_c);
  terms.total = (w_e.to(logits.scalar_type()) * (terms.ce + terms.w_r * terms.consistency)).mean();
  return terms;
}

double label_radius_cap(double max_sigma, std::int64_t n, double alpha) {
  DUALRS_CHECK(std::isfinite(max_sigma) && max_sigma > 0.0, DataError,
               "label_radius_cap: max_sigma must be > 0, got ", max_sigma);
  DUALRS_CHECK(n >= 1, DataError, "label_radius_cap: n must be >= 1, got ", n);
  DUALRS_CHECK(alpha > 0.0 && alpha < 1.0, DataError, "label_radius_cap: alpha must be in (0, 1), got ", alpha);
  // All n votes correct: the one-sided Clopper–Pearson lower bound is α^{1/n}.
  const double p_a_lower = std::pow(alpha, 1.0 / static_cast<double>(n));
  DUALRS_CHECK(p_a_lower > 0.5, DataError, "label_radius_cap: with n = ", n, " and alpha = ", alpha,
               " no label can be certified (alpha^(1/n) = ", p_a_lower, " <= 0.5)");
  return max_sigma * stats::norm_ppf(p_a_lower);
}

}  // namespace dualrs::train
