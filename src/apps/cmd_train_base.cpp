// dualrs train-base: a base classifier trained under Gaussian noise augmentation.

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/dist/world.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/base_model.h"
#include "dualrs/train/train_base.h"
#include "stage_support.h"

namespace dualrs::app {

void run_train_base(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity) {
  const TrainBaseConfig train = config.train_base();
  const ModelConfig model_config = config.model();
  try {
    train::validate(train);
  } catch (const ConfigError& e) {
    throw ConfigError(config.source(), e.issues());
  }
  if (model_config.arch.empty()) {
    throw ConfigError(config.source(), "/model/arch", "train-base trains a native architecture; set /model/arch");
  }
  dist::single_process_world();
  const DataSelection selected = load_selection(config, train.selection, "/train_base/selection");
  const data::ImageDataset& dataset = selected.dataset;
  const auto& indices = selected.indices;
  auto model = model::make_native_model(model_config.arch, model_config.num_classes);
  io::ensure_directory(out_dir);
  const std::filesystem::path dir(out_dir);
  const std::string checkpoint = (dir / "model.pt").string();

  nlohmann::json resolved = {{"name", config.doc().value("name", "")},
                             {"dataset", to_json(config.dataset())},
                             {"model", to_json(model_config)},
                             {"train_base", to_json(train)}};
  io::Provenance provenance = io::make_provenance("dualrs.train_base", "train-base", resolved, train.seed, 0);
  provenance.library_versions += "; torch " + std::string(TORCH_VERSION);

  std::string log = "epoch,loss,accuracy,lr,seconds\n";
  nlohmann::json history = nlohmann::json::array();
  auto on_epoch = [&](const train::EpochStats& s) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f\n", static_cast<long long>(s.epoch), s.loss, s.accuracy,
                  s.lr, s.seconds);
    log += line;
    history.push_back({{"epoch", s.epoch}, {"loss", s.loss}, {"accuracy", s.accuracy}, {"lr", s.lr}, {"seconds", s.seconds}});
    // A checkpoint and the log after every epoch, each published atomically.
    model::save_checkpoint(*model, checkpoint);
    io::write_file_atomic((dir / "train_log.csv").string(), log);
    if (verbosity != Verbosity::kQuiet) {
      std::fprintf(stderr, "train-base: epoch %lld/%lld loss %.4f noisy-train accuracy %.4f (%.1fs)\n",
                   static_cast<long long>(s.epoch), static_cast<long long>(train.epochs), s.loss, s.accuracy, s.seconds);
    }
  };
  train::train_base(*model, dataset, indices, train, on_epoch, verbosity);
  provenance.finished_utc = io::utc_now();
  nlohmann::json meta = {{"arch", model_config.arch},
                         {"num_classes", model_config.num_classes},
                         {"checkpoint", "model.pt"},
                         {"examples", indices.size()},
                         {"history", history},
                         {"provenance", io::to_json(provenance)}};
  io::write_file_atomic((dir / "model.json").string(), meta.dump(2) + "\n");
}

int cmd_train_base(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "experiment config (JSON) with dataset, model, train_base")
      ("out,o", po::value<std::string>()->required(), "output folder: model.pt, model.json, train_log.csv")
      ("epochs", po::value<long long>(), "training epochs (default 6)")
      ("batch-size", po::value<long long>(), "examples per optimizer step (default 128)")
      ("lr", po::value<double>(), "AdamW learning rate (default 1e-3)")
      ("sigma", po::value<double>(), "fixed training noise level (pixel units)")
      ("sigma-candidates", po::value<std::string>(), "comma list: per-example noise level drawn from these")
      ("split", po::value<std::string>(), "split to train on (default train)")
      ("end", po::value<long long>(), "train on the first END examples of the split")
      ("seed", po::value<unsigned long long>(), "seed of shuffling and training noise (default 0)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm, "--config CONFIG --out DIR [overrides]",
                  "dualrs train-base -c configs/mnist.json -o runs/base --sigma-candidates 0.25,0.5,1.0 --epochs 6")) {
    return 0;
  }
  nlohmann::json patch = overrides_from_flags(
      vm, {{"epochs", "/train_base/epochs", T::kInt},
           {"batch-size", "/train_base/batch_size", T::kInt},
           {"lr", "/train_base/lr", T::kDouble},
           {"sigma", "/train_base/sigma", T::kDouble},
           {"sigma-candidates", "/train_base/sigma_candidates", T::kDoubleList},
           {"split", "/train_base/selection/split", T::kString},
           {"end", "/train_base/selection/end", T::kInt},
           {"seed", "/train_base/seed", T::kUInt}});
  // A flag for one noise mode replaces the config's other mode (merge patch: null deletes).
  if (patch.contains("train_base") && patch["train_base"].contains("sigma")) patch["train_base"]["sigma_candidates"] = nullptr;
  if (patch.contains("train_base") && patch["train_base"].contains("sigma_candidates")) patch["train_base"]["sigma"] = nullptr;
  const auto config = ExperimentConfig::load(vm["config"].as<std::string>(), patch);
  run_train_base(config, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

}  // namespace dualrs::app
