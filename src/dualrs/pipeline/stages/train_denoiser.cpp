// The train-denoiser stage: a small diffusion epsilon-model for denoised smoothing, trained
// with the DDPM objective around the timesteps of the pipeline's noise levels (Carlini et al.
// ICLR 2023; docs/method.md §9). Re-running with the same settings resumes after the last
// finished epoch (pipeline/training_run.h).

#include <torch/torch.h>

#include <cstdio>
#include <optional>
#include <set>

#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/training_run.h"
#include "dualrs/train/denoiser_trainer.h"

namespace dualrs::pipeline {
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

// Trains on rank 0 (the small MNIST ε-model needs no data parallelism), on that rank's device
// for /denoiser/device; the other ranks wait.
void train_denoiser_on_root(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
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

  io::ensure_directory(out_dir);
  json resolved = {{"name", config.doc().value("name", "")},
                   {"dataset", to_json(dataset_config)},
                   {"denoiser", to_json(*denoiser_config)},
                   {"train_denoiser", to_json(train)}};
  resolved["denoiser"].erase("checkpoint");  // what this stage writes, not what it reads
  io::Provenance provenance = training_provenance("dualrs.denoiser", "train-denoiser", resolved, train.seed);
  record_world(ctx, provenance);

  std::string header = "epoch,loss";
  for (double s : train.sigmas) header += ",val_rmse_sigma_" + format_decimal(s);
  header += ",lr,seconds";
  TrainingRun run(ctx, {"train-denoiser", out_dir, "denoiser.pt", "denoiser.json", header, "/train_denoiser/epochs",
                        TrainingRanks::kRootOnly},
                  provenance);
  const std::int64_t first_epoch = run.start(eps_model->module(), eps_model->describe(), train.epochs);
  auto on_epoch = [&](const train::DenoiserEpochStats& e) {
    std::string line = std::to_string(e.epoch);
    char number[64];
    std::snprintf(number, sizeof number, ",%.9g", e.loss);
    line += number;
    for (double r : e.val_rmse) {
      std::snprintf(number, sizeof number, ",%.6f", r);
      line += number;
    }
    std::snprintf(number, sizeof number, ",%.6g,%.3f", e.lr, e.seconds);
    line += number;
    run.epoch_done(e.epoch, line);
    if (ctx.talks()) {
      std::string rmse;
      for (std::size_t i = 0; i < e.val_rmse.size(); ++i) {
        std::snprintf(number, sizeof number, " %s:%.4f", format_decimal(train.sigmas[i]).c_str(), e.val_rmse[i]);
        rmse += number;
      }
      say(ctx, "train-denoiser: epoch %lld/%lld eps-mse %.4f held-out x0 rmse by sigma%s (%.1fs)",
          static_cast<long long>(e.epoch), static_cast<long long>(train.epochs), e.loss, rmse.c_str(), e.seconds);
    }
  };
  if (first_epoch <= train.epochs) {
    with_source(config, [&] {
      train::train_denoiser(denoiser, dataset, indices, train.sigmas, train, first_epoch, run.optimizer_path(), on_epoch,
                            verbosity);
    });
  }
  json window_json = json::array();
  for (std::size_t i = 0; i < windows.size(); ++i) {
    window_json.push_back({{"sigma", train.sigmas[i]}, {"t_star", denoise_step(schedule, train.sigmas[i]).t},
                           {"t_min", windows[i].first}, {"t_max", windows[i].second}});
  }
  // The sidecar load_denoiser checks: a checkpoint is only used with the schedule it learned.
  run.finish({{"arch", denoiser_config->arch}, {"schedule", to_string(denoiser_config->schedule)},
              {"steps", denoiser_config->steps}, {"rescale_timesteps", denoiser_config->rescale_timesteps},
              {"checkpoint", "denoiser.pt"}, {"sigmas", train.sigmas}, {"timestep_windows", window_json},
              {"examples", indices.size()}});
}

class TrainDenoiserStage : public Stage {
 public:
  std::string name() const override { return "train-denoiser"; }
  std::string summary() const override {
    return "train a small diffusion epsilon-model for denoised smoothing (DDPM objective)";
  }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "Trains a native epsilon-model (/denoiser/arch) with the DDPM objective, timesteps drawn around\n"
            "t*(sigma) of each noise level the pipeline denoises at (Sigma and sigma_e, or /train_denoiser/sigmas).\n"
            "A checkpoint, the log and the resume state are written after every epoch; re-running with the\n"
            "same settings (any epoch count) resumes after the last finished epoch.",
            "dualrs train-denoiser -c configs/mnist_denoised.json -o runs/denoiser --epochs 4"};
  }
  std::string config_help() const override { return "/dataset, /denoiser (arch, schedule, steps), /train_denoiser"; }
  std::string out_help() const override {
    return "output folder: denoiser.pt, denoiser.json, train_log.csv, train_state.json, optimizer.pt (re-running resumes)";
  }
  std::vector<std::string> outputs() const override {
    return {"denoiser.pt", "denoiser.json", "train_log.csv", "train_state.json", "optimizer.pt"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "dual", "denoiser", "train_denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
        {"epochs", FlagType::kInt, "/train_denoiser/epochs", "training epochs, >= 1"},
        {"batch-size", FlagType::kInt, "/train_denoiser/batch_size", "images per optimizer step, >= 1"},
        {"lr", FlagType::kDouble, "/train_denoiser/lr", "AdamW learning rate, > 0"},
        {"sigmas", FlagType::kDoubleList, "/train_denoiser/sigmas", "comma list: noise levels whose t* to train around "
                                                                   "(default: /dual sigma_candidates + sigma_e)"},
        {"end", FlagType::kInt, "/train_denoiser/selection/end", "train on the first END images of the split; -1 = all (default)"},
        {"seed", FlagType::kUInt, "/train_denoiser/seed", "seed of the initial weights, shuffling, timesteps and noise"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.root_only = true;
    t.slurm_template = "train";
    t.slurm_gpus = "per-node";  // one process on one GPU
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] {
      config.train_denoiser();
      config.denoiser();
      config.dataset();
    });
  }
  void run(StageContext& ctx, const StageRun& run) const override {
    ctx.on_root([&] { train_denoiser_on_root(ctx, run.config, run.out_dir); });
  }
};

}  // namespace

std::unique_ptr<Stage> make_train_denoiser_stage() { return std::make_unique<TrainDenoiserStage>(); }

}  // namespace dualrs::pipeline
