// The finetune stage: the classifier fine-tuned under each example's estimated noise level
// sigma_c(x) (DualRS §5.2.2; docs/method.md §7), data-parallel over the ranks.

#include <torch/torch.h>

#include <cstdio>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/training_run.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/train/train_base.h"

namespace dualrs::pipeline {
using nlohmann::json;

namespace {

void run_finetune(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  // Every rank trains (data-parallel, dualrs/train/data_parallel.h); rank 0 writes the outputs.
  const Verbosity verbosity = ctx.verbosity;
  DualConfig dual;
  FinetuneConfig ft;
  io::SigmaEstimates estimates;
  std::optional<data::ImageDataset> dataset;
  std::shared_ptr<model::BaseModel> model;
  std::shared_ptr<model::BaseModel> trained;  // the classifier, behind the denoiser when there is one
  std::vector<double> sigma;
  TrainBaseConfig train;
  io::Provenance provenance;
  ctx.agreed([&] {
    dual = config.dual();
    ft = config.finetune();
    estimates = io::read_sigma_estimates(ft.estimates);
    if (estimates.sigma_candidates != dual.sigma_candidates) {
      throw ConfigError(config.source(), "/dual/sigma_candidates",
                        "sigma estimates " + ft.estimates + " were made with sigma_candidates " +
                            describe_sigmas(estimates.sigma_candidates) + " but the config has " + describe_sigmas(dual.sigma_candidates));
    }
    dataset = data::load_dataset(config.dataset());
    model = load_classifier(config, dataset->num_classes(), ctx.world, model::ModelUse::kTraining);
    // With a denoiser the classifier is fine-tuned on denoise(x + δ_c) at each example's σ_c(x).
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    trained = compose_base(config, model, config.model().input, denoiser, std::nullopt, "/finetune");
    for (auto i : estimates.sigma_index) sigma.push_back(dual.sigma_candidates.at(static_cast<std::size_t>(i)));
    train.epochs = ft.epochs;
    train.batch_size = ft.batch_size;
    train.lr = ft.lr;
    train.weight_decay = ft.weight_decay;
    train.seed = ft.seed;
    train.loader_threads = ft.loader_threads;
    if (ctx.is_root()) io::ensure_directory(out_dir);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"model", to_json(config.model())}, {"dual", to_json(dual)}, {"finetune", to_json(ft)}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    provenance = training_provenance("dualrs.finetune", "finetune", resolved, ft.seed, {ft.estimates});
    record_world(ctx, provenance);
  });
  TrainingRun run(ctx, {"finetune", out_dir, "model.pt", "model.json", "epoch,loss,accuracy,lr,seconds",
                        "/finetune/epochs", TrainingRanks::kEvery},
                  provenance);
  const std::int64_t first_epoch = run.start(model->module(), model->describe(), ft.epochs);
  auto on_epoch = [&](const train::EpochStats& e) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f", static_cast<long long>(e.epoch), e.loss, e.accuracy, e.lr, e.seconds);
    run.epoch_done(e.epoch, line);
    say(ctx, "finetune: epoch %lld/%lld loss %.4f noisy accuracy %.4f (%.1fs)", static_cast<long long>(e.epoch),
        static_cast<long long>(ft.epochs), e.loss, e.accuracy, e.seconds);
  };
  if (first_epoch <= ft.epochs) {
    ctx.agreed([&] {
      with_source(config, [&] {
        train::finetune_classifier(*trained, *dataset, estimates.idx, sigma, train, first_epoch, run.optimizer_path(),
                                   train_context(ctx, rank_device(ctx, config.model().device)), on_epoch, verbosity);
      });
    });
  }
  run.finish({{"arch", config.model().arch}, {"num_classes", dataset->num_classes()}, {"checkpoint", "model.pt"},
              {"examples", estimates.idx.size()}});
}


class FinetuneStage : public Stage {
 public:
  std::string name() const override { return "finetune"; }
  std::string summary() const override { return "fine-tune the classifier under the estimated per-example sigma"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "Fine-tunes the classifier with cross-entropy under each example's estimated noise level\n"
            "sigma_c(x) (DualRS §5.2.2); AdamW with /finetune's lr (default 1e-4) and weight_decay.\n"
            "Re-running with the same settings (any epoch count) resumes after the last finished epoch.",
            "dualrs finetune -c configs/mnist_dual.json -o runs/ft --estimates runs/sigma/sigma_estimates.h5\n"
            "  mpirun -np 2 dualrs finetune -c ... (data-parallel: /finetune/batch_size is the global batch, "
            "split over the ranks)"};
  }
  std::string config_help() const override { return "/dataset, /model, /dual, /finetune"; }
  std::string out_help() const override {
    return "output folder: model.pt, model.json, train_log.csv, train_state.json, optimizer.pt (data_schemas/models.md)";
  }
  std::vector<std::string> outputs() const override {
    return {"model.pt", "model.json", "train_log.csv", "train_state.json", "optimizer.pt"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "model", "dual", "finetune", "denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
      {"estimates", FlagType::kString, "/finetune/estimates", "sigma_estimates.h5 from estimate-sigma"},
      {"checkpoint", FlagType::kString, "/model/checkpoint", "classifier weights to start from",
       "/model/torchscript"},
      {"epochs", FlagType::kInt, "/finetune/epochs", "epochs, >= 1"},
      {"denoiser", FlagType::kString, "/denoiser/checkpoint", "native denoiser weights from train-denoiser (the config needs a /denoiser section)",
       "/denoiser/torchscript"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.training = true;
    t.slurm_template = "finetune";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] { config.dual(); config.finetune(); config.model(); });
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return finetune_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_finetune(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_finetune_stage() { return std::make_unique<FinetuneStage>(); }

}  // namespace dualrs::pipeline
