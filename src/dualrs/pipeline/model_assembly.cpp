#include "dualrs/pipeline/model_assembly.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "dualrs/core/error.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/model/denoised_classifier.h"
#include "dualrs/rng/grid_noise.h"

namespace dualrs::pipeline {

void collect_model_file_digests(const nlohmann::json& node, nlohmann::json& digests) {
  if (node.is_array()) {
    for (const auto& item : node) collect_model_file_digests(item, digests);
  } else if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      const bool model_file = key == "checkpoint" || key == "torchscript" || key == "init_checkpoint";
      if (model_file && value.is_string() && !value.get<std::string>().empty()) {
        const std::string path = value.get<std::string>();
        // A missing file is reported by the loader with its config pointer; not here.
        if (std::filesystem::is_regular_file(path)) digests[path] = io::sha256_file_hex(path);
      } else {
        collect_model_file_digests(value, digests);
      }
    }
  }
}

void add_grid_tables(nlohmann::json& resolved, NoiseKind noise, const std::vector<double>& sigmas) {
  if (noise != NoiseKind::kGrid) return;
  nlohmann::json tables = nlohmann::json::object();
  for (const double sigma : sigmas) tables[format_decimal(sigma)] = io::sha256_hex(GridTable::for_sigma(sigma).canonical_bytes());
  resolved["grid_tables"] = tables;
}

io::Provenance stage_provenance(const std::string& schema, const std::string& command, nlohmann::json resolved,
                                std::uint64_t seed, int rng_layout_version) {
  // The content of every model file the stage reads is part of its config: a checkpoint
  // retrained at the same path must not match shards or training state made with the old one.
  // Digests the caller put there (the data files a trainer reads) are kept.
  nlohmann::json digests = resolved.value("input_files_sha256", nlohmann::json::object());
  collect_model_file_digests(resolved, digests);
  if (!digests.empty()) resolved["input_files_sha256"] = digests;
  io::Provenance p = io::make_provenance(schema, command, resolved, seed, rng_layout_version);
  p.library_versions += "; torch " + std::string(TORCH_VERSION);
  return p;
}

DataSelection load_selection(const ExperimentConfig& config, const SelectionConfig& selection, const std::string& pointer) {
  DataSelection in;
  const DatasetConfig dataset_config = config.dataset();
  with_source(config, [&] { in.dataset = data::load_dataset(dataset_config); });
  in.indices = data::select_indices(dataset_config, in.dataset.size(), selection, config.source(), pointer,
                                    in.dataset.builtin_splits());
  return in;
}

smooth::ExampleFn example_fn(const DataSelection& in) {
  return [&in](std::int64_t position) {
    const std::int64_t idx = in.indices[static_cast<std::size_t>(position)];
    return smooth::Example{idx, in.dataset.label(idx), in.dataset.image(idx)};
  };
}

std::vector<smooth::Example> examples_between(const smooth::ExampleFn& examples, std::int64_t begin, std::int64_t end) {
  std::vector<smooth::Example> group;
  group.reserve(static_cast<std::size_t>(std::max<std::int64_t>(0, end - begin)));
  for (std::int64_t p = begin; p < end; ++p) group.push_back(examples(p));
  return group;
}

namespace {
std::string device_of_rank(const dist::World& world, const std::string& requested,
                           const std::string& pointer = "/model/device") {
  return dist::rank_device(world, requested, static_cast<int>(torch::cuda::device_count()), pointer);
}

// `pointer`: the config entry of the model's device, named when no GPU is visible.
ModelConfig on_rank_device(ModelConfig config, const dist::World& world, const std::string& pointer) {
  config.device = device_of_rank(world, config.device, pointer);
  return config;
}

// model::load_model on the rank's device; a model that could not be frozen is reported once (rank 0).
std::unique_ptr<model::BaseModel> load_on_rank(const ModelConfig& config, const dist::World& world, const std::string& pointer,
                                               model::ModelUse use = model::ModelUse::kInference) {
  std::string warning;
  std::unique_ptr<model::BaseModel> model =
      model::load_model(on_rank_device(config, world, pointer + "/device"), use, pointer, &warning);
  if (!warning.empty() && world.is_root()) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
    std::fflush(stderr);
  }
  return model;
}
}  // namespace

std::shared_ptr<model::DiffusionDenoiser> load_denoiser(const ExperimentConfig& config, const dist::World& world) {
  std::optional<DenoiserConfig> denoiser = config.denoiser();
  if (!denoiser) return nullptr;
  std::shared_ptr<model::DiffusionDenoiser> loaded;
  with_source(config, [&] {
    denoiser->device = device_of_rank(world, denoiser->device, "/denoiser/device");
    std::string warning;
    loaded = model::load_denoiser(*denoiser, &warning);
    if (!warning.empty() && world.is_root()) {
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
      std::fflush(stderr);
    }
  });
  return loaded;
}

std::shared_ptr<model::BaseModel> compose_base(const ExperimentConfig& config, std::shared_ptr<model::BaseModel> classifier,
                                               const ClassifierInputConfig& input,
                                               const std::shared_ptr<model::DiffusionDenoiser>& denoiser,
                                               std::optional<double> sigma, const std::string& pointer) {
  if (!denoiser) return model::adapt_input(std::move(classifier), input);
  if (sigma) {
    try {
      denoiser->step(*sigma);
    } catch (const ConfigError& e) {
      throw ConfigError(config.source(), pointer, e.issues().front().message);
    }
  }
  return std::make_shared<model::DenoisedClassifier>(denoiser, std::move(classifier), input, sigma);
}

std::shared_ptr<model::BaseModel> load_classifier(const ExperimentConfig& config, std::int64_t num_classes,
                                                  const dist::World& world, model::ModelUse use) {
  std::shared_ptr<model::BaseModel> model = load_on_rank(config.model(), world, "/model", use);
  if (model->num_classes() != num_classes) {
    throw ConfigError(config.source(), "/model/num_classes",
                      std::to_string(model->num_classes()) + " classes but the dataset has " + std::to_string(num_classes));
  }
  return model;
}

ClassifierSet load_classifiers(const ExperimentConfig& config, const DualConfig& dual, std::int64_t num_classes,
                               const std::shared_ptr<model::DiffusionDenoiser>& denoiser, const dist::World& world) {
  ClassifierSet set;
  const std::shared_ptr<model::BaseModel> shared = dual.routing() ? nullptr : load_classifier(config, num_classes, world);
  for (std::size_t i = 0; i < dual.sigma_candidates.size(); ++i) {
    const std::string pointer = "/dual/sigma_candidates/" + std::to_string(i);
    if (dual.routing()) {
      std::shared_ptr<model::BaseModel> expert =
          load_on_rank(to_model_config(dual.experts[i], num_classes), world, "/dual/experts/" + std::to_string(i));
      set.owned.push_back(compose_base(config, expert, dual.experts[i].input, denoiser, dual.sigma_candidates[i], pointer));
    } else {
      set.owned.push_back(compose_base(config, shared, config.model().input, denoiser, dual.sigma_candidates[i], pointer));
    }
    set.pool.push_back(set.owned.back().get());
  }
  return set;
}

std::shared_ptr<model::BaseModel> load_estimator(const ExperimentConfig& config, const DualConfig& dual,
                                                 const std::shared_ptr<model::DiffusionDenoiser>& denoiser,
                                                 const dist::World& world) {
  if (dual.estimator.empty()) {
    throw ConfigError(config.source(), "/dual/estimator", "missing: the variance estimator ('arch' + 'checkpoint' or 'torchscript')");
  }
  const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
  std::shared_ptr<model::BaseModel> estimator;
  if (!dual.estimator.torchscript.empty()) {
    estimator = load_on_rank(to_model_config(dual.estimator, s), world, "/dual/estimator");
  } else {
    std::unique_ptr<model::BaseModel> native = model::make_native_model(dual.estimator.arch, s);
    native->to_device(device_of_rank(world, dual.estimator.device, "/dual/estimator/device"));
    if (dual.estimator.checkpoint.empty()) {
      throw ConfigError(config.source(), "/dual/estimator/checkpoint", "missing: the trained estimator's checkpoint");
    }
    try {
      model::load_checkpoint(*native, dual.estimator.checkpoint);
    } catch (const ModelError& e) {
      DUALRS_THROW(ModelError, "estimator checkpoint ", dual.estimator.checkpoint, " does not load as a ", dual.estimator.arch,
                   " with |sigma_candidates| = ", s, " outputs: ", e.what());
    }
    estimator = dual.estimator.optimize ? model::prepare_for_inference(std::move(native), "/dual/estimator")
                                        : std::move(native);
  }
  return compose_base(config, estimator, dual.estimator.input, denoiser, dual.sigma_e, "/dual/sigma_e");
}

std::string rank_device(const StageContext& ctx, const std::string& requested, const std::string& pointer) {
  return device_of_rank(ctx.world, requested, pointer);
}

train::TrainContext train_context(StageContext& ctx, const std::string& device) {
  const c10::Device placed = model::parse_device(device);
  if (!placed.is_cuda() || ctx.comm.size() == 1) return {ctx.comm, nullptr, ctx.describe};
  if (!dist::nccl_built()) {
    warn(ctx, "training on %s over %d ranks without NCCL (this build has none): gradients go through host copies "
              "and MPI", device.c_str(), ctx.comm.size());
    return {ctx.comm, nullptr, ctx.describe};
  }
  const int ordinal = placed.has_index() ? placed.index() : ctx.world.local_rank;
  if (!ctx.device_comm || ctx.device_comm->device() != ordinal) {
    ctx.device_comm.reset();
    ctx.device_comm = std::make_shared<dist::NcclCommunicator>(ctx.comm, ordinal);
    say(ctx, "data-parallel training: %s over %d ranks, one GPU each", ctx.device_comm->versions().describe().c_str(),
        ctx.comm.size());
  }
  return {ctx.comm, ctx.device_comm.get(), ctx.describe};
}

namespace {
class StopCheckedModel final : public model::BaseModel {
 public:
  StopCheckedModel(std::shared_ptr<model::BaseModel> inner, const dist::StopToken& stop)
      : inner_(std::move(inner)), stop_(stop) {}
  at::Tensor logits(const at::Tensor& x) override {
    check();
    return inner_->logits(x);
  }
  at::Tensor logits_under_noise(const at::Tensor& x, const at::Tensor& sigma) override {
    check();
    return inner_->logits_under_noise(x, sigma);
  }
  std::int64_t num_classes() const override { return inner_->num_classes(); }
  std::string describe() const override { return inner_->describe(); }
  torch::nn::Module* module() override { return inner_->module(); }
  void set_training(bool training) override { inner_->set_training(training); }
  void to_device(const std::string& device) override { inner_->to_device(device); }

 private:
  void check() const {
    if (stop_.stop_requested()) throw dist::StopInExample("stop requested between two batches of noisy copies");
  }
  std::shared_ptr<model::BaseModel> inner_;
  const dist::StopToken& stop_;
};
}  // namespace

std::shared_ptr<model::BaseModel> stopping_between_batches(std::shared_ptr<model::BaseModel> model,
                                                           const dist::StopToken& stop) {
  return std::make_shared<StopCheckedModel>(std::move(model), stop);
}

void stop_between_batches(ClassifierSet& set, const dist::StopToken& stop) {
  set.pool.clear();
  for (auto& owned : set.owned) {
    owned = stopping_between_batches(owned, stop);
    set.pool.push_back(owned.get());
  }
}

std::string describe_sigmas(const std::vector<double>& sigmas) {
  std::string out = "{";
  for (std::size_t i = 0; i < sigmas.size(); ++i) out += (i ? ", " : "") + format_decimal(sigmas[i]);
  return out + "}";
}

std::string method_prefix(const ExperimentConfig& config) { return config.has("denoiser") ? "dds_" : ""; }

}  // namespace dualrs::pipeline
