#include "dualrs/model/diffusion_denoiser.h"

#include <torch/torch.h>

#include <filesystem>
#include <vector>

#include "dualrs/core/error.h"

namespace dualrs::model {

DiffusionDenoiser::DiffusionDenoiser(std::shared_ptr<EpsilonModel> model, DiffusionSchedule schedule)
    : model_(std::move(model)), schedule_(std::move(schedule)) {
  DUALRS_CHECK(model_ != nullptr, ModelError, "a diffusion denoiser needs an epsilon-model");
  model_->set_training(false);
}

DenoiseStep DiffusionDenoiser::step(double sigma) const { return denoise_step(schedule_, sigma); }

at::Tensor DiffusionDenoiser::denoise(const at::Tensor& x_noisy, double sigma) {
  return denoise(x_noisy, torch::full({x_noisy.size(0)}, sigma, torch::kFloat64));
}

at::Tensor DiffusionDenoiser::denoise(const at::Tensor& x_noisy, const at::Tensor& sigma) {
  DUALRS_CHECK(x_noisy.dim() == 4, ModelError, "denoiser expects noisy images [B, C, H, W], got ", x_noisy.sizes());
  const std::int64_t b = x_noisy.size(0);
  DUALRS_CHECK(sigma.dim() == 1 && sigma.size(0) == b, ModelError, "denoiser expects one sigma per row ([", b, "]), got ",
               sigma.sizes());
  torch::NoGradGuard no_grad;  // frozen; not InferenceMode: a trained classifier may consume the output
  const at::Tensor levels = sigma.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* s = levels.data_ptr<double>();
  // Per-row coefficients in float64 (σ values repeat: one t* search per distinct σ).
  std::vector<double> scale(static_cast<std::size_t>(b)), noise_scale(static_cast<std::size_t>(b)),
      timestep(static_cast<std::size_t>(b));
  std::vector<std::int64_t> noisy_rows;
  double last_sigma = -1.0;
  DenoiseStep st;
  for (std::int64_t i = 0; i < b; ++i) {
    if (s[i] == 0.0) continue;  // a clean row
    if (s[i] != last_sigma) {
      st = step(s[i]);
      last_sigma = s[i];
    }
    noisy_rows.push_back(i);
    scale[static_cast<std::size_t>(i)] = st.sqrt_alpha_bar;
    noise_scale[static_cast<std::size_t>(i)] = st.sqrt_one_minus_alpha_bar;
    timestep[static_cast<std::size_t>(i)] = st.network_timestep;
  }
  at::Tensor x_model = x_noisy.to(torch::kFloat32) * 2.0f - 1.0f;  // model space [−1, 1]
  if (noisy_rows.empty()) return x_model.clamp(-1.0, 1.0);
  const at::Tensor rows = torch::tensor(noisy_rows, torch::kInt64);
  auto column = [&](const std::vector<double>& v) {
    return torch::tensor(v, torch::kFloat64).index_select(0, rows).to(torch::kFloat32);
  };
  const at::Tensor a = column(scale).view({-1, 1, 1, 1});
  const at::Tensor c = column(noise_scale).view({-1, 1, 1, 1});
  const at::Tensor t = column(timestep);
  const bool all_noisy = static_cast<std::int64_t>(noisy_rows.size()) == b;
  const at::Tensor x_sel = all_noisy ? x_model : x_model.index_select(0, rows);
  const at::Tensor x_t = a * x_sel;
  const at::Tensor eps = model_->epsilon(x_t, t);
  const at::Tensor x0 = ((x_t.to(eps.device()) - c.to(eps.device()) * eps) / a.to(eps.device())).clamp(-1.0, 1.0);
  if (all_noisy) return x0;
  at::Tensor out = x_model.to(eps.device()).clamp(-1.0, 1.0);
  out.index_copy_(0, rows.to(eps.device()), x0);
  return out;
}

std::string DiffusionDenoiser::describe() const {
  return "denoiser(" + model_->describe() + ", " + to_string(schedule_.kind) + " T=" + std::to_string(schedule_.steps) + ")";
}

DiffusionSchedule schedule_of(const DenoiserConfig& config) {
  return make_schedule(config.schedule, config.steps, config.rescale_timesteps);
}

namespace {
// A native checkpoint must be used with the schedule it was trained with.
void check_sidecar(const DenoiserConfig& config) {
  const std::filesystem::path sidecar = std::filesystem::path(config.checkpoint).replace_extension(".json");
  if (!std::filesystem::exists(sidecar)) return;
  const nlohmann::json meta = read_json_file(sidecar.string());
  std::vector<ConfigIssue> issues;
  const std::string what = "the checkpoint was trained with ";
  if (meta.contains("schedule") && meta["schedule"] != to_string(config.schedule)) {
    issues.push_back({"/denoiser/schedule", what + "schedule '" + meta["schedule"].get<std::string>() + "' (" +
                                                sidecar.string() + ") but the config says '" + to_string(config.schedule) + "'"});
  }
  if (meta.contains("steps") && meta["steps"] != config.steps) {
    issues.push_back({"/denoiser/steps", what + "steps = " + meta["steps"].dump() + " (" + sidecar.string() +
                                             ") but the config says " + std::to_string(config.steps)});
  }
  if (meta.contains("rescale_timesteps") && meta["rescale_timesteps"] != config.rescale_timesteps) {
    issues.push_back({"/denoiser/rescale_timesteps", what + "rescale_timesteps = " + meta["rescale_timesteps"].dump() + " (" +
                                                         sidecar.string() + ")"});
  }
  if (meta.contains("arch") && meta["arch"] != config.arch) {
    issues.push_back({"/denoiser/arch", what + "arch '" + meta["arch"].get<std::string>() + "' (" + sidecar.string() + ")"});
  }
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}
}  // namespace

std::shared_ptr<DiffusionDenoiser> load_denoiser(const DenoiserConfig& config, std::string* warning) {
  DiffusionSchedule schedule = schedule_of(config);
  if (!config.checkpoint.empty()) check_sidecar(config);
  return std::make_shared<DiffusionDenoiser>(load_epsilon_model(config, warning), std::move(schedule));
}

}  // namespace dualrs::model
