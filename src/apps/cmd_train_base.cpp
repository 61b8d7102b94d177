// dualrs train-base: a base classifier trained under Gaussian noise augmentation.

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/base_model.h"
#include "dualrs/train/train_base.h"
#include "sharded_stage.h"
#include "stage_support.h"

namespace dualrs::app {

namespace {
// Every rank trains (data-parallel, dualrs/train/data_parallel.h); rank 0 writes the outputs.
void train_base_on_every_rank(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  const Verbosity verbosity = ctx.verbosity;
  TrainBaseConfig train;
  ModelConfig model_config;
  DatasetConfig dataset_config;
  std::optional<data::ImageDataset> dataset;
  std::vector<std::int64_t> indices;
  std::shared_ptr<model::BaseModel> model;
  std::shared_ptr<model::BaseModel> trained;  // model, behind the denoiser when there is one
  std::string device = "cpu";                  // this rank's device for the model
  const std::filesystem::path dir(out_dir);
  const std::string checkpoint = (dir / "model.pt").string();
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
    dataset_config = config.dataset();
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
    provenance = io::make_provenance("dualrs.train_base", "train-base", resolved, train.seed, 0);
    provenance.library_versions += "; torch " + std::string(TORCH_VERSION);
    record_world(ctx, provenance);
  });

  std::string log = "epoch,loss,accuracy,lr,seconds\n";
  nlohmann::json history = nlohmann::json::array();
  auto on_epoch = [&](const train::EpochStats& s) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f\n", static_cast<long long>(s.epoch), s.loss, s.accuracy,
                  s.lr, s.seconds);
    log += line;
    history.push_back({{"epoch", s.epoch}, {"loss", s.loss}, {"accuracy", s.accuracy}, {"lr", s.lr}, {"seconds", s.seconds}});
    if (!ctx.is_root()) return;
    // A checkpoint and the log after every epoch, each published atomically.
    model::save_checkpoint(*model, checkpoint);
    io::write_file_atomic((dir / "train_log.csv").string(), log);
    say(ctx, "train-base: epoch %lld/%lld loss %.4f noisy-train accuracy %.4f (%.1fs)", static_cast<long long>(s.epoch),
        static_cast<long long>(train.epochs), s.loss, s.accuracy, s.seconds);
  };
  ctx.agreed([&] { train::train_base(*trained, *dataset, indices, train, train_context(ctx, device), on_epoch, verbosity); });
  ctx.on_root([&] {
    provenance.finished_utc = io::utc_now();
    nlohmann::json meta = {{"arch", model_config.arch},
                           {"num_classes", model_config.num_classes},
                           {"checkpoint", "model.pt"},
                           {"examples", indices.size()},
                           {"history", history},
                           {"provenance", io::to_json(provenance)}};
    io::write_file_atomic((dir / "model.json").string(), meta.dump(2) + "\n");
  });
}
}  // namespace

void run_train_base(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  train_base_on_every_rank(ctx, config, out_dir);
}

int cmd_train_base(const Invocation& inv) {
  using T = FlagMapping::Type;
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(),
       "experiment config (JSON, data_schemas/config.schema.json): /dataset, /model (arch), /train_base")
      ("out,o", po::value<std::string>()->required(),
       "output folder: model.pt, model.json, train_log.csv (data_schemas/models.md)")
      ("epochs", po::value<long long>(), "training epochs, >= 1; default 6 (overrides /train_base/epochs)")
      ("batch-size", po::value<long long>(), "global batch: examples per optimizer step over all ranks (under mpirun -np K each rank "
       "takes a slice), >= 1; default 128 (overrides /train_base/batch_size)")
      ("lr", po::value<double>(), "AdamW learning rate, > 0; default 1e-3 (overrides /train_base/lr)")
      ("sigma", po::value<double>(), "one training noise level, std in [0,1]-pixel units, >= 0 (0 = clean images); replaces "
       "sigma_candidates (overrides /train_base/sigma)")
      ("sigma-candidates", po::value<std::string>(), "comma list, e.g. 0.25,0.5,1.0: each example's noise level is "
       "drawn uniformly from these; replaces sigma (overrides /train_base/sigma_candidates)")
      ("split", po::value<std::string>(), "split to train on; default train (overrides /train_base/selection/split)")
      ("end", po::value<long long>(), "train on the first END examples of the split; -1 = all (default) "
       "(overrides /train_base/selection/end)")
      ("seed", po::value<unsigned long long>(), "seed of the initial weights, shuffling and training noise, integer in [0, 2^53); default 0 "
       "(overrides /train_base/seed)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm,
                  {"--config CONFIG --out DIR [overrides]",
                   "Trains a native classifier (/model/arch) with Gaussian noise augmentation (Cohen et al. §4):\n"
                   "every training image gets noise of one sigma, or of a sigma drawn per example from\n"
                   "sigma_candidates. AdamW; a checkpoint and the log are written after every epoch.",
                   "dualrs train-base -c configs/mnist.json -o runs/base --sigma-candidates 0.25,0.5,1.0 --epochs 6\n"
                   "  mpirun -np 2 dualrs train-base -c configs/mnist.json -o runs/base   (data-parallel)"})) {
    return 0;
  }
  const auto config = load_config(inv, vm["config"].as<std::string>(), [&] {
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
    return patch;
  });
  run_train_base(*inv.ctx, config, vm["out"].as<std::string>());
  return 0;
}

}  // namespace dualrs::app
