#pragma once
/// \file
/// The variance-estimator training objective [DualRS §5.2; docs/method.md §6] as pure tensor
/// functions: soft cross-entropy against radius soft labels, the consistency regulariser of
/// Jeong & Shin (NeurIPS 2020, "Consistency Regularization for Certified Robustness of
/// Smoothed Classifiers"), and the radius weight w_r. Shapes: B examples, m noisy copies per
/// example, S = |Σ| noise levels (sigma_candidates, sorted ascending). Every function works
/// for float and double tensors; the dtype of `logits` is kept.

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"

namespace dualrs::train {

/// How the consistency term of one example is weighted: the config's enum (core/config.h).
using dualrs::RadiusWeight;

/// Settings of the estimator objective. Defaults are DualRS' CIFAR-10 recipe (λ = 40,
/// η = 0.5, strong w_r); ImageNet uses λ = 10 and weak w_r.
struct EstimatorLossConfig {
  double lambda = 40.0;                                ///< weight of the mean KL(p̄ ‖ p_k) term
  double eta = 0.5;                                    ///< weight of the entropy H(p̄) term
  RadiusWeight radius_weight = RadiusWeight::kStrong;  ///< how w_r is chosen
  double radius_scale_c = 1.0;  ///< C in w_r = R_c/C (see label_radius_cap); ignored for kNone
  bool hard_labels = false;     ///< targets hard_labels(radii) instead of soft_labels(radii) (/train_estimator/loss "ce")
};

/// The objective and its per-example parts, for logging.
struct EstimatorLossTerms {
  at::Tensor total;        ///< scalar: mean_b w_e[b]·(ce[b] + w_r[b]·consistency[b])
  at::Tensor ce;           ///< [B]: soft cross-entropy L_ce(x)
  at::Tensor consistency;  ///< [B]: L_con(x) = λ·mean_k KL(p̄ ‖ p_k) + η·H(p̄)
  at::Tensor w_r;          ///< [B]: radius weight, carries no gradient
};

/// Soft labels y(x) = softmax_i(R_c(x, σ_i)) over the noise levels, no temperature
/// [DualRS §5.2.1; docs/method.md §6].
/// \param radii  [B, S] label radii R_c(x, σ_i) (ℓ2 pixel units; 0 where the label abstains).
/// \returns [B, S], each row sums to 1. \throws DataError unless radii is 2-D with S >= 1.
at::Tensor soft_labels(const at::Tensor& radii);

/// Hard labels: one-hot at argmax_i R_c(x, σ_i), ties → the smaller σ (the label file's
/// `best`) [DualRS Fig. 5, the CE ablation]. \param radii  [B, S]. \returns [B, S] of 0/1.
/// \throws DataError unless radii is 2-D with S >= 1.
at::Tensor hard_labels(const at::Tensor& radii);

/// Soft cross-entropy averaged over the noisy copies [docs/method.md §6]:
/// L_ce(x) = (1/m) Σ_k −Σ_i y_i log softmax(z_{x,k})_i, with log_softmax (finite for
/// saturated logits).
/// \param logits  [B, m, S] estimator logits z_{x,k} of the m noisy copies of each example.
/// \param labels  [B, S] soft labels (e.g. soft_labels(radii)).
/// \returns [B]. \throws DataError on shape mismatches.
at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& labels);

/// Consistency regulariser [Jeong & Shin NeurIPS 2020; DualRS §5.2; docs/method.md §6]:
/// L_con(x) = λ·(1/m) Σ_k KL(p̄ ‖ p_k) + η·H(p̄), p_k = softmax(z_{x,k}), p̄ = mean_k p_k.
/// Computed in the log domain (log p_k = log_softmax, log p̄ = logsumexp_k log p_k − log m;
/// the entropy uses log max(p̄, 1e-20)), so saturated logits give finite values and gradients.
/// \param logits  [B, m, S]. \param lambda, eta  the two weights (any finite values).
/// \returns [B]. \throws DataError unless logits is 3-D with m, S >= 1.
at::Tensor consistency_loss(const at::Tensor& logits, double lambda, double eta);

/// Radius weight w_r(x) = R_c(x, σ̂)/C [DualRS §5.2; docs/method.md §6], detached (no gradient).
/// Each copy k predicts the noise level argmax_i z_{x,k,i} (ties inside a copy → the first,
/// i.e. smaller, index); σ̂ is the largest of these m predictions for kStrong and the smallest
/// for kWeak (Σ is sorted ascending, so index order is σ order). kNone gives ones.
/// \param logits  [B, m, S]. \param radii  [B, S] label radii. \param c  C > 0 (ignored for
/// kNone), normally label_radius_cap(max Σ, N, α_label) so that w_r ∈ [0, 1].
/// \returns [B] in the dtype of `logits`. \throws DataError on shape mismatches or c <= 0.
at::Tensor radius_weight(const at::Tensor& logits, const at::Tensor& radii, RadiusWeight mode, double c);

/// The estimator objective [DualRS §5.2; docs/method.md §6]:
/// L = mean_b w_e[b]·(L_ce(b) + w_r[b]·L_con(b)), labels = soft_labels(radii) (or
/// hard_labels(radii) with config.hard_labels).
/// \param logits  [B, m, S] estimator logits. \param radii  [B, S] label radii.
/// \param w_e  [B] rebalancing weights 1/q_{best(x)}. \throws DataError on shape mismatches
/// or radius_scale_c <= 0 with a radius weight.
EstimatorLossTerms estimator_loss(const at::Tensor& logits, const at::Tensor& radii, const at::Tensor& w_e,
                                  const EstimatorLossConfig& config);

/// C = max_sigma · Φ⁻¹(α^{1/n}): the largest label radius attainable from n votes at level α
/// (all n votes correct gives the Clopper–Pearson lower bound α^{1/n})
/// [docs/method.md §5, §6]; with n = 100 and α = 0.001 it is max_sigma·1.5005.
/// \param max_sigma  the largest σ in Σ (> 0). \param n  votes per label (>= 1).
/// \param alpha  failure probability of each label certificate, in (0, 1).
/// \throws DataError on out-of-range arguments (also when α^{1/n} <= 0.5, where C <= 0).
double label_radius_cap(double max_sigma, std::int64_t n, double alpha);

}  // namespace dualrs::train
