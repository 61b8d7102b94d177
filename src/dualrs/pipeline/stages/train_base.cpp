// The train-base stage: a base classifier trained under Gaussian noise augmentation (Cohen et
// al. §4; docs/method.md §12), data-parallel over the ranks.

#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/base_model.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/training_run.h"
#include "dualrs/train/train_base.h"

namespace dualrs::pipeline {

namespace {
// Every rank trains (data-parallel, dualrs/train/data_parallel.h); rank 0 writes the outputs.
void train_base_on_every_rank(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  const Verbosity verbosity = ctx.verbosity;
  TrainBaseConfig train;
  ModelConfig model_config;
  std::optional<data::ImageDataset> dataset;
  std::vector<std::int64_t> indices;
  std::shared_ptr<model::BaseModel> model;
  std::shared_ptr<model::BaseModel> trained;  // model, behind the denoiser when there is one
  std::string device = "cpu";                  // this rank's device for the model
  io::Provenance provenance;
  ctx.agreed([&] {
    train = config.train_base();
    model_config = config.model();
    try {
      train::validate(train);
    } catch (const ConfigError& e) {
      throw ConfigError(config.source(), e.issues());
    }
    if (model_config.arch.empty()) {
      throw ConfigError(config.source(), "/model/arch", "train-base trains a native architecture; set /model/arch");
    }
    const DatasetConfig dataset_config = config.dataset();
    DataSelection selected = load_selection(config, train.selection, "/train_base/selection");
    dataset.emplace(std::move(selected.dataset));
    indices = std::move(selected.indices);
    // Fresh weights from the config's seed: LibTorch seeds its default generator
    // nondeterministically, which made every run start elsewhere.
    torch::manual_seed(train.seed);
    model = model::make_native_model(model_config.arch, model_config.num_classes);
    device = rank_device(ctx, model_config.device);
    model->to_device(device);  // after the seeded initialisation: the same weights on every device
    // With a denoiser and noisy training (σ > 0) the classifier learns on denoise(x + δ) (DDS);
    // σ = 0 trains on clean images and needs no denoiser.
    const bool noisy = !train.sigma || *train.sigma > 0;
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = noisy ? load_denoiser(config, ctx.world) : nullptr;
    trained = compose_base(config, model, model_config.input, denoiser, std::nullopt, "/train_base");
    if (ctx.is_root()) io::ensure_directory(out_dir);
    nlohmann::json resolved = {{"name", config.doc().value("name", "")},
                               {"dataset", to_json(dataset_config)},
                               {"model", to_json(model_config)},
                               {"train_base", to_json(train)}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    // train-base never reads /model/checkpoint (it writes out_dir/model.pt); a job's config that
    // names this stage's own output there must not put its digest into the resume key.
    resolved["model"].erase("checkpoint");
    provenance = training_provenance("dualrs.train_base", "train-base", resolved, train.seed);
    record_world(ctx, provenance);
  });

  TrainingRun run(ctx, {"train-base", out_dir, "model.pt", "model.json", "epoch,loss,accuracy,lr,seconds",
                        "/train_base/epochs", TrainingRanks::kEvery},
                  provenance);
  const std::int64_t first_epoch = run.start(model->module(), model->describe(), train.epochs);
  auto on_epoch = [&](const train::EpochStats& s) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f", static_cast<long long>(s.epoch), s.loss, s.accuracy,
                  s.lr, s.seconds);
    run.epoch_done(s.epoch, line,
                   {{"epoch", s.epoch}, {"loss", s.loss}, {"accuracy", s.accuracy}, {"lr", s.lr}, {"seconds", s.seconds}});
    say(ctx, "train-base: epoch %lld/%lld loss %.4f noisy-train accuracy %.4f (%.1fs)", static_cast<long long>(s.epoch),
        static_cast<long long>(train.epochs), s.loss, s.accuracy, s.seconds);
  };
  if (first_epoch <= train.epochs) {
    ctx.agreed([&] {
      train::train_base(*trained, *dataset, indices, train, first_epoch, run.optimizer_path(), train_context(ctx, device),
                        on_epoch, verbosity);
    });
  }
  run.finish({{"arch", model_config.arch},
              {"num_classes", model_config.num_classes},
              {"checkpoint", "model.pt"},
              {"examples", indices.size()},
              {"history", run.history()}});
}

class TrainBaseStage : public Stage {
 public:
  std::string name() const override { return "train-base"; }
  std::string summary() const override { return "train a base classifier with Gaussian noise augmentation"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "Trains a native classifier (/model/arch) with Gaussian noise augmentation (Cohen et al. §4):\n"
            "every training image gets noise of one sigma, or of a sigma drawn per example from\n"
            "sigma_candidates. AdamW; a checkpoint, the log and the resume state are written after every\n"
            "epoch; re-running with the same settings (any epoch count) resumes after the last finished one.",
            "dualrs train-base -c configs/mnist.json -o runs/base --sigma-candidates 0.25,0.5,1.0 --epochs 6\n"
            "  mpirun -np 2 dualrs train-base -c configs/mnist.json -o runs/base   (data-parallel)"};
  }
  std::string config_help() const override { return "/dataset, /model (arch), /train_base"; }
  std::string out_help() const override {
    return "output folder: model.pt, model.json, train_log.csv, train_state.json, optimizer.pt (data_schemas/models.md)";
  }
  std::vector<std::string> outputs() const override {
    return {"model.pt", "model.json", "train_log.csv", "train_state.json", "optimizer.pt"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "model", "train_base", "denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
        {"epochs", FlagType::kInt, "/train_base/epochs", "training epochs, >= 1"},
        {"batch-size", FlagType::kInt, "/train_base/batch_size", "global batch: examples per optimizer step over all ranks "
                                                                 "(under mpirun -np K each rank takes a slice), >= 1"},
        {"lr", FlagType::kDouble, "/train_base/lr", "AdamW learning rate, > 0"},
        {"sigma", FlagType::kDouble, "/train_base/sigma", "one training noise level, std in [0,1]-pixel units, >= 0 "
                                                          "(0 = clean images); replaces sigma_candidates",
         "/train_base/sigma_candidates"},
        {"sigma-candidates", FlagType::kDoubleList, "/train_base/sigma_candidates", "comma list, e.g. 0.25,0.5,1.0: each "
                                                                                   "example's noise level is drawn uniformly "
                                                                                   "from these; replaces sigma",
         "/train_base/sigma"},
        {"split", FlagType::kString, "/train_base/selection/split", "split to train on"},
        {"end", FlagType::kInt, "/train_base/selection/end", "train on the first END examples of the split; -1 = all (default)"},
        {"seed", FlagType::kUInt, "/train_base/seed", "seed of the initial weights, shuffling and training noise, integer "
                                                      "in [0, 2^53)"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.training = true;
    t.slurm_template = "train";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] {
      config.train_base();
      config.model();
      config.dataset();
    });
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return train_base_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { train_base_on_every_rank(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_train_base_stage() { return std::make_unique<TrainBaseStage>(); }

}  // namespace dualrs::pipeline
