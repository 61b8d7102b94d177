// dualrs timestep and check-model: tools of denoised smoothing (docs/method.md §9).

#include <cmath>
#include <iostream>

#include "args.h"
#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/core/error.h"
#include "dualrs/model/contract.h"

namespace dualrs::app {
using nlohmann::json;

namespace {

json step_json(const DiffusionSchedule& schedule, const DenoiseStep& step) {
  return {{"schedule", to_string(schedule.kind)},
          {"steps", schedule.steps},
          {"rescale_timesteps", schedule.rescale_timesteps},
          {"sigma", step.sigma},
          {"t", step.t},
          {"network_timestep", step.network_timestep},
          {"sqrt_alpha_bar", step.sqrt_alpha_bar},
          {"sqrt_one_minus_alpha_bar", step.sqrt_one_minus_alpha_bar},
          {"effective_sigma", step.effective_sigma}};
}

}  // namespace

int cmd_timestep(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("schedule", po::value<std::string>()->required(), "cosine (improved-diffusion, e.g. CIFAR-10 with --steps 4000) or linear (e.g. ImageNet, --steps 1000)")
      ("steps", po::value<long long>()->required(), "T, the number of diffusion steps")
      ("sigma", po::value<double>()->required(), "smoothing noise level sigma, [0,1]-pixel units (> 0)")
      ("rescale-timesteps", po::value<bool>()->default_value(true),
       "the network receives t*1000/T (improved-diffusion's rescale_timesteps); 0 = t as is");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--schedule cosine|linear --steps T --sigma S",
                  "dualrs timestep --schedule cosine --steps 4000 --sigma 0.25")) {
    return 0;
  }
  inv.ctx->on_root([&] {
  DiffusionSchedule schedule;
  DenoiseStep step;
  try {
    schedule = make_schedule(parse_schedule_kind(vm["schedule"].as<std::string>(), "--schedule"), vm["steps"].as<long long>(),
                             vm["rescale-timesteps"].as<bool>());
    step = denoise_step(schedule, vm["sigma"].as<double>(), "--sigma");
  } catch (const ConfigError& e) {
    std::vector<ConfigIssue> issues = e.issues();
    for (auto& issue : issues) {
      if (issue.pointer == "/denoiser/steps") issue.pointer = "--steps";
    }
    throw ConfigError("command line", std::move(issues));
  }
  std::cout << step_json(schedule, step).dump() << '\n';
  });
  return 0;
}

int cmd_check_model(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("model", po::value<std::string>()->required(), "TorchScript file to check")
      ("contract", po::value<std::string>()->required(),
       "classifier ([B,C,H,W] in [0,1] -> [B,K]), classifier-pm1 (input in [-1,1]) or epsilon "
       "(x_t [B,C,H,W] in [-1,1], t [B] -> [B,C,H,W] or [B,2C,H,W]); see data_schemas/models.md")
      ("input-shape", po::value<std::string>()->default_value("3,32,32"), "C,H,W of the dummy batch (pixels)")
      ("num-classes", po::value<long long>()->default_value(0), "classifiers: expected K (0 = accept any K and report it)")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu, cuda or cuda:N");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("model", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, "MODEL --contract NAME [--input-shape C,H,W] [--num-classes K]",
                  "dualrs check-model exported/vit_b16.pt --contract classifier-pm1 --input-shape 3,224,224 --num-classes 10")) {
    return 0;
  }
  inv.ctx->on_root([&] {
  const model::ModelContract contract = model::parse_model_contract(vm["contract"].as<std::string>(), "--contract");
  std::vector<std::int64_t> chw;
  for (double v : pipeline::parse_number_list(vm["input-shape"].as<std::string>(), "--input-shape")) {
    if (!(v >= 1 && v == std::floor(v))) throw ConfigError("command line", "--input-shape", "sizes must be positive integers (C,H,W)");
    chw.push_back(static_cast<std::int64_t>(v));
  }
  if (chw.size() != 3) throw ConfigError("command line", "--input-shape", "expected C,H,W (three sizes)");
  if (vm["num-classes"].as<long long>() < 0) throw ConfigError("command line", "--num-classes", "must be >= 0");
  const model::ContractReport report = model::check_model_contract(
      vm["model"].as<std::string>(), contract, chw, vm["num-classes"].as<long long>(), vm["device"].as<std::string>());
  json out = {{"model", report.path},
              {"contract", model::to_string(report.contract)},
              {"ok", true},
              {"input_shape", report.input_shape},
              {"output_shape", report.output_shape},
              {"output_dtype", report.output_dtype},
              {"max_row_difference", report.max_row_difference}};
  if (contract == model::ModelContract::kEpsilon) out["learned_sigma"] = report.learned_sigma;
  else out["num_classes"] = report.num_classes;
  std::cout << out.dump() << '\n';
  });
  return 0;
}

}  // namespace dualrs::app
