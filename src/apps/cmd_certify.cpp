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

namespace dualrs::app {
namespace {

std::vector<FlagMapping> selection_flags(const std::string& section) {
  using T = FlagMapping::Type;
  return {{"split", "/" + section + "/selection/split", T::kString},
          {"begin", "/" + section + "/selection/begin", T::kInt},
          {"end", "/" + section + "/selection/end", T::kInt},
          {"skip", "/" + section + "/selection/skip", T::kInt},
          {"checkpoint", "/model/checkpoint", T::kString},
          {"torchscript", "/model/torchscript", T::kString}};
}

void add_selection_options(po::options_description& options) {
  options.add_options()
      ("split", po::value<std::string>(), "split of the dataset (e.g. test, train; 'all' = every example)")
      ("begin", po::value<long long>(), "first position in the split (default 0)")
      ("end", po::value<long long>(), "one past the last position (-1 = end of split)")
      ("skip", po::value<long long>(), "take every skip-th example (default 1)")
      ("checkpoint", po::value<std::string>(), "native model checkpoint (overrides /model/checkpoint)")
      ("torchscript", po::value<std::string>(), "TorchScript model file (overrides /model/torchscript)");
}

io::Provenance provenance_for(const std::string& schema, const std::string& command, const ExperimentConfig& config,
                              const nlohmann::json& section, std::uint64_t seed) {
  nlohmann::json resolved = {{"name", config.doc().value("name", "")},
                             {"dataset", to_json(config.dataset())},
                             {"model", to_json(config.model())},
                             {command, section}};
  io::Provenance p = io::make_provenance(schema, command, resolved, seed, kRngLayoutVersion);
  p.library_versions += "; torch " + std::string(TORCH_VERSION);
  return p;
}

struct Loaded {
  data::ImageDataset dataset;
  std::vector<std::int64_t> indices;
  std::unique_ptr<model::BaseModel> model;
};

Loaded load_inputs(const ExperimentConfig& config, const SelectionConfig& selection, const std::string& section) {
  Loaded in;
  const DatasetConfig dataset_config = config.dataset();
  const ModelConfig model_config = config.model();
  in.dataset = data::load_dataset(dataset_config);
  in.indices = data::select_indices(dataset_config, in.dataset.size(), selection, config.source(),
                                    "/" + section + "/selection");
  in.model = model::load_model(model_config);
  if (in.model->num_classes() != in.dataset.num_classes()) {
    throw ConfigError(config.source(), "/model/num_classes",
                      std::to_string(in.model->num_classes()) + " classes but the dataset has " +
                          std::to_string(in.dataset.num_classes()));
  }
  return in;
}

smooth::ExampleFn example_fn(const Loaded& in) {
  return [&in](std::int64_t position) {
    const std::int64_t idx = in.indices[static_cast<std::size_t>(position)];
    return smooth::Example{idx, in.dataset.label(idx), in.dataset.image(idx)};
  };
}

}  // namespace

void run_certify(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const CertifyConfig certify = config.certify();
  try {
    smooth::validate(certify);
  } catch (const ConfigError& e) {
    throw ConfigError(config.source(), e.issues());
  }
  dist::single_process_world();
  Loaded in = load_inputs(config, certify.selection, "certify");
  io::ensure_directory(out_dir);
  io::ResultInfo info;
  info.method = global_method_name(certify.sigma);
  info.kind = "certify";
  info.sigma = certify.sigma;
  info.n0 = certify.n0;
  info.n = certify.n;
  info.alpha = certify.alpha;
  info.num_classes = in.model->num_classes();
  info.dataset = in.dataset.name();
  info.split = certify.selection.split;
  io::Hdf5ResultSink h5((std::filesystem::path(out_dir) / "certify.h5").string(), info,
                        provenance_for("dualrs.certify", "certify", config, to_json(certify), certify.seed));
  io::TsvResultSink tsv((std::filesystem::path(out_dir) / "certify.tsv").string());
  TeeSink sink({&h5, &tsv});
  ProgressMeter progress("certify " + info.method, static_cast<std::int64_t>(in.indices.size()), "ex", verbosity);
  smooth::certify_all(*in.model, static_cast<std::int64_t>(in.indices.size()), example_fn(in), certify, sink,
                      &progress);
  sink.finish();
  progress.finish();
}

void run_predict(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const PredictConfig predict = config.predict();
  try {
    smooth::validate(predict);
  } catch (const ConfigError& e) {
    throw ConfigError(config.source(), e.issues());
  }
  dist::single_process_world();
  Loaded in = load_inputs(config, predict.selection, "predict");
  io::ensure_directory(out_dir);
  io::ResultInfo info;
  info.method = "predict_sigma_" + format_decimal(predict.sigma);
  info.kind = "predict";
  info.sigma = predict.sigma;
  info.n = predict.n;
  info.alpha = predict.alpha;
  info.num_classes = in.model->num_classes();
  info.dataset = in.dataset.name();
  info.split = predict.selection.split;
  io::Hdf5ResultSink h5((std::filesystem::path(out_dir) / "predict.h5").string(), info,
                        provenance_for("dualrs.predict", "predict", config, to_json(predict), predict.seed));
  io::TsvResultSink tsv((std::filesystem::path(out_dir) / "predict.tsv").string());
  TeeSink sink({&h5, &tsv});
  ProgressMeter progress("predict sigma=" + format_decimal(predict.sigma), static_cast<std::int64_t>(in.indices.size()),
                         "ex", verbosity);
  smooth::predict_all(*in.model, static_cast<std::int64_t>(in.indices.size()), example_fn(in), predict, sink,
                      &progress);
  sink.finish();
  progress.finish();
}

int cmd_certify(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON, see data_schemas/config.schema.json)")
      ("out,o", po::value<std::string>()->required(), "output folder: certify.h5 and certify.tsv are written there")
      ("method", po::value<std::string>(), "certification method: global (standard RS at one sigma)")
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
  std::vector<FlagMapping> flags = {{"sigma", "/predict/sigma", T::kDouble}, {"n", "/predict/n", T::kInt},
                                    {"alpha", "/predict/alpha", T::kDouble}, {"batch-size", "/predict/batch_size", T::kInt},
                                    {"seed", "/predict/seed", T::kUInt}};
  for (auto& f : selection_flags("predict")) flags.push_back(f);
  const auto config = ExperimentConfig::load(vm["config"].as<std::string>(), overrides_from_flags(vm, flags));
  run_predict(config, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

}  // namespace dualrs::app
