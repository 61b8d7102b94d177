#pragma once
/// \file
/// Noise schedules of the diffusion models used for denoised smoothing, and the one-step
/// denoising timestep t* for a smoothing noise level σ [DDS §3; docs/method.md §9]. Pure float64
/// arithmetic, no Torch, so `dualrs timestep` and its tests need no model.
///
/// Indexing follows improved-diffusion / guided-diffusion (`gaussian_diffusion.py`): betas
/// β_0 … β_{T−1}, ᾱ_t = Π_{i ≤ t} (1 − β_i) for t = 0 … T−1, so ᾱ_0 < 1 and array index t
/// corresponds to continuous time (t + 1)/T.

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs {
inline namespace core {

/// The β schedule family.
enum class ScheduleKind {
  /// Nichol & Dhariwal 2021 (improved-diffusion `betas_for_alpha_bar`):
  /// f(s) = cos²(((s + 0.008)/1.008)·π/2), β_i = min(1 − f((i+1)/T)/f(i/T), 0.999).
  /// Carlini et al.'s CIFAR-10 model: T = 4000.
  kCosine,
  /// Ho et al. 2020: β linearly spaced from 1e-4·(1000/T) to 0.02·(1000/T) over T steps (the
  /// improved-diffusion scaling; for T = 1000, 1e-4 … 0.02). Guided-diffusion's ImageNet model.
  kLinear,
};

/// "cosine" / "linear". \throws ConfigError (pointer `pointer`) on any other name.
ScheduleKind parse_schedule_kind(const std::string& name, const std::string& pointer = "/denoiser/schedule");
/// "cosine" / "linear".
std::string to_string(ScheduleKind kind);

/// A discrete diffusion schedule in float64.
struct DiffusionSchedule {
  ScheduleKind kind = ScheduleKind::kCosine;
  std::int64_t steps = 0;            ///< T
  bool rescale_timesteps = true;     ///< the network receives t·1000/T (improved-diffusion's `rescale_timesteps`)
  std::vector<double> betas;         ///< [T] β_t
  std::vector<double> alpha_bar;     ///< [T] ᾱ_t = Π_{i<=t} (1 − β_i)

  /// √(1 − ᾱ_t)/√ᾱ_t: the forward process's noise-to-signal ratio at t (model space [−1, 1]).
  double noise_ratio(std::int64_t t) const;
  /// The timestep value the network receives for index t: t·1000/T when rescale_timesteps,
  /// else t.
  double network_timestep(std::int64_t t) const;
};

/// Builds a schedule. \param steps T >= 1. \param rescale_timesteps see DiffusionSchedule.
/// \throws ConfigError when T < 1, or for the linear family when β would reach 1 (T < 21).
DiffusionSchedule make_schedule(ScheduleKind kind, std::int64_t steps, bool rescale_timesteps = true);

/// The one denoising step used for a smoothing noise level σ [DDS §3; docs/method.md §9].
struct DenoiseStep {
  double sigma = 0.0;              ///< the smoothing noise level, [0, 1]-pixel units
  std::int64_t t = 0;              ///< t* = the first t with √(1−ᾱ_t)/√ᾱ_t >= 2σ
  double network_timestep = 0.0;   ///< what the ε-network receives (see DiffusionSchedule)
  double sqrt_alpha_bar = 1.0;     ///< √ᾱ_{t*}
  double sqrt_one_minus_alpha_bar = 0.0;  ///< √(1 − ᾱ_{t*})
  /// √(1−ᾱ_{t*})/(2√ᾱ_{t*}): the pixel-space σ the forward process has at t* (>= σ, a hair
  /// above it); certification uses the nominal σ.
  double effective_sigma = 0.0;
};

/// t* and its coefficients for σ. Model space is [−1, 1] (x' = 2x − 1), so the ratio to
/// match is 2σ. \throws ConfigError naming `pointer` when σ is not finite and > 0, or when
/// no t* exists (2σ above the ratio at t = T − 1: σ outside the schedule's range).
DenoiseStep denoise_step(const DiffusionSchedule& schedule, double sigma, const std::string& pointer = "/sigma");

}  // namespace core
}  // namespace dualrs
