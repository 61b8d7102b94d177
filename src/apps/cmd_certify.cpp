// dualrs certify / predict: standard randomized smoothing over a dataset selection.

#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/dist/world.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/model/base_model.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"
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
          {"estimator", "/dual/estimator/checkpoint", T::kString},
          {"denoiser", "/denoiser/checkpoint", T::kString}};
}

void add_selection_options(po::options_description& options) {
  options.add_options()
      ("split", po::value<std::string>(), "split of the dataset (e.g. test, train; 'all' = every example)")
      ("begin", po::value<long long>(), "first position in the split (default 0)")
      ("end", po::value<long long>(), "one past the last position (-1 = end of split)")
      ("skip", po::value<long long>(), "take every skip-th example (default 1)")
      ("checkpoint", po::value<std::string>(), "native model checkpoint (overrides /model/checkpoint)")
      ("torchscript", po::value<std::string>(), "TorchScript model file (overrides /model/torchscript)")
      ("estimator", po::value<std::string>(), "dual: estimator checkpoint (overrides /dual/estimator/checkpoint)")
      ("denoiser", po::value<std::string>(), "native denoiser checkpoint (overrides /denoiser/checkpoint; the config needs a /denoiser section)");
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

void run_certify(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const CertifyConfig certify = config.certify();
  with_source(config, [&] { smooth::validate(certify); });
  dist::single_process_world();
  DualConfig dual;
  if (certify.method != "global") dual = config.dual();
  DataSelection in = load_selection(config, certify.selection, "/certify/selection");
  const std::int64_t k = in.dataset.num_classes();
  nlohmann::json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                             {"certify", to_json(certify)}};
  if (!dual.routing()) resolved["model"] = to_json(config.model());
  if (certify.method != "global") resolved["dual"] = to_json(dual);
  const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config);
  if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
  io::ResultInfo info = result_info("certify", method_prefix(config) + method_name(certify.method, certify.sigma, dual.routing(), ""),
                                    certify.method == "global" ? certify.sigma : 0.0, certify.n0, certify.n,
                                    certify.alpha, k, in, certify.selection.split);
  if (certify.method != "global") {
    info.sigma_candidates = dual.sigma_candidates;
    if (certify.method == "dual") {
      info.sigma_e = dual.sigma_e;
      info.alpha_e = certify.alpha_e;
      info.alpha_c = certify.alpha_c;
    }
  }
  io::ensure_directory(out_dir);
  io::Hdf5ResultSink h5((std::filesystem::path(out_dir) / "certify.h5").string(), info,
                        stage_provenance("dualrs.certify", "certify", resolved, certify.seed, kRngLayoutVersion));
  io::TsvResultSink tsv((std::filesystem::path(out_dir) / "certify.tsv").string());
  TeeSink sink({&h5, &tsv});
  const auto count = static_cast<std::int64_t>(in.indices.size());
  ProgressMeter progress("certify " + info.method, count, "ex", verbosity);
  const smooth::ExampleFn examples = example_fn(in);
  if (certify.method == "global") {
    auto model = compose_base(config, load_classifier(config, k), config.model().input, denoiser, certify.sigma, "/certify/sigma");
    smooth::certify_all(*model, count, examples, certify, sink, &progress);
  } else {
    ClassifierSet classifiers = load_classifiers(config, dual, k, denoiser);
    const smooth::PerSigmaSettings ps{dual.sigma_candidates, certify.n0, certify.n, certify.batch_size, certify.seed};
    std::shared_ptr<model::BaseModel> estimator;
    if (certify.method == "dual") estimator = load_estimator(config, dual, denoiser);
    for (std::int64_t i = 0; i < count; ++i) {
      if (certify.method == "dual") {
        sink.write(smooth::dual_certify_example(*estimator, classifiers.pool, examples(i),
                                                {ps, dual.sigma_e, certify.alpha_e, certify.alpha_c}));
      } else {
        sink.write(smooth::multiscale_certify_example(classifiers.pool, examples(i), ps, certify.alpha,
                                                      alpha_split(certify.alpha_split)));
      }
      progress.update(i + 1);
    }
  }
  sink.finish();
  progress.finish();
}

void run_predict(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const PredictConfig predict = config.predict();
  with_source(config, [&] { smooth::validate(predict); });
  dist::single_process_world();
  DualConfig dual;
  if (predict.method != "global") dual = config.dual();
  DataSelection in = load_selection(config, predict.selection, "/predict/selection");
  const std::int64_t k = in.dataset.num_classes();
  nlohmann::json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                             {"predict", to_json(predict)}};
  if (!dual.routing()) resolved["model"] = to_json(config.model());
  if (predict.method != "global") resolved["dual"] = to_json(dual);
  const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config);
  if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
  io::ResultInfo info = result_info("predict", method_prefix(config) + method_name(predict.method, predict.sigma, dual.routing(), "predict_"),
                                    predict.method == "global" ? predict.sigma : 0.0, 0, predict.n, predict.alpha, k,
                                    in, predict.selection.split);
  io::ensure_directory(out_dir);
  io::Hdf5ResultSink h5((std::filesystem::path(out_dir) / "predict.h5").string(), info,
                        stage_provenance("dualrs.predict", "predict", resolved, predict.seed, kRngLayoutVersion));
  io::TsvResultSink tsv((std::filesystem::path(out_dir) / "predict.tsv").string());
  TeeSink sink({&h5, &tsv});
  const auto count = static_cast<std::int64_t>(in.indices.size());
  ProgressMeter progress("predict " + info.method, count, "ex", verbosity);
  const smooth::ExampleFn examples = example_fn(in);
  if (predict.method == "global") {
    auto model = compose_base(config, load_classifier(config, k), config.model().input, denoiser, predict.sigma, "/predict/sigma");
    smooth::predict_all(*model, count, examples, predict, sink, &progress);
  } else {
    ClassifierSet classifiers = load_classifiers(config, dual, k, denoiser);
    const smooth::PerSigmaSettings ps{dual.sigma_candidates, 0, predict.n, predict.batch_size, predict.seed};
    std::shared_ptr<model::BaseModel> estimator;
    if (predict.method == "dual") estimator = load_estimator(config, dual, denoiser);
    for (std::int64_t i = 0; i < count; ++i) {
      if (predict.method == "dual") {
        sink.write(smooth::dual_predict_example(*estimator, classifiers.pool, examples(i),
                                                {ps, dual.sigma_e, predict.alpha / 2, predict.alpha / 2}));
      } else {
        sink.write(smooth::multiscale_predict_example(classifiers.pool, examples(i), ps, predict.alpha,
                                                      alpha_split(predict.alpha_split)));
      }
      progress.update(i + 1);
    }
  }
  sink.finish();
  progress.finish();
}

int cmd_certify(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON, see data_schemas/config.schema.json)")
      ("out,o", po::value<std::string>()->required(), "output folder: certify.h5 and certify.tsv are written there")
      ("method", po::value<std::string>(), "global (standard RS at --sigma), dual (Dual RS over /dual) or multiscale")
      ("sigma", po::value<double>(), "noise level sigma, [0,1]-pixel units (> 0)")
      ("n0", po::value<long long>(), "noisy copies to select the class (default 100)")
      ("n", po::value<long long>(), "noisy copies to bound p_A (default 1000)")
      ("alpha", po::value<double>(), "failure probability, in (0, 1) (default 0.001)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass (default 1000)")
      ("seed", po::value<unsigned long long>(), "noise seed (default 0)");
  add_selection_options(options);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs certify -c configs/mnist.json -o runs/cert --checkpoint runs/base/model.pt --sigma 0.5 "
                  "--n 1000 --end 100")) {
    return 0;
  }
  std::vector<FlagMapping> flags = {{"method", "/certify/method", T::kString}, {"sigma", "/certify/sigma", T::kDouble},
                                    {"n0", "/certify/n0", T::kInt},           {"n", "/certify/n", T::kInt},
                                    {"alpha", "/certify/alpha", T::kDouble},  {"batch-size", "/certify/batch_size", T::kInt},
                                    {"seed", "/certify/seed", T::kUInt}};
  for (auto& f : selection_flags("certify")) flags.push_back(f);
  const auto config = ExperimentConfig::load(vm["config"].as<std::string>(), overrides_from_flags(vm, flags));
  run_certify(config, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

int cmd_predict(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON)")
      ("out,o", po::value<std::string>()->required(), "output folder: predict.h5 and predict.tsv")
      ("method", po::value<std::string>(), "global, dual or multiscale")
      ("sigma", po::value<double>(), "noise level sigma (> 0)")
      ("n", po::value<long long>(), "noisy copies (default 1000)")
      ("alpha", po::value<double>(), "abstain unless the binomial test p-value <= alpha (default 0.001)")
      ("batch-size", po::value<long long>(), "noisy copies per forward pass (default 1000)")
      ("seed", po::value<unsigned long long>(), "noise seed (default 0)");
  add_selection_options(options);
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs predict -c configs/mnist.json -o runs/pred --checkpoint runs/base/model.pt --sigma 0.25")) {
    return 0;
  }
  std::vector<FlagMapping> flags = {{"method", "/predict/method", T::kString},
                                    {"sigma", "/predict/sigma", T::kDouble}, {"n", "/predict/n", T::kInt},
                                    {"alpha", "/predict/alpha", T::kDouble}, {"batch-size", "/predict/batch_size", T::kInt},
                                    {"seed", "/predict/seed", T::kUInt}};
  for (auto& f : selection_flags("predict")) flags.push_back(f);
  const auto config = ExperimentConfig::load(vm["config"].as<std::string>(), overrides_from_flags(vm, flags));
  run_predict(config, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

}  // namespace dualrs::app
