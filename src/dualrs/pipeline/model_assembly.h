#pragma once
// Plumbing shared by the stage entry points: loading the dataset, models and the classifier
// pool a config names, provenance for outputs, and example accessors.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/dist/stop_signal.h"
#include "dualrs/dist/world.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"
#include "dualrs/train/data_parallel.h"
#include "dualrs/pipeline/stage_context.h"

namespace dualrs::pipeline {

/// Adds to `digests` {path: SHA-256} for every non-empty "checkpoint", "torchscript" or
/// "init_checkpoint" string in `node` (any depth) that names an existing file.
void collect_model_file_digests(const nlohmann::json& node, nlohmann::json& digests);

/// Provenance whose config is `resolved` (the typed sections the stage used) plus
/// `input_files_sha256`, the digests of the model files it names (added to any digests
/// `resolved` already holds there), so the config hash that keys resume (shards, training
/// state) changes when a model file at the same path does.
io::Provenance stage_provenance(const std::string& schema, const std::string& command, nlohmann::json resolved,
                                std::uint64_t seed, int rng_layout_version);

/// With grid noise, adds `grid_tables` {σ: SHA-256 of GridTable(σ).canonical_bytes()} for each
/// of `sigmas` to `resolved` (so the tables enter the provenance and the resume key); with
/// Gaussian noise leaves `resolved` as it is.
void add_grid_tables(nlohmann::json& resolved, NoiseKind noise, const std::vector<double>& sigmas);

/// The dataset a config names and the indices a selection picks from it.
struct DataSelection {
  data::ImageDataset dataset;
  std::vector<std::int64_t> indices;
};
DataSelection load_selection(const ExperimentConfig& config, const SelectionConfig& selection, const std::string& pointer);

/// Example number `position` of a selection.
smooth::ExampleFn example_fn(const DataSelection& in);

/// Examples [begin, end) of `examples`, in order: one forward group (ExampleGroups).
std::vector<smooth::Example> examples_between(const smooth::ExampleFn& examples, std::int64_t begin, std::int64_t end);

/// Model loading puts a model whose config says device "cuda" on this rank's GPU
/// ("cuda:<local rank mod visible GPUs>", dist::rank_device).

/// The config's /denoiser, loaded once; nullptr when the config has none. One instance serves
/// every σ, the classifier and the estimator (DDS; docs/method.md §9). Device "cuda" means this
/// rank's GPU, as for models (8 ranks of a node must not all load the ε-model on GPU 0).
std::shared_ptr<model::DiffusionDenoiser> load_denoiser(const ExperimentConfig& config, const dist::World& world);

/// The base classifier a stage smooths with: `classifier` behind the denoiser at `sigma`
/// (a DenoisedClassifier; nullopt = per-row σ, for training) when there is one, else with its
/// input mapping only. \param pointer names σ in errors (e.g. "/certify/sigma").
/// \throws ConfigError (σ outside the denoiser's schedule) with the config's file as source.
std::shared_ptr<model::BaseModel> compose_base(const ExperimentConfig& config, std::shared_ptr<model::BaseModel> classifier,
                                               const ClassifierInputConfig& input,
                                               const std::shared_ptr<model::DiffusionDenoiser>& denoiser,
                                               std::optional<double> sigma, const std::string& pointer);

/// The classifiers used at each σ: the experts (routing) or /model shared by every σ, each
/// composed with `denoiser` (may be null) at its σ.
struct ClassifierSet {
  std::vector<std::shared_ptr<model::BaseModel>> owned;
  smooth::ClassifierPool pool;
};
ClassifierSet load_classifiers(const ExperimentConfig& config, const DualConfig& dual, std::int64_t num_classes,
                               const std::shared_ptr<model::DiffusionDenoiser>& denoiser, const dist::World& world);

/// The /model classifier as stored (no denoiser, no input mapping), checked against the
/// dataset's class count. For kInference with /model/optimize (the default), its frozen
/// inference form (model::load_model; a TorchScript file that cannot be frozen runs
/// unfrozen, with a warning on rank 0).
std::shared_ptr<model::BaseModel> load_classifier(const ExperimentConfig& config, std::int64_t num_classes,
                                                  const dist::World& world,
                                                  model::ModelUse use = model::ModelUse::kInference);

/// The Dual RS estimator (|Σ| outputs), composed with `denoiser` (may be null) at σ_e.
/// \throws ConfigError when /dual/estimator is missing.
std::shared_ptr<model::BaseModel> load_estimator(const ExperimentConfig& config, const DualConfig& dual,
                                                 const std::shared_ptr<model::DiffusionDenoiser>& denoiser,
                                                 const dist::World& world);

/// `model`, checking `stop` before every forward pass: a stop request (SIGTERM, SIGUSR1,
/// SIGINT, SIGHUP) then ends an example between two batches of noisy copies by throwing
/// dist::StopInExample, which the sharded frame treats as a stop before the example. A stage
/// with n = 10^9 noisy copies per example thus stops within one batch's time.
std::shared_ptr<model::BaseModel> stopping_between_batches(std::shared_ptr<model::BaseModel> model,
                                                           const dist::StopToken& stop);
/// The same for every classifier of `set` (the pool points at the wrapped ones).
void stop_between_batches(ClassifierSet& set, const dist::StopToken& stop);

/// "{0.25, 0.5, 1.0}": a Σ in messages.
std::string describe_sigmas(const std::vector<double>& sigmas);

/// Method names of result files: "dds_" + name when the config has a denoiser.
std::string method_prefix(const ExperimentConfig& config);

/// The device this rank runs a model on: a config's "cuda" becomes "cuda:<local rank mod
/// visible devices>" (dist::rank_device); "cpu" and "cuda:N" are kept. \throws ConfigError at
/// `pointer` (the config entry that asked for the device) when no GPU is visible.
std::string rank_device(const StageContext& ctx, const std::string& requested,
                        const std::string& pointer = "/model/device");

/// What the trainers run with, for a model on `device` (a rank_device result): the job's
/// communicator (MPI under mpirun, else a single process), its error wording and, when the
/// model is on a GPU and the job has several ranks, an NcclCommunicator over this rank's GPU
/// (bootstrapped over MPI on first use, collective; kept in `ctx`), so gradients are reduced
/// on the device. Without NCCL in the build, CUDA gradients go through host copies and MPI
/// (with a warning). \throws ModelError (bad device), CommError (NCCL set-up).
train::TrainContext train_context(StageContext& ctx, const std::string& device);

/// Re-throws a ConfigError from a validator with the config's file as its source.
template <typename Fn>
void with_source(const ExperimentConfig& config, Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    if (!e.source().empty()) throw;
    throw ConfigError(config.source(), e.issues());
  }
}

}  // namespace dualrs::pipeline
