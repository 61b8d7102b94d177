#include "dualrs/core/diffusion_schedule.h"

#include <cmath>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"

namespace dualrs {
inline namespace core {
namespace {

constexpr double kPi = 3.14159265358979323846;

// improved-diffusion's cosine ᾱ(s) before normalisation (s = t/T in [0, 1]).
double cosine_alpha_bar(double s) {
  const double c = std::cos((s + 0.008) / 1.008 * kPi / 2.0);
  return c * c;
}

}  // namespace

ScheduleKind parse_schedule_kind(const std::string& name, const std::string& pointer) {
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "linear") return ScheduleKind::kLinear;
  throw ConfigError("", pointer, "unknown schedule '" + name + "' (cosine, linear)");
}

std::string to_string(ScheduleKind kind) { return kind == ScheduleKind::kCosine ? "cosine" : "linear"; }

double DiffusionSchedule::noise_ratio(std::int64_t t) const {
  const double a = alpha_bar.at(static_cast<std::size_t>(t));
  return std::sqrt(1.0 - a) / std::sqrt(a);
}

double DiffusionSchedule::network_timestep(std::int64_t t) const {
  return rescale_timesteps ? static_cast<double>(t) * (1000.0 / static_cast<double>(steps)) : static_cast<double>(t);
}

DiffusionSchedule make_schedule(ScheduleKind kind, std::int64_t steps, bool rescale_timesteps) {
  if (steps < 1) throw ConfigError("", "/denoiser/steps", "must be >= 1, got " + std::to_string(steps));
  DiffusionSchedule s;
  s.kind = kind;
  s.steps = steps;
  s.rescale_timesteps = rescale_timesteps;
  const auto n = static_cast<std::size_t>(steps);
  s.betas.resize(n);
  const double T = static_cast<double>(steps);
  if (kind == ScheduleKind::kCosine) {
    for (std::size_t i = 0; i < n; ++i) {
      const double beta = 1.0 - cosine_alpha_bar((static_cast<double>(i) + 1.0) / T) / cosine_alpha_bar(static_cast<double>(i) / T);
      s.betas[i] = std::min(beta, 0.999);
    }
  } else {
    const double scale = 1000.0 / T;
    const double start = scale * 1e-4;
    const double end = scale * 0.02;
    if (!(end < 1.0)) {
      throw ConfigError("", "/denoiser/steps",
                        "the linear schedule needs T >= 21 (beta_end = 0.02*1000/T must stay below 1), got T = " +
                            std::to_string(steps));
    }
    // numpy.linspace(start, end, T): start + i*step, with the last value exactly `end`.
    const double step = steps > 1 ? (end - start) / (T - 1.0) : 0.0;
    for (std::size_t i = 0; i < n; ++i) s.betas[i] = start + static_cast<double>(i) * step;
    if (steps > 1) s.betas[n - 1] = end;
  }
  s.alpha_bar.resize(n);
  double product = 1.0;
  for (std::size_t i = 0; i < n; ++i) {
    product *= 1.0 - s.betas[i];
    s.alpha_bar[i] = product;
  }
  return s;
}

DenoiseStep denoise_step(const DiffusionSchedule& schedule, double sigma, const std::string& pointer) {
  if (!(std::isfinite(sigma) && sigma > 0)) {
    throw ConfigError("", pointer, "sigma must be finite and > 0 for denoised smoothing, got " + format_decimal(sigma));
  }
  if (schedule.alpha_bar.empty()) throw ConfigError("", pointer, "the diffusion schedule is empty");
  const double target = 2.0 * sigma;  // model space [−1, 1] doubles the noise
  const std::int64_t last = schedule.steps - 1;
  if (schedule.noise_ratio(last) < target) {
    throw ConfigError("", pointer,
                      "sigma = " + format_decimal(sigma) + " is outside the " + to_string(schedule.kind) + " schedule with T = " +
                          std::to_string(schedule.steps) + ": no timestep reaches sqrt(1-abar)/sqrt(abar) >= 2*sigma = " +
                          format_decimal(target) + " (the largest ratio, at t = " + std::to_string(last) + ", is " +
                          format_decimal(schedule.noise_ratio(last)) + ")");
  }
  // The ratio increases with t (ᾱ decreases), so the first crossing is found by bisection.
  std::int64_t lo = 0, hi = last;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (schedule.noise_ratio(mid) >= target) hi = mid;
    else lo = mid + 1;
  }
  DenoiseStep step;
  step.sigma = sigma;
  step.t = lo;
  step.network_timestep = schedule.network_timestep(lo);
  const double a = schedule.alpha_bar[static_cast<std::size_t>(lo)];
  step.sqrt_alpha_bar = std::sqrt(a);
  step.sqrt_one_minus_alpha_bar = std::sqrt(1.0 - a);
  step.effective_sigma = step.sqrt_one_minus_alpha_bar / (2.0 * step.sqrt_alpha_bar);
  return step;
}

}  // namespace core
}  // namespace dualrs
