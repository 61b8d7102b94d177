// dualrs certify / predict: standard randomized smoothing over a dataset selection.

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/model/base_model.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"
#include "sharded_stage.h"
#include "stage_support.h"

namespace dualrs::app {
namespace {

std::vector<FlagMapping> selection_flags(const std::string& section) {
  using T = FlagMapping::Type;
  return {{"split", "/" + section + "/selection/split", T::kString},
          {"begin", "/" + section + "/selection/begin", T::kInt},
          {"end", "/" + section + "/selection/end", T::kInt},
          {"skip", "/" + section + "/selection/skip", T::kInt},
          {"checkpoint", "/model/checkpoint", T::kString},
          {"torchscript", "/model/torchscript", T::kString},
          {"estimator", "/dual/estimator/checkpoint", T::kString}};
}

void add_selection_options(po::options_description& options) {
  options.add_options()
      ("split", po::value<std::string>(), "split of the dataset (e.g. test, train; 'all' = every example)")
      ("begin", po::value<long long>(), "first position in the split (default 0)")
      ("end", po::value<long long>(), "one past the last position (-1 = end of split)")
      ("skip", po::value<long long>(), "take every skip-th example (default 1)")
      ("checkpoint", po::value<std::string>(), "native model checkpoint (overrides /model/checkpoint)")
      ("torchscript", po::value<std::string>(), "TorchScript model file (overrides /model/torchscript)")
      ("estimator", po::value<std::string>(), "dual: estimator checkpoint (overrides /dual/estimator/checkpoint)");
}

}  // namespace

namespace {

// Method name written into result files and tables.
std::string method_name(const std::string& method, double sigma, bool routing, const std::string& prefix) {
  if (method == "global") return prefix + "global_sigma_" + format_decimal(sigma);
  if (method == "dual") return routing ? "dual_rs_routing" : "dual_rs";
  return routing ? "multiscale_routing" : "multiscale";
}

io::ResultInfo result_info(const std::string& kind, const std::string& method, double sigma, std::int64_t n0,
                           std::int64_t n, double alpha, std::int64_t num_classes, const DataSelection& in,
                           const std::string& split) {
  io::ResultInfo info;
  info.kind = kind;
  info.method = method;
  info.sigma = sigma;
  info.n0 = n0;
  info.n = n;
  info.alpha = alpha;
  info.num_classes = num_classes;
  info.dataset = in.dataset.name();
  info.split = split;
  return info;
}

AlphaSplit alpha_split(const std::string& name) {
  return name == "reference" ? AlphaSplit::kReference : AlphaSplit::kBonferroni;
}

}  // namespace

namespace {

/// The models a certify/predict method uses, loaded on this rank: the /model classifier
/// (global), or the per-σ pool and, for dual, the estimator.
struct MethodModels {
  ClassifierSet classifiers;
  std::unique_ptr<model::BaseModel> estimator;
};

MethodModels load_method_models(const StageContext& ctx, const ExperimentConfig& config, const std::string& method,
                                const DualConfig& dual, std::int64_t num_classes) {
  MethodModels m;
  if (method == "global") {
    m.classifiers.owned.push_back(load_classifier(config, num_classes, ctx.world));
    m.classifiers.owned.back()->set_training(false);
    return m;
  }
  m.classifiers = load_classifiers(config, dual, num_classes, ctx.world);
  if (method == "dual") m.estimator = load_estimator(config, dual, ctx.world);
  return m;
}

/// Shards of certify/predict records: each example's record from `compute`, each shard one
/// result file in the layout of the merged one.
template <typename Record>
void run_record_stage(StageContext& ctx, const std::string& out_dir, ShardedStage& stage, const DataSelection& in,
                      const io::ResultInfo& info, const std::function<Record(const smooth::Example&)>& compute) {
  const smooth::ExampleFn examples = example_fn(in);
  std::vector<Record> records;  // of the shard being computed
  stage.schema = "dualrs." + info.kind;
  stage.indices = in.indices;
  stage.compute = [&](std::int64_t position) { records.push_back(compute(examples(position))); };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& provenance) {
    io::Hdf5ResultSink sink(path, info, provenance);
    for (const Record& r : records) sink.write(r);
    sink.finish();
    records.clear();
  };
  stage.discard = [&] { records.clear(); };
  run_sharded_stage(ctx, out_dir, stage);
}

}  // namespace

void run_certify(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  std::optional<DataSelection> in;
  MethodModels models;
  CertifyConfig certify;
  DualConfig dual;
  io::ResultInfo info;
  ShardedStage stage;
  ctx.agreed([&] {
    certify = config.certify();
    with_source(config, [&] {
      smooth::validate(certify);
      make_shards(0, certify.shard_size);
    });
    if (certify.method != "global") dual = config.dual();
    in = load_selection(config, certify.selection, "/certify/selection");
    const std::int64_t k = in->dataset.num_classes();
    nlohmann::json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                               {"certify", to_json(certify)}};
    if (!dual.routing()) resolved["model"] = to_json(config.model());
    if (certify.method != "global") resolved["dual"] = to_json(dual);
    info = result_info("certify", method_name(certify.method, certify.sigma, dual.routing(), ""),
                       certify.method == "global" ? certify.sigma : 0.0, certify.n0, certify.n, certify.alpha, k, *in,
                       certify.selection.split);
    if (certify.method != "global") {
      info.sigma_candidates = dual.sigma_candidates;
      if (certify.method == "dual") {
        info.sigma_e = dual.sigma_e;
        info.alpha_e = certify.alpha_e;
        info.alpha_c = certify.alpha_c;
      }
    }
    models = load_method_models(ctx, config, certify.method, dual, k);
    stage.provenance = stage_provenance("dualrs.certify", "certify", resolved, certify.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  const smooth::PerSigmaSettings ps{dual.sigma_candidates, certify.n0, certify.n, certify.batch_size, certify.seed};
  stage.command = "certify";
  stage.shard_size = certify.shard_size;
  run_record_stage<CertifyRecord>(ctx, out_dir, stage, *in, info, [&](const smooth::Example& ex) {
    if (certify.method == "global") return smooth::certify_example(*models.classifiers.owned.front(), ex, certify);
    if (certify.method == "dual") {
      return smooth::dual_certify_example(*models.estimator, models.classifiers.pool, ex,
                                          {ps, dual.sigma_e, certify.alpha_e, certify.alpha_c});
    }
    return smooth::multiscale_certify_example(models.classifiers.pool, ex, ps, certify.alpha, alpha_split(certify.alpha_split));
  });
}

void run_predict(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  std::optional<DataSelection> in;
  MethodModels models;
  PredictConfig predict;
  DualConfig dual;
  io::ResultInfo info;
  ShardedStage stage;
  ctx.agreed([&] {
    predict = config.predict();
    with_source(config, [&] {
      smooth::validate(predict);
      make_shards(0, predict.shard_size);
    });
    if (predict.method != "global") dual = config.dual();
    in = load_selection(config, predict.selection, "/predict/selection");
    const std::int64_t k = in->dataset.num_classes();
    nlohmann::json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                               {"predict", to_json(predict)}};
    if (!dual.routing()) resolved["model"] = to_json(config.model());
    if (predict.method != "global") resolved["dual"] = to_json(dual);
    info = result_info("predict", method_name(predict.method, predict.sigma, dual.routing(), "predict_"),
                       predict.method == "global" ? predict.sigma : 0.0, 0, predict.n, predict.alpha, k, *in,
                       predict.selection.split);
    models = load_method_models(ctx, config, predict.method, dual, k);
    stage.provenance = stage_provenance("dualrs.predict", "predict", resolved, predict.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  const smooth::PerSigmaSettings ps{dual.sigma_candidates, 0, predict.n, predict.batch_size, predict.seed};
  stage.command = "predict";
  stage.shard_size = predict.shard_size;
  run_record_stage<PredictRecord>(ctx, out_dir, stage, *in, info, [&](const smooth::Example& ex) {
    if (predict.method == "global") return smooth::predict_example(*models.classifiers.owned.front(), ex, predict);
    if (predict.method == "dual") {
      return smooth::dual_predict_example(*models.estimator, models.classifiers.pool, ex,
                                          {ps, dual.sigma_e, predict.alpha / 2, predict.alpha / 2});
    }
    return smooth::multiscale_predict_example(models.classifiers.pool, ex, ps, predict.alpha, alpha_split(predict.alpha_split));
  });
}

int cmd_certify(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON, see data_schemas/config.schema.json)")
      ("out,o", po::value<std::string>()->required(),
       "output folder: certify.h5 and certify.tsv (merged from shards/shard-NNNNN.h5; re-running resumes)")
      ("method", po::value<std::string>(), "global (standard RS at --sigma), dual (Dual RS over /dual) or multiscale")
      ("sigma", po::value<double>(), "noise level sigma, [0,1]-pixel units (> 0)")
      ("n0", po::value<long long>(), "noisy copies to select the class (default 100)")
      ("n", po::value<long long>(), "noisy copies to bound p_A (default 1000)")
      ("alpha", po::value<double>(), "failure probability, in (0, 1) (default 0.001)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass (default 1000)")
      ("seed", po::value<unsigned long long>(), "noise seed (default 0)")
      ("shard-size", po::value<long long>(), "examples per shard: unit of work, output and resume (default 20)");
  add_selection_options(options);
  add_shard_options(options);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs certify -c configs/mnist.json -o runs/cert --checkpoint runs/base/model.pt --sigma 0.5 "
                  "--n 1000 --end 100\n  mpirun -np 4 dualrs certify -c configs/mnist.json -o runs/cert "
                  "--expect-world-size 4   (the shards are split over the 4 ranks)")) {
    return 0;
  }
  std::vector<FlagMapping> flags = {{"method", "/certify/method", T::kString}, {"sigma", "/certify/sigma", T::kDouble},
                                    {"n0", "/certify/n0", T::kInt},           {"n", "/certify/n", T::kInt},
                                    {"alpha", "/certify/alpha", T::kDouble},  {"batch-size", "/certify/batch_size", T::kInt},
                                    {"seed", "/certify/seed", T::kUInt},
                                    {"shard-size", "/certify/shard_size", T::kInt}};
  for (auto& f : selection_flags("certify")) flags.push_back(f);
  const auto config = load_config(inv, vm["config"].as<std::string>(), [&] { return overrides_from_flags(vm, flags); });
  run_certify(*inv.ctx, config, vm["out"].as<std::string>());
  return 0;
}

int cmd_predict(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON)")
      ("out,o", po::value<std::string>()->required(),
       "output folder: predict.h5 and predict.tsv (merged from shards/shard-NNNNN.h5; re-running resumes)")
      ("method", po::value<std::string>(), "global, dual or multiscale")
      ("sigma", po::value<double>(), "noise level sigma (> 0)")
      ("n", po::value<long long>(), "noisy copies (default 1000)")
      ("alpha", po::value<double>(), "abstain unless the binomial test p-value <= alpha (default 0.001)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass (default 1000)")
      ("seed", po::value<unsigned long long>(), "noise seed (default 0)")
      ("shard-size", po::value<long long>(), "examples per shard: unit of work, output and resume (default 20)");
  add_selection_options(options);
  add_shard_options(options);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs predict -c configs/mnist.json -o runs/pred --checkpoint runs/base/model.pt --sigma 0.25")) {
    return 0;
  }
  std::vector<FlagMapping> flags = {{"method", "/predict/method", T::kString},
                                    {"sigma", "/predict/sigma", T::kDouble}, {"n", "/predict/n", T::kInt},
                                    {"alpha", "/predict/alpha", T::kDouble}, {"batch-size", "/predict/batch_size", T::kInt},
                                    {"seed", "/predict/seed", T::kUInt},
                                    {"shard-size", "/predict/shard_size", T::kInt}};
  for (auto& f : selection_flags("predict")) flags.push_back(f);
  const auto config = load_config(inv, vm["config"].as<std::string>(), [&] { return overrides_from_flags(vm, flags); });
  run_predict(*inv.ctx, config, vm["out"].as<std::string>());
  return 0;
}

}  // namespace dualrs::app
