#pragma once
/// \file
/// One-step diffusion denoiser of denoised smoothing [Carlini et al., "(Certified!!)
/// Adversarial Robustness for Free!", ICLR 2023, §3; docs/method.md §9].
///
/// For a noisy copy x + δ (pixel space, δ ~ N(0, σ²I) drawn by the counter-based RNG) and
/// its σ: model space x' + 2δ = 2(x + δ) − 1; t* = the first t with √(1−ᾱ_t)/√ᾱ_t >= 2σ;
/// x_t = √ᾱ_{t*}·(2(x + δ) − 1); ε̂ = ε_θ(x_t, t*) (network timestep per the schedule);
/// x̂0 = clamp((x_t − √(1−ᾱ_{t*})·ε̂)/√ᾱ_{t*}, −1, 1). Coefficients are float64, the tensor
/// arithmetic float32. The denoiser is frozen: it runs without gradients (but not in
/// inference mode, so a classifier being trained can use its output).

#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"
#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/model/epsilon_model.h"

namespace dualrs::model {

class DiffusionDenoiser {
 public:
  /// \param model  the ε-network (its contract is checked on every call); a trainer may share it.
  /// \param schedule  the schedule the network was trained with.
  DiffusionDenoiser(std::shared_ptr<EpsilonModel> model, DiffusionSchedule schedule);

  const DiffusionSchedule& schedule() const { return schedule_; }
  EpsilonModel& epsilon_model() { return *model_; }

  /// t* and its coefficients for σ. \throws ConfigError when σ <= 0 or outside the schedule.
  DenoiseStep step(double sigma) const;

  /// x̂0 of noisy copies all drawn at one σ.
  /// \param x_noisy  float `[B, C, H, W]`: x + δ in pixel space. \param sigma  > 0.
  /// \return float32 `[B, C, H, W]` in [−1, 1] (model space), on the ε-model's device.
  /// \throws ConfigError (σ outside the schedule), ModelError (contract violations).
  at::Tensor denoise(const at::Tensor& x_noisy, double sigma);

  /// x̂0 of copies drawn at per-row noise levels (training with per-example σ). Rows with
  /// σ = 0 are clean images and come back as 2x − 1 without a network call for them.
  /// \param sigma  `[B]` noise levels >= 0 (any floating dtype, any device).
  at::Tensor denoise(const at::Tensor& x_noisy, const at::Tensor& sigma);

  /// "denoiser(<ε-model>, cosine T=4000)".
  std::string describe() const;

 private:
  std::shared_ptr<EpsilonModel> model_;
  DiffusionSchedule schedule_;
};

/// The denoiser a /denoiser section names. A native checkpoint's sidecar (`<stem>.json`
/// beside it, written by train-denoiser), when present, must name the same schedule, steps
/// and timestep rescaling as the config.
/// With /denoiser/optimize (the default) the ε-model runs as a frozen graph (load_epsilon_model;
/// `warning` is set when a TorchScript file cannot be frozen).
/// \throws ConfigError (unknown schedule, T out of range, sidecar mismatch), ModelError.
std::shared_ptr<DiffusionDenoiser> load_denoiser(const DenoiserConfig& config, std::string* warning = nullptr);

/// The schedule a /denoiser section names. \throws ConfigError.
DiffusionSchedule schedule_of(const DenoiserConfig& config);

}  // namespace dualrs::model
