#pragma once
/// \file
/// Cost planning in device-hours (`dualrs calibrate`, `dualrs run --dry-run --calibration`;
/// docs/cluster.md §8a): the measured forward throughput of every model a config names on one
/// device, and the projection of a job's planned forward passes (forward_passes.h) onto it.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/pipeline/forward_passes.h"

namespace dualrs::pipeline {

/// One model's measured throughput.
struct ModelRate {
  std::string arch;              ///< "mnist_cnn", or the TorchScript file
  std::string device;            ///< "cpu", "cuda:0", ...
  std::int64_t batch_size = 0;   ///< rows per forward in the measurement
  double samples_per_s = 0.0;    ///< noisy copies through the model per second (training: forward + backward)
  std::string weights;           ///< "checkpoint", "torchscript" or "fresh" (no checkpoint yet: speed does not depend on values)
  std::string precision = "fp32";  ///< the inference precision measured (/…/precision); training: fp32
};

/// What `dualrs calibrate` writes (calibration.json).
struct Calibration {
  std::string config_source;      ///< the config file measured
  std::string config_name;        ///< its /name
  std::string device;             ///< device the models ran on
  std::string device_name;        ///< e.g. "NVIDIA H200" or the CPU model
  std::string library_versions;
  int threads = 0;                ///< intra-op threads of the measurement
  std::string created_utc;
  /// Keyed as the plan's ForwardPasses: "classifier", "classifier training", "estimator",
  /// "estimator training", "experts", "denoiser".
  std::map<std::string, ModelRate> rates;
  double input_images_per_s = 0.0;  ///< the dataset's loader: decoded images per second (one thread)
  std::int64_t input_images = 0;    ///< images decoded for that figure
};

/// Measures every model `config` names (/model; /dual/estimator and /dual/experts when set;
/// /denoiser) on `device` (empty: each model's configured device): inference in the form
/// the inference stages use (frozen unless `optimize` is false) at /certify/batch_size, and
/// training (eager, forward + backward) of the native classifier and estimator at their
/// training batch sizes, each for at least `seconds` after one warm-up batch; then the
/// dataset's loader on the first images of /certify/selection. A native model (classifier,
/// estimator or ε-model) whose checkpoint does not exist yet (a job's later stage writes it)
/// is measured with fresh weights. `say` receives one line per measurement.
/// \throws ConfigError (bad device, missing sections), ModelError, DataError (data absent).
Calibration measure_calibration(const ExperimentConfig& config, const std::string& device, double seconds,
                                const std::function<void(const std::string&)>& say);

nlohmann::json to_json(const Calibration& c);
/// Reads calibration.json. \throws ConfigError naming the file and the key when it is
/// missing, malformed or holds a non-positive rate.
Calibration read_calibration(const std::string& path);

/// A stage's projected time at `ranks` ranks: each model's forward passes over its measured
/// rate, divided among the ranks (the sharded stages split examples; data-parallel training
/// splits batches), input loading not counted (overlapped with the forwards).
struct Projection {
  double seconds = 0.0;                  ///< wall time of the stage
  double device_hours = 0.0;             ///< seconds × ranks / 3600
  std::vector<std::string> unmeasured;   ///< models with passes but no rate in the calibration
  bool unknown_examples = false;         ///< some pass count is unknown (data absent)
};
Projection project(const std::vector<ForwardPasses>& passes, const Calibration& calibration, int ranks);

/// One line per model the stage's config names whose architecture or device differs from the
/// calibration's ("estimator: stage uses cifar_resnet20 on cuda, calibration measured mnist_cnn
/// on cpu"); empty when they agree.
std::vector<std::string> calibration_mismatches(const ExperimentConfig& config, const Calibration& calibration);

}  // namespace dualrs::pipeline
