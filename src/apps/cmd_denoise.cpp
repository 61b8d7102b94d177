// Denoised smoothing commands (METHOD.md §3): train-denoiser, timestep, check-model.

#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "common.h"
#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/dist/world.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/contract.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/train/denoiser_trainer.h"
#include "stage_support.h"

namespace dualrs::app {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Σ ∪ {σ_e}, sorted, without repeats: the noise levels the pipeline denoises at.
std::vector<double> pipeline_sigmas(const ExperimentConfig& config) {
  if (!config.has("dual")) {
    throw ConfigError(config.source(), "/train_denoiser/sigmas",
                      "missing: list the noise levels to train for, or give a /dual section (sigma_candidates, sigma_e)");
  }
  const DualConfig dual = config.dual();
  std::set<double> levels(dual.sigma_candidates.begin(), dual.sigma_candidates.end());
  levels.insert(dual.sigma_e);
  return {levels.begin(), levels.end()};
}

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

namespace {
// Trains on rank 0 (the small MNIST ε-model needs no data parallelism), on that rank's device
// for /denoiser/device; the other ranks wait.
void train_denoiser_on_root(const StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  const Verbosity verbosity = ctx.verbosity;
  std::optional<DenoiserConfig> denoiser_config = config.denoiser();
  if (!denoiser_config) {
    throw ConfigError(config.source(), "/denoiser", "missing section: train-denoiser trains /denoiser/arch with its schedule and steps");
  }
  std::string device;
  with_source(config, [&] { device = rank_device(ctx, denoiser_config->device, "/denoiser/device"); });
  if (denoiser_config->arch.empty()) {
    throw ConfigError(config.source(), "/denoiser/arch", "train-denoiser trains a native epsilon-model; set 'arch' (mnist_unet)");
  }
  denoiser_config->checkpoint.clear();  // the output, not an input
  TrainDenoiserConfig train = config.train_denoiser();
  with_source(config, [&] { train::validate(train); });
  if (train.sigmas.empty()) train.sigmas = pipeline_sigmas(config);
  DiffusionSchedule schedule;
  std::vector<std::pair<std::int64_t, std::int64_t>> windows;
  with_source(config, [&] {
    schedule = model::schedule_of(*denoiser_config);
    windows = train::timestep_windows(schedule, train.sigmas, train.t_window);
  });
  const DatasetConfig dataset_config = config.dataset();
  const data::ImageDataset dataset = data::load_dataset(dataset_config);
  const auto indices =
      data::select_indices(dataset_config, dataset.size(), train.selection, config.source(), "/train_denoiser/selection");
  std::shared_ptr<model::EpsilonModel> eps_model;
  with_source(config, [&] {
    // Fresh weights from the config's seed, as train-base does: without it two runs of the
    // same config started from different weights.
    torch::manual_seed(train.seed);
    eps_model = model::make_native_epsilon_model(denoiser_config->arch);
    eps_model->to_device(device);  // after the initialisation: the same weights on every device
  });
  model::DiffusionDenoiser denoiser(eps_model, schedule);

  const fs::path dir(out_dir);
  io::ensure_directory(out_dir);
  const std::string checkpoint = (dir / "denoiser.pt").string();
  const std::string optimizer = (dir / "optimizer.pt").string();
  const std::string state_path = (dir / "train_state.json").string();
  json resolved = {{"name", config.doc().value("name", "")},
                   {"dataset", to_json(dataset_config)},
                   {"denoiser", to_json(*denoiser_config)},
                   {"train_denoiser", to_json(train)}};
  resolved["denoiser"].erase("checkpoint");  // what this stage writes, not what it reads
  io::Provenance provenance = stage_provenance("dualrs.denoiser", "train-denoiser", resolved, train.seed, 0);
  // Resuming needs the same settings except the number of epochs (the learning rate and the
  // random streams depend on the epoch only), so a finished run can also be extended.
  json resume_config = resolved;
  resume_config["train_denoiser"].erase("epochs");
  const std::string resume_key = io::sha256_hex(resume_config.dump());

  std::int64_t first_epoch = 1;
  std::string log = "epoch,loss";
  for (double s : train.sigmas) log += ",val_rmse_sigma_" + format_decimal(s);
  log += ",lr,seconds\n";
  if (fs::exists(state_path) && fs::exists(checkpoint)) {
    const json state = read_json_file(state_path);
    if (state.value("resume_key", "") == resume_key) {
      model::load_module_checkpoint(*eps_model->module(), eps_model->describe(), checkpoint);
      first_epoch = state.value("epoch", 0) + 1;
      log = state.value("log", log);
      if (verbosity != Verbosity::kQuiet) {
        std::fprintf(stderr, "train-denoiser: resuming after epoch %lld\n", static_cast<long long>(first_epoch - 1));
      }
    }
  }
  json history = json::array();
  auto on_epoch = [&](const train::DenoiserEpochStats& e) {
    std::string line = std::to_string(e.epoch);
    char number[64];
    std::snprintf(number, sizeof number, ",%.9g", e.loss);
    line += number;
    for (double r : e.val_rmse) {
      std::snprintf(number, sizeof number, ",%.6f", r);
      line += number;
    }
    std::snprintf(number, sizeof number, ",%.6g,%.3f\n", e.lr, e.seconds);
    line += number;
    log += line;
    model::save_module_checkpoint(*eps_model->module(), eps_model->describe(), checkpoint);
    io::write_file_atomic((dir / "train_log.csv").string(), log);
    io::write_file_atomic(state_path, json({{"epoch", e.epoch}, {"resume_key", resume_key}, {"log", log}}).dump(2) + "\n");
    if (verbosity != Verbosity::kQuiet) {
      std::string rmse;
      for (std::size_t i = 0; i < e.val_rmse.size(); ++i) {
        std::snprintf(number, sizeof number, " %s:%.4f", format_decimal(train.sigmas[i]).c_str(), e.val_rmse[i]);
        rmse += number;
      }
      std::fprintf(stderr, "train-denoiser: epoch %lld/%lld eps-mse %.4f held-out x0 rmse by sigma%s (%.1fs)\n",
                   static_cast<long long>(e.epoch), static_cast<long long>(train.epochs), e.loss, rmse.c_str(), e.seconds);
    }
  };
  if (first_epoch <= train.epochs) {
    with_source(config, [&] {
      train::train_denoiser(denoiser, dataset, indices, train.sigmas, train, first_epoch, optimizer, on_epoch, verbosity);
    });
  }
  provenance.finished_utc = io::utc_now();
  json window_json = json::array();
  for (std::size_t i = 0; i < windows.size(); ++i) {
    window_json.push_back({{"sigma", train.sigmas[i]}, {"t_star", denoise_step(schedule, train.sigmas[i]).t},
                           {"t_min", windows[i].first}, {"t_max", windows[i].second}});
  }
  // The sidecar load_denoiser checks: a checkpoint is only used with the schedule it learned.
  io::write_file_atomic((dir / "denoiser.json").string(),
                        json({{"arch", denoiser_config->arch}, {"schedule", denoiser_config->schedule},
                              {"steps", denoiser_config->steps}, {"rescale_timesteps", denoiser_config->rescale_timesteps},
                              {"checkpoint", "denoiser.pt"}, {"sigmas", train.sigmas}, {"timestep_windows", window_json},
                              {"examples", indices.size()}, {"provenance", io::to_json(provenance)}})
                                .dump(2) + "\n");
}
}  // namespace

void run_train_denoiser(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  ctx.on_root([&] { train_denoiser_on_root(ctx, config, out_dir); });
}

int cmd_train_denoiser(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON) with dataset, denoiser (arch, schedule, steps), train_denoiser")
      ("out,o", po::value<std::string>()->required(), "output folder: denoiser.pt, denoiser.json, train_log.csv (re-running resumes)")
      ("epochs", po::value<long long>(), "training epochs (default 10)")
      ("batch-size", po::value<long long>(), "images per optimizer step (default 128)")
      ("lr", po::value<double>(), "AdamW learning rate (default 0.002)")
      ("sigmas", po::value<std::string>(), "comma list: noise levels whose t* to train around (default: /dual sigma_candidates + sigma_e)")
      ("end", po::value<long long>(), "train on the first END images of the split")
      ("seed", po::value<unsigned long long>(), "seed of shuffling, timesteps and noise (default 0)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs train-denoiser -c configs/mnist_denoised.json -o runs/denoiser --epochs 4")) {
    return 0;
  }
  const auto config = load_config(inv, vm["config"].as<std::string>(), [&] {
    return overrides_from_flags(vm, {{"epochs", "/train_denoiser/epochs", T::kInt},
                                {"batch-size", "/train_denoiser/batch_size", T::kInt},
                                {"lr", "/train_denoiser/lr", T::kDouble},
                                {"sigmas", "/train_denoiser/sigmas", T::kDoubleList},
                                {"end", "/train_denoiser/selection/end", T::kInt},
                                {"seed", "/train_denoiser/seed", T::kUInt}});
  });
  run_train_denoiser(*inv.ctx, config, vm["out"].as<std::string>());
  return 0;
}

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
  for (double v : parse_number_list(vm["input-shape"].as<std::string>(), "--input-shape")) {
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
