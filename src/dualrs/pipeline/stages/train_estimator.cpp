// The train-estimator stage: the variance estimator on the labels, data-parallel over the
// ranks (DualRS §5.2; docs/method.md §6). Re-running with the same settings resumes after the
// last finished epoch (pipeline/training_run.h).

#include <torch/torch.h>

#include <cstdio>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/pipeline/training_run.h"
#include "dualrs/train/estimator_trainer.h"

namespace dualrs::pipeline {
using nlohmann::json;

namespace {

// Refuses labels made for another Σ, dataset, split or labelling config, naming the mismatch.
void check_labels_match(const io::LabelSet& labels, const std::string& path, const ExperimentConfig& config,
                        const DualConfig& dual) {
  std::vector<ConfigIssue> issues;
  const std::string what = "labels file " + path;
  if (labels.sigma_candidates != dual.sigma_candidates) {
    issues.push_back({"/dual/sigma_candidates", what + " was made with sigma_candidates " + describe_sigmas(labels.sigma_candidates) +
                                                    " but the config has " + describe_sigmas(dual.sigma_candidates)});
  }
  const DatasetConfig dataset = config.dataset();
  const std::string name = data::dataset_name(dataset);
  if (labels.dataset != name) {
    issues.push_back({"/dataset/name", what + " is for dataset '" + labels.dataset + "' but the config uses '" + name + "'"});
  }
  const LabelConfig label = config.label();
  if (labels.split != label.selection.split) {
    issues.push_back({"/label/selection/split", what + " labels split '" + labels.split + "' but the config labels '" +
                                                    label.selection.split + "'"});
  }
  if (labels.n != label.n || labels.alpha != label.alpha) {
    issues.push_back({"/label", what + " was made with n = " + std::to_string(labels.n) + ", alpha = " +
                                    format_decimal(labels.alpha) + " but the config says n = " + std::to_string(label.n) +
                                    ", alpha = " + format_decimal(label.alpha)});
  }
  if (labels.routing != dual.routing()) {
    issues.push_back({"/dual/experts", what + (labels.routing ? " was made with experts (routing)" : " was made without experts") +
                                           " but the config " + (dual.routing() ? "routes to experts" : "has no experts")});
  }
  // Labels of the denoised classifier do not train a plain estimator, nor the other way round.
  const nlohmann::json made_with = labels.provenance.value("config", nlohmann::json::object());
  const bool labels_denoised = made_with.is_object() && made_with.contains("denoiser");
  if (labels_denoised != config.has("denoiser")) {
    issues.push_back({"/denoiser", what + (labels_denoised ? " was made with a denoiser" : " was made without a denoiser") +
                                       " but the config " + (config.has("denoiser") ? "has one" : "has none")});
  }
  if (!issues.empty()) throw ConfigError(config.source(), std::move(issues));
}

void run_train_estimator(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  // Every rank trains (data-parallel, dualrs/train/data_parallel.h); rank 0 writes the outputs.
  const Verbosity verbosity = ctx.verbosity;
  DualConfig dual;
  std::string labels_path, init_checkpoint;
  train::EstimatorTrainConfig train_config;
  train::EstimatorTrainingSet set;
  std::optional<DataSelection> data;
  std::shared_ptr<model::BaseModel> estimator;
  std::shared_ptr<model::BaseModel> trained;  // the estimator, behind the denoiser when there is one
  std::string device = "cpu";                  // this rank's device for the estimator
  io::Provenance provenance;
  ctx.agreed([&] {
    dual = config.dual();
    train_config = config.train_estimator();
    labels_path = train_config.labels;
    init_checkpoint = train_config.init_checkpoint;
    if (labels_path.empty()) throw ConfigError(config.source(), "/train_estimator/labels", "missing: the labels file from 'dualrs label'");
    const io::LabelSet labels = io::read_labels(labels_path);
    check_labels_match(labels, labels_path, config, dual);
    const auto s = labels.num_sigmas();
    set = train::estimator_training_set(labels.sigma_candidates, labels.idx, labels.radii, labels.best, labels.weight_e,
                                        train_config.rebalance,
                                        train::label_radius_cap(labels.sigma_candidates.back(), labels.n, labels.alpha));
    if (set.idx.empty()) {
      DUALRS_THROW(DataError, "labels file ", labels_path, ": every row has radius 0 at every sigma, nothing to train on "
                   "(is the base classifier trained? is the split right?)");
    }
    if (dual.estimator.arch.empty()) {
      throw ConfigError(config.source(), "/dual/estimator/arch", "train-estimator trains a native architecture; set it");
    }
    data.emplace(DataSelection{data::load_dataset(config.dataset()), {}});
    torch::manual_seed(train_config.seed);  // fresh weights from the config's seed (see train-base)
    estimator = model::make_native_model(dual.estimator.arch, s);
    device = rank_device(ctx, dual.estimator.device, "/dual/estimator/device");
    estimator->to_device(device);
    // With a denoiser the estimator trains on denoise(x + δ_e) at σ_e, as it is used (docs/method.md §6).
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    trained = compose_base(config, estimator, dual.estimator.input, denoiser, dual.sigma_e, "/dual/sigma_e");
    if (ctx.is_root()) io::ensure_directory(out_dir);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"train_estimator", to_json(train_config)},
                     {"labels", {{"path", labels_path}, {"config_sha256", labels.provenance.value("config_sha256", "")}}}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    // The estimator weights are what this stage writes, not what it reads.
    resolved["dual"]["estimator"].erase("checkpoint");
    provenance = training_provenance("dualrs.estimator", "train-estimator", resolved, train_config.seed, {labels_path});
    record_world(ctx, provenance);
  });
  TrainingRun run(ctx, {"train-estimator", out_dir, "estimator.pt", "estimator.json",
                        "epoch,loss,ce,consistency,train_selection_accuracy,val_selection_accuracy,lr,seconds",
                        "/train_estimator/epochs", TrainingRanks::kEvery},
                  provenance);
  // Every rank loads the checkpoint when resuming (and, in the trainer, the optimizer state);
  // the trainer broadcasts rank 0's weights.
  const std::int64_t first_epoch = run.start(estimator->module(), estimator->describe(), train_config.epochs);
  if (!run.resumed() && !init_checkpoint.empty()) {
    ctx.agreed([&] {
      // Feature layers from the noise-trained classifier; the |Σ|-unit output layer stays fresh.
      auto classifier = model::make_native_model(dual.estimator.arch, config.model().num_classes);
      model::load_checkpoint(*classifier, init_checkpoint);
      const std::int64_t copied = model::copy_matching_weights(*estimator, *classifier);
      say(ctx, "train-estimator: %lld tensors initialised from %s", static_cast<long long>(copied),
          init_checkpoint.c_str());
    });
  }
  auto on_epoch = [&](const train::EstimatorEpochStats& e) {
    char line[320];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.6f,%.6f,%.6g,%.3f", static_cast<long long>(e.epoch), e.loss,
                  e.ce, e.consistency, e.train_selection_accuracy, e.val_selection_accuracy, e.lr, e.seconds);
    run.epoch_done(e.epoch, line);
    say(ctx, "train-estimator: epoch %lld/%lld loss %.4f sigma-selection accuracy train %.3f val %.3f (%.1fs)",
        static_cast<long long>(e.epoch), static_cast<long long>(train_config.epochs), e.loss, e.train_selection_accuracy,
        e.val_selection_accuracy, e.seconds);
  };
  if (first_epoch <= train_config.epochs) {
    ctx.agreed([&] {
      train::train_estimator(*trained, data->dataset, set, train_config, first_epoch, run.optimizer_path(),
                             train_context(ctx, device), on_epoch, verbosity);
    });
  }
  run.finish({{"arch", dual.estimator.arch}, {"num_classes", set.sigma_candidates.size()},
              {"sigma_candidates", dual.sigma_candidates}, {"sigma_e", dual.sigma_e},
              {"checkpoint", "estimator.pt"}, {"examples", set.idx.size()}});
}


class TrainEstimatorStage : public Stage {
 public:
  std::string name() const override { return "train-estimator"; }
  std::string summary() const override { return "train the variance estimator on labels (soft CE + consistency)"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "Trains the variance estimator (DualRS §5.2): inputs with noise sigma_e, soft labels\n"
            "softmax(R_c(x, sigma_i)), soft cross-entropy + consistency (lambda, eta), weights w_e and w_r.\n"
            "Rows whose radii are all 0 are dropped. Re-running with the same settings (any epoch count)\n"
            "resumes after the last finished epoch.",
            "dualrs train-estimator -c configs/mnist_dual.json -o runs/estimator --labels runs/labels/labels.h5\n"
            "  mpirun -np 2 dualrs train-estimator -c ... (data-parallel: /train_estimator/batch_size is the "
            "global batch, split over the ranks)"};
  }
  std::string config_help() const override { return "/dataset, /dual (sigma_candidates, sigma_e, estimator arch), /label, /train_estimator"; }
  std::string out_help() const override {
    return "output folder: estimator.pt, estimator.json, train_log.csv, train_state.json, optimizer.pt";
  }
  std::vector<std::string> outputs() const override {
    return {"estimator.pt", "estimator.json", "train_log.csv", "train_state.json", "optimizer.pt"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "dual", "label", "train_estimator", "denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
      {"labels", FlagType::kString, "/train_estimator/labels", "labels.h5 from 'dualrs label'"},
      {"init-checkpoint", FlagType::kString, "/train_estimator/init_checkpoint",
       "classifier checkpoint of the same architecture to copy the feature layers from; the |Sigma|-way output "
       "layer starts fresh"},
      {"preset", FlagType::kString, "/train_estimator/preset", "cifar10 or imagenet: the paper's recipe as defaults for "
                                                               "the keys /train_estimator leaves out"},
      {"epochs", FlagType::kInt, "/train_estimator/epochs", "training epochs, >= 1 (cifar10 preset 90, imagenet 9)"},
      {"lr", FlagType::kDouble, "/train_estimator/lr", "AdamW learning rate, > 0 (imagenet preset 0.005)"},
      {"denoiser", FlagType::kString, "/denoiser/checkpoint", "native denoiser weights from train-denoiser (the config needs a /denoiser section)",
       "/denoiser/torchscript"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.training = true;
    t.slurm_template = "train";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] { config.dual(); config.dataset(); });
    collect_issues(issues, [&] { config.train_estimator(); });
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return train_estimator_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_train_estimator(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_train_estimator_stage() { return std::make_unique<TrainEstimatorStage>(); }

}  // namespace dualrs::pipeline
