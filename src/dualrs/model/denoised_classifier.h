#pragma once
/// \file
/// The base classifier of denoised smoothing, f_σ(x + δ) = h(resize(denoise_σ(x + δ)))
/// [DDS §3; docs/method.md §9], and the input mapping every classifier with a non-default input
/// (range [−1, 1], another size) gets, with or without a denoiser.
///
/// Sharing: one DiffusionDenoiser (shared_ptr) serves every σ's DenoisedClassifier, the
/// classifier and the estimator, as in the paper; the classifier h is shared the same way.

#include <memory>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"
#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/diffusion_denoiser.h"

namespace dualrs::model {

/// Maps images in model space [−1, 1] to what a classifier expects: a bicubic, antialiased
/// resize to (input.height, input.width) when set and different from the image size (torch
/// `interpolate(mode="bicubic", antialias=True, align_corners=False)`, as Carlini et al.'s
/// DDS code), then the range: "[0,1]" → (x + 1)/2, "[-1,1]" → x. No clamp after the resize
/// (bicubic may overshoot slightly, as in the reference).
/// \param x  float `[B, C, H, W]`. \return float `[B, C, height, width]`.
/// \throws ConfigError on an unknown range name or a negative size.
at::Tensor to_classifier_input(const at::Tensor& x, const ClassifierInputConfig& input);

/// Checks an input description. \param pointer  e.g. "/model" (issues name pointer + "/input_range").
/// \throws ConfigError.
void validate(const ClassifierInputConfig& input, const std::string& pointer);

/// f_σ = classifier ∘ to_classifier_input ∘ denoise_σ, a BaseModel for one σ, so the
/// smoothing code (sample_counts, certify, Dual RS, Multiscale, labels) needs no change.
class DenoisedClassifier : public BaseModel {
 public:
  /// \param denoiser    shared by every σ and by the estimator.
  /// \param classifier  h, with its own input contract (`input`).
  /// \param sigma       the σ logits() denoises at; nullopt for a model used only through
  ///                    logits_under_noise() (fine-tuning with per-example σ).
  /// \throws ConfigError when σ is outside the denoiser's schedule or `input` is invalid.
  DenoisedClassifier(std::shared_ptr<DiffusionDenoiser> denoiser, std::shared_ptr<BaseModel> classifier,
                     ClassifierInputConfig input, std::optional<double> sigma);

  /// h(to_classifier_input(x̂0)) with x̂0 denoised at the σ given at construction.
  /// \param x  float `[B, C, H, W]`: x + δ in pixel space. \return `[B, K]`.
  /// \throws ModelError (also when built without σ).
  at::Tensor logits(const at::Tensor& x) override;
  /// Row b denoised at sigma[b] (0 = a clean row, no denoising).
  at::Tensor logits_under_noise(const at::Tensor& x, const at::Tensor& sigma) override;
  std::int64_t num_classes() const override { return classifier_->num_classes(); }
  /// e.g. "denoised(sigma=0.5, t*=259, denoiser(mnist_unet, linear T=1000)) -> mnist_cnn".
  std::string describe() const override;
  /// The classifier's module: training a DenoisedClassifier trains h; the denoiser is frozen.
  torch::nn::Module* module() override { return classifier_->module(); }
  /// Switches h only; the denoiser stays in eval mode.
  void set_training(bool training) override { classifier_->set_training(training); }

  /// The step used by logits(); nullopt when built without σ.
  const std::optional<DenoiseStep>& step() const { return step_; }

 private:
  std::shared_ptr<DiffusionDenoiser> denoiser_;
  std::shared_ptr<BaseModel> classifier_;
  ClassifierInputConfig input_;
  std::optional<DenoiseStep> step_;
};

/// A classifier with a non-default input but no denoiser: h(to_classifier_input(2x − 1)).
/// Returns `classifier` itself (as a shared BaseModel) when `input` is the identity.
/// \throws ConfigError on an invalid `input`.
std::shared_ptr<BaseModel> adapt_input(std::shared_ptr<BaseModel> classifier, const ClassifierInputConfig& input);

}  // namespace dualrs::model
