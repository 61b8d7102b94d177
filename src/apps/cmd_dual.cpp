// Dual RS stages: label, train-estimator, estimate-sigma, finetune (DualRS §5.2, METHOD.md §5-6).

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "common.h"
#include "dualrs/core/dual.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/estimator_trainer.h"
#include "dualrs/train/train_base.h"
#include "sharded_stage.h"
#include "stage_support.h"

namespace dualrs::app {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string join_sigmas(const std::vector<double>& sigmas) {
  std::string out = "{";
  for (std::size_t i = 0; i < sigmas.size(); ++i) out += (i ? ", " : "") + format_decimal(sigmas[i]);
  return out + "}";
}

// The training hyper-parameters: preset first, then the keys given in /train_estimator.
train::EstimatorTrainConfig estimator_train_config(const ExperimentConfig& config, const DualConfig& dual,
                                                   std::string* labels_path, std::string* init_checkpoint) {
  const json j = config.doc().value("train_estimator", json::object());
  train::EstimatorTrainConfig c;
  with_source(config, [&] { c = train::estimator_preset(j.value("preset", std::string())); });
  c.sigma_e = dual.sigma_e;
  c.epochs = j.value("epochs", c.epochs);
  c.batch_size = j.value("batch_size", c.batch_size);
  c.m = j.value("m", c.m);
  c.lr = j.value("lr", c.lr);
  c.weight_decay = j.value("weight_decay", c.weight_decay);
  c.lr_step_epochs = j.value("lr_step_epochs", c.lr_step_epochs);
  c.lr_gamma = j.value("lr_gamma", c.lr_gamma);
  c.lambda = j.value("lambda", c.lambda);
  c.eta = j.value("eta", c.eta);
  c.radius_weight = j.value("radius_weight", c.radius_weight);
  c.rebalance = j.value("rebalance", c.rebalance);
  c.validation_fraction = j.value("validation_fraction", c.validation_fraction);
  c.seed = j.value("seed", c.seed);
  *labels_path = j.value("labels", std::string());
  *init_checkpoint = j.value("init_checkpoint", std::string());
  if (labels_path->empty()) throw ConfigError(config.source(), "/train_estimator/labels", "missing: the labels file from 'dualrs label'");
  with_source(config, [&] { train::validate(c); });
  return c;
}

json estimator_train_json(const train::EstimatorTrainConfig& c, const std::string& init_checkpoint) {
  json j = {{"preset", c.preset}, {"sigma_e", c.sigma_e}, {"epochs", c.epochs}, {"batch_size", c.batch_size},
          {"m", c.m}, {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"lr_step_epochs", c.lr_step_epochs},
          {"lr_gamma", c.lr_gamma}, {"lambda", c.lambda}, {"eta", c.eta}, {"radius_weight", c.radius_weight},
          {"rebalance", c.rebalance}, {"validation_fraction", c.validation_fraction}, {"seed", c.seed}};
  if (!init_checkpoint.empty()) j["init_checkpoint"] = init_checkpoint;  // absent: hashes of older runs stay valid
  return j;
}

// Refuses labels made for another Σ, dataset, split or labelling config, naming the mismatch.
void check_labels_match(const io::LabelSet& labels, const std::string& path, const ExperimentConfig& config,
                        const DualConfig& dual) {
  std::vector<ConfigIssue> issues;
  const std::string what = "labels file " + path;
  if (labels.sigma_candidates != dual.sigma_candidates) {
    issues.push_back({"/dual/sigma_candidates", what + " was made with sigma_candidates " + join_sigmas(labels.sigma_candidates) +
                                                    " but the config has " + join_sigmas(dual.sigma_candidates)});
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

void write_epoch_log(const std::string& path, std::string& log, const std::string& line) {
  log += line;
  io::write_file_atomic(path, log);
}

}  // namespace

void run_label(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  DualConfig dual;
  LabelConfig label;
  std::optional<DataSelection> in;
  std::optional<ClassifierSet> classifiers;
  ShardedStage stage;
  ctx.agreed([&] {
    dual = config.dual();
    label = config.label();
    std::vector<ConfigIssue> issues;
    if (label.n < 1) issues.push_back({"/label/n", "must be >= 1"});
    if (!(label.alpha > 0 && label.alpha < 1)) issues.push_back({"/label/alpha", "must be in (0, 1)"});
    if (label.shard_size < 1) issues.push_back({"/label/shard_size", "must be >= 1"});
    if (!issues.empty()) throw ConfigError(config.source(), std::move(issues));
    in = load_selection(config, label.selection, "/label/selection");
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    classifiers = load_classifiers(config, dual, in->dataset.num_classes(), denoiser, ctx.world);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"label", to_json(label)}};
    if (!dual.routing()) resolved["model"] = to_json(config.model());
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    stage.provenance = stage_provenance("dualrs.labels", "label", resolved, label.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  // The rows of the shard being computed.
  io::LabelSet rows;
  rows.sigma_candidates = dual.sigma_candidates;
  rows.n = label.n;
  rows.alpha = label.alpha;
  rows.dataset = in->dataset.name();
  rows.split = label.selection.split;
  rows.routing = dual.routing();
  const io::LabelSet empty = rows;
  const smooth::PerSigmaSettings ps{dual.sigma_candidates, 0, label.n, label.batch_size, label.seed};
  const smooth::ExampleFn examples = example_fn(*in);
  stage.command = "label";
  stage.schema = "dualrs.labels";
  stage.indices = in->indices;
  stage.shard_size = label.shard_size;
  stage.compute = [&](std::int64_t position) {
    const smooth::Example ex = examples(position);
    const smooth::LabelRow row = smooth::label_example(classifiers->pool, ex, ps, label.alpha);
    rows.idx.push_back(ex.idx);
    rows.label.push_back(ex.label);
    rows.radii.insert(rows.radii.end(), row.radii.begin(), row.radii.end());
    rows.top_count.insert(rows.top_count.end(), row.top_count.begin(), row.top_count.end());
    rows.non_finite.insert(rows.non_finite.end(), row.non_finite.begin(), row.non_finite.end());
    rows.best.push_back(best_sigma_index(row.radii));
    rows.max_radius.push_back(*std::max_element(row.radii.begin(), row.radii.end()));
  };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& p) {
    io::write_labels(path, rows, p);  // weights are computed over all rows when merging
    rows = empty;
  };
  stage.discard = [&] { rows = empty; };
  if (!run_sharded_stage(ctx, out_dir, stage)) return;
  ctx.on_root([&] {
    const io::LabelSet labels = io::read_labels((fs::path(out_dir) / "labels.h5").string());
    const auto kept = std::count_if(labels.best.begin(), labels.best.end(), [](std::int64_t b) { return b >= 0; });
    say(ctx, "label: %lld of %lld examples have a non-zero radius at some sigma", static_cast<long long>(kept),
        static_cast<long long>(labels.size()));
  });
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
  const fs::path dir(out_dir);
  const std::string checkpoint = (dir / "estimator.pt").string();
  const std::string optimizer = (dir / "optimizer.pt").string();
  const std::string state_path = (dir / "train_state.json").string();
  io::Provenance provenance;
  std::int64_t first_epoch = 1;
  std::string log = "epoch,loss,ce,consistency,train_selection_accuracy,val_selection_accuracy,lr,seconds\n";
  ctx.agreed([&] {
    dual = config.dual();
    train_config = estimator_train_config(config, dual, &labels_path, &init_checkpoint);
    const io::LabelSet labels = io::read_labels(labels_path);
    check_labels_match(labels, labels_path, config, dual);
    const auto s = labels.num_sigmas();
    set.sigma_candidates = labels.sigma_candidates;
    set.radius_cap = train::label_radius_cap(labels.sigma_candidates.back(), labels.n, labels.alpha);
    for (std::int64_t i = 0; i < labels.size(); ++i) {
      if (labels.best[static_cast<std::size_t>(i)] < 0) continue;  // all radii 0: dropped (METHOD.md §5)
      set.idx.push_back(labels.idx[static_cast<std::size_t>(i)]);
      set.best.push_back(labels.best[static_cast<std::size_t>(i)]);
      set.weight_e.push_back(train_config.rebalance ? labels.weight_e[static_cast<std::size_t>(i)] : 1.0);
      for (std::int64_t j = 0; j < s; ++j) set.radii.push_back(labels.radii[static_cast<std::size_t>(i * s + j)]);
    }
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
    // With a denoiser the estimator trains on denoise(x + δ_e) at σ_e, as it is used (METHOD.md §6).
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    trained = compose_base(config, estimator, dual.estimator.input, denoiser, dual.sigma_e, "/dual/sigma_e");
    if (ctx.is_root()) io::ensure_directory(out_dir);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"train_estimator", estimator_train_json(train_config, init_checkpoint)},
                     {"labels", {{"path", labels_path}, {"config_sha256", labels.provenance.value("config_sha256", "")}}}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    // The estimator weights are what this stage writes, not what it reads.
    resolved["dual"]["estimator"].erase("checkpoint");
    provenance = stage_provenance("dualrs.estimator", "train-estimator", resolved, train_config.seed, 0);
    record_world(ctx, provenance);
    // Resume from the last finished epoch when the state matches this exact configuration.
    // Rank 0 decides; every rank then loads the same checkpoint (and, in the trainer, the same
    // optimizer state), and the trainer broadcasts rank 0's weights.
    if (ctx.is_root() && fs::exists(state_path) && fs::exists(checkpoint)) {
      const json state = read_json_file(state_path);
      if (state.value("config_sha256", "") == provenance.config_sha256) {
        first_epoch = state.value("epoch", 0) + 1;
        log = state.value("log", log);
      }
    }
  });
  ctx.agreed([&] {
    ctx.comm.broadcast(&first_epoch, sizeof first_epoch, 0);
    ctx.comm.broadcast(log, 0);
    if (first_epoch > 1) {
      model::load_checkpoint(*estimator, checkpoint);
      say(ctx, "train-estimator: resuming after epoch %lld", static_cast<long long>(first_epoch - 1));
    } else if (!init_checkpoint.empty()) {
      // Feature layers from the noise-trained classifier; the |Σ|-unit output layer stays fresh.
      auto classifier = model::make_native_model(dual.estimator.arch, config.model().num_classes);
      model::load_checkpoint(*classifier, init_checkpoint);
      const std::int64_t copied = model::copy_matching_weights(*estimator, *classifier);
      say(ctx, "train-estimator: %lld tensors initialised from %s", static_cast<long long>(copied),
          init_checkpoint.c_str());
    }
  });
  auto on_epoch = [&](const train::EstimatorEpochStats& e) {
    char line[320];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.6f,%.6f,%.6g,%.3f\n", static_cast<long long>(e.epoch), e.loss,
                  e.ce, e.consistency, e.train_selection_accuracy, e.val_selection_accuracy, e.lr, e.seconds);
    if (!ctx.is_root()) return;
    model::save_checkpoint(*estimator, checkpoint);
    write_epoch_log((dir / "train_log.csv").string(), log, line);
    io::write_file_atomic(state_path, json({{"epoch", e.epoch}, {"config_sha256", provenance.config_sha256}, {"log", log}}).dump(2) + "\n");
    say(ctx, "train-estimator: epoch %lld/%lld loss %.4f sigma-selection accuracy train %.3f val %.3f (%.1fs)",
        static_cast<long long>(e.epoch), static_cast<long long>(train_config.epochs), e.loss, e.train_selection_accuracy,
        e.val_selection_accuracy, e.seconds);
  };
  if (first_epoch <= train_config.epochs) {
    ctx.agreed([&] {
      train::train_estimator(*trained, data->dataset, set, train_config, first_epoch, optimizer, train_context(ctx, device),
                             on_epoch, verbosity);
    });
  }
  ctx.on_root([&] {
    provenance.finished_utc = io::utc_now();
    io::write_file_atomic((dir / "estimator.json").string(),
                          json({{"arch", dual.estimator.arch}, {"num_classes", set.sigma_candidates.size()},
                                {"sigma_candidates", dual.sigma_candidates}, {"sigma_e", dual.sigma_e},
                                {"checkpoint", "estimator.pt"}, {"examples", set.idx.size()},
                                {"provenance", io::to_json(provenance)}}).dump(2) + "\n");
  });
}

void run_estimate_sigma(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  DualConfig dual;
  EstimateSigmaConfig est;
  std::optional<DataSelection> in;
  std::shared_ptr<model::BaseModel> estimator;
  ShardedStage stage;
  ctx.agreed([&] {
    dual = config.dual();
    est = config.estimate_sigma();
    std::vector<ConfigIssue> issues;
    if (est.n < 1) issues.push_back({"/estimate_sigma/n", "must be >= 1"});
    if (est.shard_size < 1) issues.push_back({"/estimate_sigma/shard_size", "must be >= 1"});
    if (!issues.empty()) throw ConfigError(config.source(), std::move(issues));
    in = load_selection(config, est.selection, "/estimate_sigma/selection");
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    estimator = load_estimator(config, dual, denoiser, ctx.world);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"estimate_sigma", to_json(est)}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    stage.provenance = stage_provenance("dualrs.sigma_estimates", "estimate-sigma", resolved, est.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  io::SigmaEstimates rows;  // of the shard being computed
  rows.sigma_candidates = dual.sigma_candidates;
  rows.sigma_e = dual.sigma_e;
  rows.n = est.n;
  rows.dataset = in->dataset.name();
  rows.split = est.selection.split;
  const io::SigmaEstimates empty = rows;
  const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
  const smooth::ExampleFn examples = example_fn(*in);
  stage.command = "estimate-sigma";
  stage.schema = "dualrs.sigma_estimates";
  stage.indices = in->indices;
  stage.shard_size = est.shard_size;
  stage.compute = [&](std::int64_t position) {
    const smooth::Example ex = examples(position);
    const smooth::SigmaVote vote = smooth::estimate_sigma_example(*estimator, ex, dual.sigma_e, est.n, est.batch_size, est.seed, s);
    rows.idx.push_back(ex.idx);
    rows.label.push_back(ex.label);
    rows.sigma_index.push_back(vote.sigma_index);
    rows.counts.insert(rows.counts.end(), vote.votes.begin(), vote.votes.end());
    rows.non_finite.push_back(vote.non_finite);
  };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& p) {
    io::write_sigma_estimates(path, rows, p);
    rows = empty;
  };
  stage.discard = [&] { rows = empty; };
  run_sharded_stage(ctx, out_dir, stage);
}

void run_finetune(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  // Every rank trains (data-parallel, dualrs/train/data_parallel.h); rank 0 writes the outputs.
  const Verbosity verbosity = ctx.verbosity;
  DualConfig dual;
  FinetuneConfig ft;
  io::SigmaEstimates estimates;
  std::optional<data::ImageDataset> dataset;
  std::shared_ptr<model::BaseModel> model;
  std::shared_ptr<model::BaseModel> trained;  // the classifier, behind the denoiser when there is one
  std::shared_ptr<model::DiffusionDenoiser> denoiser;
  std::vector<double> sigma;
  TrainBaseConfig train;
  const fs::path dir(out_dir);
  const std::string checkpoint = (dir / "model.pt").string();
  ctx.agreed([&] {
    dual = config.dual();
    ft = config.finetune();
    estimates = io::read_sigma_estimates(ft.estimates);
    if (estimates.sigma_candidates != dual.sigma_candidates) {
      throw ConfigError(config.source(), "/dual/sigma_candidates",
                        "sigma estimates " + ft.estimates + " were made with sigma_candidates " +
                            join_sigmas(estimates.sigma_candidates) + " but the config has " + join_sigmas(dual.sigma_candidates));
    }
    dataset = data::load_dataset(config.dataset());
    model = load_classifier(config, dataset->num_classes(), ctx.world);
    // With a denoiser the classifier is fine-tuned on denoise(x + δ_c) at each example's σ_c(x).
    denoiser = load_denoiser(config, ctx.world);
    trained = compose_base(config, model, config.model().input, denoiser, std::nullopt, "/finetune");
    for (auto i : estimates.sigma_index) sigma.push_back(dual.sigma_candidates.at(static_cast<std::size_t>(i)));
    train.epochs = ft.epochs;
    train.batch_size = ft.batch_size;
    train.lr = ft.lr;
    train.weight_decay = ft.weight_decay;
    train.seed = ft.seed;
    if (ctx.is_root()) io::ensure_directory(out_dir);
  });
  std::string log = "epoch,loss,accuracy,lr,seconds\n";
  auto on_epoch = [&](const train::EpochStats& e) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f\n", static_cast<long long>(e.epoch), e.loss, e.accuracy, e.lr, e.seconds);
    if (!ctx.is_root()) return;
    model::save_checkpoint(*model, checkpoint);
    write_epoch_log((dir / "train_log.csv").string(), log, line);
    say(ctx, "finetune: epoch %lld/%lld loss %.4f noisy accuracy %.4f (%.1fs)", static_cast<long long>(e.epoch),
        static_cast<long long>(ft.epochs), e.loss, e.accuracy, e.seconds);
  };
  ctx.agreed([&] {
    with_source(config, [&] {
      train::finetune_classifier(*trained, *dataset, estimates.idx, sigma, train,
                                 train_context(ctx, rank_device(ctx, config.model().device)), on_epoch, verbosity);
    });
  });
  ctx.on_root([&] {
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"model", to_json(config.model())}, {"dual", to_json(dual)}, {"finetune", to_json(ft)}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    io::Provenance provenance = stage_provenance("dualrs.finetune", "finetune", resolved, ft.seed, 0);
    record_world(ctx, provenance);
    provenance.finished_utc = io::utc_now();
    io::write_file_atomic((dir / "model.json").string(),
                          json({{"arch", config.model().arch}, {"num_classes", dataset->num_classes()}, {"checkpoint", "model.pt"},
                                {"examples", estimates.idx.size()}, {"provenance", io::to_json(provenance)}}).dump(2) + "\n");
  });
}

namespace {
int run_simple(const Invocation& inv, const HelpText& help, const std::string& config_help, const std::string& out_help,
               const std::vector<FlagMapping>& flags, po::options_description extra,
               void (*stage)(StageContext&, const ExperimentConfig&, const std::string&), bool sharded) {
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(),
       ("experiment config (JSON, data_schemas/config.schema.json): " + config_help).c_str())
      ("out,o", po::value<std::string>()->required(), out_help.c_str());
  options.add(extra);
  if (sharded) add_shard_options(options);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, help)) return 0;
  const auto config = load_config(inv, vm["config"].as<std::string>(), [&] { return overrides_from_flags(vm, flags); });
  stage(*inv.ctx, config, vm["out"].as<std::string>());
  return 0;
}
}  // namespace

int cmd_label(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("label options");
  extra.add_options()
      ("n", po::value<long long>(), "noisy votes N per (example, sigma), >= 1; default 100 (overrides /label/n)")
      ("alpha", po::value<double>(), "alpha_label of the Clopper-Pearson bound, in (0, 1); default 0.001 "
       "(overrides /label/alpha)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass, >= 1; default 100 (overrides /label/batch_size)")
      ("checkpoint", po::value<std::string>(), "classifier weights from train-base (overrides /model/checkpoint)")
      ("split", po::value<std::string>(), "split to label; default train (overrides /label/selection/split)")
      ("end", po::value<long long>(), "label the first END examples of the split; -1 = all (default) "
       "(overrides /label/selection/end)")
      ("shard-size", po::value<long long>(), "examples per shard: the unit of work, output and resume, >= 1; default 100 (overrides /label/shard_size)")
      ("denoiser", po::value<std::string>(), "native denoiser weights from train-denoiser (overrides /denoiser/checkpoint; "
       "the config needs a /denoiser section)");
  return run_simple(inv,
                    {"--config CONFIG --out DIR [overrides]",
                     "Per-sigma radius labels for estimator training (DualRS §5.2.1): for every example and every\n"
                     "sigma of /dual/sigma_candidates, N noisy votes give R_c(x, sigma) = sigma * Phi^-1(p) when the\n"
                     "top class is the true one and its Clopper-Pearson bound p >= 0.5, else 0; plus the best sigma\n"
                     "and the rebalancing weight w_e. With /dual/experts (routing), expert i labels sigma_i.",
                     "dualrs label -c configs/mnist_dual.json -o runs/labels --checkpoint runs/base/model.pt\n"
                     "  mpirun -np 8 dualrs label -c configs/mnist_dual.json -o runs/labels --expect-world-size 8"},
                    "/dataset, /model (or /dual/experts), /dual, /label",
                    "output folder: labels.h5 (data_schemas/labels.h5.md), merged from shards/shard-NNNNN.h5; re-running "
                    "resumes",
                    {{"n", "/label/n", T::kInt}, {"alpha", "/label/alpha", T::kDouble},
                     {"batch-size", "/label/batch_size", T::kInt}, {"checkpoint", "/model/checkpoint", T::kString},
                     {"split", "/label/selection/split", T::kString}, {"end", "/label/selection/end", T::kInt},
                     {"shard-size", "/label/shard_size", T::kInt},
                     {"denoiser", "/denoiser/checkpoint", T::kString}},
                    extra, run_label, true);
}

int cmd_train_estimator(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("train-estimator options");
  extra.add_options()
      ("labels", po::value<std::string>(), "labels.h5 from 'dualrs label' (overrides /train_estimator/labels)")
      ("init-checkpoint", po::value<std::string>(),
       "classifier checkpoint of the same architecture to copy the feature layers from; the |Sigma|-way output "
       "layer starts fresh (overrides /train_estimator/init_checkpoint)")
      ("preset", po::value<std::string>(), "cifar10 or imagenet: the paper's recipe as defaults for the keys "
       "/train_estimator leaves out (overrides /train_estimator/preset)")
      ("epochs", po::value<long long>(), "training epochs, >= 1; default 10, cifar10 90, imagenet 9 "
       "(overrides /train_estimator/epochs)")
      ("lr", po::value<double>(), "AdamW learning rate, > 0; default 0.01, imagenet 0.005 (overrides /train_estimator/lr)")
      ("denoiser", po::value<std::string>(), "native denoiser weights from train-denoiser (overrides /denoiser/checkpoint; "
       "the config needs a /denoiser section)");
  return run_simple(inv,
                    {"--config CONFIG --out DIR [overrides]",
                     "Trains the variance estimator (DualRS §5.2): inputs with noise sigma_e, soft labels\n"
                     "softmax(R_c(x, sigma_i)), soft cross-entropy + consistency (lambda, eta), weights w_e and w_r.\n"
                     "Rows whose radii are all 0 are dropped. Re-running with the same config resumes after the\n"
                     "last finished epoch.",
                     "dualrs train-estimator -c configs/mnist_dual.json -o runs/estimator --labels runs/labels/labels.h5\n"
                     "  mpirun -np 2 dualrs train-estimator -c ... (data-parallel: /train_estimator/batch_size is the "
                     "global batch, split over the ranks)"},
                    "/dataset, /dual (sigma_candidates, sigma_e, estimator arch), /label, /train_estimator",
                    "output folder: estimator.pt, estimator.json, train_log.csv, train_state.json",
                    {{"labels", "/train_estimator/labels", T::kString},
                     {"init-checkpoint", "/train_estimator/init_checkpoint", T::kString}, {"preset", "/train_estimator/preset", T::kString},
                     {"epochs", "/train_estimator/epochs", T::kInt}, {"lr", "/train_estimator/lr", T::kDouble},
                     {"denoiser", "/denoiser/checkpoint", T::kString}},
                    extra, run_train_estimator, false);
}

int cmd_estimate_sigma(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("estimate-sigma options");
  extra.add_options()
      ("n", po::value<long long>(), "noisy estimator votes per example at sigma_e, >= 1; default 32 "
       "(overrides /estimate_sigma/n)")
      ("estimator", po::value<std::string>(), "estimator weights from train-estimator (overrides /dual/estimator/checkpoint)")
      ("shard-size", po::value<long long>(), "examples per shard: the unit of work, output and resume, >= 1; default 100 (overrides /estimate_sigma/shard_size)")
      ("denoiser", po::value<std::string>(), "native denoiser weights from train-denoiser (overrides /denoiser/checkpoint; "
       "the config needs a /denoiser section)");
  return run_simple(inv,
                    {"--config CONFIG --out DIR [overrides]",
                     "The smoothed estimator's sigma for every selected example (default: the train split): the\n"
                     "majority of n votes at sigma_e, ties -> smaller sigma. Feeds finetune (DualRS §5.2.2).",
                     "dualrs estimate-sigma -c configs/mnist_dual.json -o runs/sigma --estimator runs/estimator/estimator.pt"},
                    "/dataset, /dual, /estimate_sigma",
                    "output folder: sigma_estimates.h5 (data_schemas/labels.h5.md), merged from shards/shard-NNNNN.h5; "
                    "re-running resumes",
                    {{"n", "/estimate_sigma/n", T::kInt}, {"estimator", "/dual/estimator/checkpoint", T::kString},
                     {"shard-size", "/estimate_sigma/shard_size", T::kInt},
                     {"denoiser", "/denoiser/checkpoint", T::kString}},
                    extra, run_estimate_sigma, true);
}

int cmd_finetune(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("finetune options");
  extra.add_options()
      ("estimates", po::value<std::string>(), "sigma_estimates.h5 from estimate-sigma (overrides /finetune/estimates)")
      ("checkpoint", po::value<std::string>(), "classifier weights to start from (overrides /model/checkpoint)")
      ("epochs", po::value<long long>(), "epochs, >= 1; default 2 (overrides /finetune/epochs)")
      ("denoiser", po::value<std::string>(), "native denoiser weights from train-denoiser (overrides /denoiser/checkpoint; "
       "the config needs a /denoiser section)");
  return run_simple(inv,
                    {"--config CONFIG --out DIR [overrides]",
                     "Fine-tunes the classifier with cross-entropy under each example's estimated noise level\n"
                     "sigma_c(x) (DualRS §5.2.2); AdamW with /finetune's lr (default 1e-4) and weight_decay.",
                     "dualrs finetune -c configs/mnist_dual.json -o runs/ft --estimates runs/sigma/sigma_estimates.h5\n"
                     "  mpirun -np 2 dualrs finetune -c ... (data-parallel: /finetune/batch_size is the global batch, "
                     "split over the ranks)"},
                    "/dataset, /model, /dual, /finetune",
                    "output folder: model.pt, model.json, train_log.csv (data_schemas/models.md)",
                    {{"estimates", "/finetune/estimates", T::kString}, {"checkpoint", "/model/checkpoint", T::kString},
                     {"epochs", "/finetune/epochs", T::kInt},
                     {"denoiser", "/denoiser/checkpoint", T::kString}},
                    extra, run_finetune, false);
}

}  // namespace dualrs::app
