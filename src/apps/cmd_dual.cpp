// Dual RS stages: label, train-estimator, estimate-sigma, finetune (DualRS §5.2, METHOD.md §5-6).

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "dualrs/core/dual.h"
#include "dualrs/core/error.h"
#include "dualrs/dist/world.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/estimator_trainer.h"
#include "dualrs/train/train_base.h"
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
                                                   std::string* labels_path) {
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
  if (labels_path->empty()) throw ConfigError(config.source(), "/train_estimator/labels", "missing: the labels file from 'dualrs label'");
  with_source(config, [&] { train::validate(c); });
  return c;
}

json estimator_train_json(const train::EstimatorTrainConfig& c) {
  return {{"preset", c.preset}, {"sigma_e", c.sigma_e}, {"epochs", c.epochs}, {"batch_size", c.batch_size},
          {"m", c.m}, {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"lr_step_epochs", c.lr_step_epochs},
          {"lr_gamma", c.lr_gamma}, {"lambda", c.lambda}, {"eta", c.eta}, {"radius_weight", c.radius_weight},
          {"rebalance", c.rebalance}, {"validation_fraction", c.validation_fraction}, {"seed", c.seed}};
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
  if (!issues.empty()) throw ConfigError(config.source(), std::move(issues));
}

void write_epoch_log(const std::string& path, std::string& log, const std::string& line) {
  log += line;
  io::write_file_atomic(path, log);
}

}  // namespace

void run_label(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const DualConfig dual = config.dual();
  const LabelConfig label = config.label();
  {
    std::vector<ConfigIssue> issues;
    if (label.n < 1) issues.push_back({"/label/n", "must be >= 1"});
    if (!(label.alpha > 0 && label.alpha < 1)) issues.push_back({"/label/alpha", "must be in (0, 1)"});
    if (!issues.empty()) throw ConfigError(config.source(), std::move(issues));
  }
  dist::single_process_world();
  DataSelection in = load_selection(config, label.selection, "/label/selection");
  ClassifierSet classifiers = load_classifiers(config, dual, in.dataset.num_classes());
  io::LabelSet labels;
  labels.sigma_candidates = dual.sigma_candidates;
  labels.n = label.n;
  labels.alpha = label.alpha;
  labels.dataset = in.dataset.name();
  labels.split = label.selection.split;
  labels.routing = dual.routing();
  const auto count = static_cast<std::int64_t>(in.indices.size());
  const smooth::PerSigmaSettings ps{dual.sigma_candidates, 0, label.n, label.batch_size, label.seed};
  const smooth::ExampleFn examples = example_fn(in);
  ProgressMeter progress("label", count, "ex", verbosity);
  for (std::int64_t i = 0; i < count; ++i) {
    const smooth::Example ex = examples(i);
    const smooth::LabelRow row = smooth::label_example(classifiers.pool, ex, ps, label.alpha);
    labels.idx.push_back(ex.idx);
    labels.label.push_back(ex.label);
    labels.radii.insert(labels.radii.end(), row.radii.begin(), row.radii.end());
    labels.top_count.insert(labels.top_count.end(), row.top_count.begin(), row.top_count.end());
    labels.best.push_back(best_sigma_index(row.radii));
    labels.max_radius.push_back(*std::max_element(row.radii.begin(), row.radii.end()));
    progress.update(i + 1);
  }
  progress.finish();
  labels.weight_e = rebalancing_weights(labels.best, labels.num_sigmas());
  json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                   {"dual", to_json(dual)}, {"label", to_json(label)}};
  if (!dual.routing()) resolved["model"] = to_json(config.model());
  io::ensure_directory(out_dir);
  io::write_labels((fs::path(out_dir) / "labels.h5").string(), labels,
                   stage_provenance("dualrs.labels", "label", resolved, label.seed, kRngLayoutVersion));
  if (verbosity != Verbosity::kQuiet) {
    const auto kept = std::count_if(labels.best.begin(), labels.best.end(), [](std::int64_t b) { return b >= 0; });
    std::fprintf(stderr, "label: %lld of %lld examples have a non-zero radius at some sigma\n", static_cast<long long>(kept),
                 static_cast<long long>(count));
  }
}

void run_train_estimator(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const DualConfig dual = config.dual();
  std::string labels_path;
  const train::EstimatorTrainConfig train_config = estimator_train_config(config, dual, &labels_path);
  dist::single_process_world();
  const io::LabelSet labels = io::read_labels(labels_path);
  check_labels_match(labels, labels_path, config, dual);
  const auto s = labels.num_sigmas();
  train::EstimatorTrainingSet set;
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
  const DataSelection data{data::load_dataset(config.dataset()), {}};
  auto estimator = model::make_native_model(dual.estimator.arch, s);

  const fs::path dir(out_dir);
  io::ensure_directory(out_dir);
  const std::string checkpoint = (dir / "estimator.pt").string();
  const std::string optimizer = (dir / "optimizer.pt").string();
  const std::string state_path = (dir / "train_state.json").string();
  json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                   {"dual", to_json(dual)}, {"train_estimator", estimator_train_json(train_config)},
                   {"labels", {{"path", labels_path}, {"config_sha256", labels.provenance.value("config_sha256", "")}}}};
  io::Provenance provenance = stage_provenance("dualrs.estimator", "train-estimator", resolved, train_config.seed, 0);

  // Resume from the last finished epoch when the state matches this exact configuration.
  std::int64_t first_epoch = 1;
  std::string log = "epoch,loss,ce,consistency,train_selection_accuracy,val_selection_accuracy,lr,seconds\n";
  if (fs::exists(state_path) && fs::exists(checkpoint)) {
    const json state = read_json_file(state_path);
    if (state.value("config_sha256", "") == provenance.config_sha256) {
      model::load_checkpoint(*estimator, checkpoint);
      first_epoch = state.value("epoch", 0) + 1;
      log = state.value("log", log);
      if (verbosity != Verbosity::kQuiet) std::fprintf(stderr, "train-estimator: resuming after epoch %lld\n", static_cast<long long>(first_epoch - 1));
    }
  }
  auto on_epoch = [&](const train::EstimatorEpochStats& e) {
    char line[320];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.6f,%.6f,%.6g,%.3f\n", static_cast<long long>(e.epoch), e.loss,
                  e.ce, e.consistency, e.train_selection_accuracy, e.val_selection_accuracy, e.lr, e.seconds);
    model::save_checkpoint(*estimator, checkpoint);
    write_epoch_log((dir / "train_log.csv").string(), log, line);
    io::write_file_atomic(state_path, json({{"epoch", e.epoch}, {"config_sha256", provenance.config_sha256}, {"log", log}}).dump(2) + "\n");
    if (verbosity != Verbosity::kQuiet) {
      std::fprintf(stderr, "train-estimator: epoch %lld/%lld loss %.4f sigma-selection accuracy train %.3f val %.3f (%.1fs)\n",
                   static_cast<long long>(e.epoch), static_cast<long long>(train_config.epochs), e.loss,
                   e.train_selection_accuracy, e.val_selection_accuracy, e.seconds);
    }
  };
  if (first_epoch <= train_config.epochs) {
    train::train_estimator(*estimator, data.dataset, set, train_config, first_epoch, optimizer, on_epoch, verbosity);
  }
  provenance.finished_utc = io::utc_now();
  io::write_file_atomic((dir / "estimator.json").string(),
                        json({{"arch", dual.estimator.arch}, {"num_classes", s}, {"sigma_candidates", dual.sigma_candidates},
                              {"sigma_e", dual.sigma_e}, {"checkpoint", "estimator.pt"}, {"examples", set.idx.size()},
                              {"provenance", io::to_json(provenance)}}).dump(2) + "\n");
}

void run_estimate_sigma(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const DualConfig dual = config.dual();
  const EstimateSigmaConfig est = config.estimate_sigma();
  if (est.n < 1) throw ConfigError(config.source(), "/estimate_sigma/n", "must be >= 1");
  dist::single_process_world();
  DataSelection in = load_selection(config, est.selection, "/estimate_sigma/selection");
  auto estimator = load_estimator(config, dual);
  io::SigmaEstimates out;
  out.sigma_candidates = dual.sigma_candidates;
  out.sigma_e = dual.sigma_e;
  out.n = est.n;
  out.dataset = in.dataset.name();
  out.split = est.selection.split;
  const auto count = static_cast<std::int64_t>(in.indices.size());
  const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
  const smooth::ExampleFn examples = example_fn(in);
  ProgressMeter progress("estimate-sigma", count, "ex", verbosity);
  for (std::int64_t i = 0; i < count; ++i) {
    const smooth::Example ex = examples(i);
    const smooth::SigmaVote vote = smooth::estimate_sigma_example(*estimator, ex, dual.sigma_e, est.n, est.batch_size, est.seed, s);
    out.idx.push_back(ex.idx);
    out.label.push_back(ex.label);
    out.sigma_index.push_back(vote.sigma_index);
    out.counts.insert(out.counts.end(), vote.votes.begin(), vote.votes.end());
    progress.update(i + 1);
  }
  progress.finish();
  json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                   {"dual", to_json(dual)}, {"estimate_sigma", to_json(est)}};
  io::ensure_directory(out_dir);
  io::write_sigma_estimates((fs::path(out_dir) / "sigma_estimates.h5").string(), out,
                            stage_provenance("dualrs.sigma_estimates", "estimate-sigma", resolved, est.seed, kRngLayoutVersion));
}

void run_finetune(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const DualConfig dual = config.dual();
  const FinetuneConfig ft = config.finetune();
  dist::single_process_world();
  const io::SigmaEstimates estimates = io::read_sigma_estimates(ft.estimates);
  if (estimates.sigma_candidates != dual.sigma_candidates) {
    throw ConfigError(config.source(), "/dual/sigma_candidates",
                      "sigma estimates " + ft.estimates + " were made with sigma_candidates " +
                          join_sigmas(estimates.sigma_candidates) + " but the config has " + join_sigmas(dual.sigma_candidates));
  }
  const data::ImageDataset dataset = data::load_dataset(config.dataset());
  auto model = load_classifier(config, dataset.num_classes());
  std::vector<double> sigma;
  for (auto i : estimates.sigma_index) sigma.push_back(dual.sigma_candidates.at(static_cast<std::size_t>(i)));
  TrainBaseConfig train;
  train.epochs = ft.epochs;
  train.batch_size = ft.batch_size;
  train.lr = ft.lr;
  train.weight_decay = ft.weight_decay;
  train.seed = ft.seed;
  const fs::path dir(out_dir);
  io::ensure_directory(out_dir);
  const std::string checkpoint = (dir / "model.pt").string();
  std::string log = "epoch,loss,accuracy,lr,seconds\n";
  auto on_epoch = [&](const train::EpochStats& e) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f\n", static_cast<long long>(e.epoch), e.loss, e.accuracy, e.lr, e.seconds);
    model::save_checkpoint(*model, checkpoint);
    write_epoch_log((dir / "train_log.csv").string(), log, line);
    if (verbosity != Verbosity::kQuiet) {
      std::fprintf(stderr, "finetune: epoch %lld/%lld loss %.4f noisy accuracy %.4f (%.1fs)\n", static_cast<long long>(e.epoch),
                   static_cast<long long>(ft.epochs), e.loss, e.accuracy, e.seconds);
    }
  };
  with_source(config, [&] { train::finetune_classifier(*model, dataset, estimates.idx, sigma, train, on_epoch, verbosity); });
  json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                   {"model", to_json(config.model())}, {"dual", to_json(dual)}, {"finetune", to_json(ft)}};
  io::Provenance provenance = stage_provenance("dualrs.finetune", "finetune", resolved, ft.seed, 0);
  provenance.finished_utc = io::utc_now();
  io::write_file_atomic((dir / "model.json").string(),
                        json({{"arch", config.model().arch}, {"num_classes", dataset.num_classes()}, {"checkpoint", "model.pt"},
                              {"examples", estimates.idx.size()}, {"provenance", io::to_json(provenance)}}).dump(2) + "\n");
}

namespace {
int run_simple(const Invocation& inv, const std::string& usage, const std::string& example, const std::string& out_help,
               const std::vector<FlagMapping>& flags, po::options_description extra,
               void (*stage)(const ExperimentConfig&, const std::string&, Verbosity)) {
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON, see data_schemas/config.schema.json)")
      ("out,o", po::value<std::string>()->required(), out_help.c_str());
  options.add(extra);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, usage, example)) return 0;
  const auto config = ExperimentConfig::load(vm["config"].as<std::string>(), overrides_from_flags(vm, flags));
  stage(config, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}
}  // namespace

int cmd_label(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("label options");
  extra.add_options()
      ("n", po::value<long long>(), "noisy votes per (example, sigma) (default 100)")
      ("alpha", po::value<double>(), "alpha_label of the Clopper-Pearson bound (default 0.001)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass")
      ("checkpoint", po::value<std::string>(), "classifier checkpoint (overrides /model/checkpoint)")
      ("split", po::value<std::string>(), "split to label (default train)")
      ("end", po::value<long long>(), "label the first END examples of the split");
  return run_simple(inv, "--config CONFIG --out DIR [overrides]",
                    "dualrs label -c configs/mnist_dual.json -o runs/labels --checkpoint runs/base/model.pt",
                    "output folder: labels.h5 (per-sigma radii R_c, best index, weights)",
                    {{"n", "/label/n", T::kInt}, {"alpha", "/label/alpha", T::kDouble},
                     {"batch-size", "/label/batch_size", T::kInt}, {"checkpoint", "/model/checkpoint", T::kString},
                     {"split", "/label/selection/split", T::kString}, {"end", "/label/selection/end", T::kInt}},
                    extra, run_label);
}

int cmd_train_estimator(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("train-estimator options");
  extra.add_options()
      ("labels", po::value<std::string>(), "labels file (overrides /train_estimator/labels)")
      ("preset", po::value<std::string>(), "cifar10 or imagenet: the paper's recipe as defaults")
      ("epochs", po::value<long long>(), "training epochs")
      ("lr", po::value<double>(), "AdamW learning rate");
  return run_simple(inv, "--config CONFIG --out DIR [overrides]",
                    "dualrs train-estimator -c configs/mnist_dual.json -o runs/estimator --labels runs/labels/labels.h5",
                    "output folder: estimator.pt, estimator.json, train_log.csv (re-running resumes)",
                    {{"labels", "/train_estimator/labels", T::kString}, {"preset", "/train_estimator/preset", T::kString},
                     {"epochs", "/train_estimator/epochs", T::kInt}, {"lr", "/train_estimator/lr", T::kDouble}},
                    extra, run_train_estimator);
}

int cmd_estimate_sigma(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("estimate-sigma options");
  extra.add_options()
      ("n", po::value<long long>(), "estimator votes per example (default 32)")
      ("estimator", po::value<std::string>(), "estimator checkpoint (overrides /dual/estimator/checkpoint)");
  return run_simple(inv, "--config CONFIG --out DIR [overrides]",
                    "dualrs estimate-sigma -c configs/mnist_dual.json -o runs/sigma --estimator runs/estimator/estimator.pt",
                    "output folder: sigma_estimates.h5",
                    {{"n", "/estimate_sigma/n", T::kInt}, {"estimator", "/dual/estimator/checkpoint", T::kString}},
                    extra, run_estimate_sigma);
}

int cmd_finetune(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description extra("finetune options");
  extra.add_options()
      ("estimates", po::value<std::string>(), "sigma estimates (overrides /finetune/estimates)")
      ("checkpoint", po::value<std::string>(), "classifier to start from (overrides /model/checkpoint)")
      ("epochs", po::value<long long>(), "epochs (default 2)");
  return run_simple(inv, "--config CONFIG --out DIR [overrides]",
                    "dualrs finetune -c configs/mnist_dual.json -o runs/ft --estimates runs/sigma/sigma_estimates.h5",
                    "output folder: model.pt, model.json, train_log.csv",
                    {{"estimates", "/finetune/estimates", T::kString}, {"checkpoint", "/model/checkpoint", T::kString},
                     {"epochs", "/finetune/epochs", T::kInt}},
                    extra, run_finetune);
}

}  // namespace dualrs::app
