#pragma once
/// \file
/// The base classifier f of randomized smoothing (docs/method.md §1): images in [0, 1] pixel space
/// in, logits out. Normalisation belongs inside the model, never before the noise.

#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "dualrs/core/config.h"

namespace torch::nn {
class Module;
}

namespace dualrs::model {

class BaseModel {
 public:
  virtual ~BaseModel() = default;
  /// \param x  float `[B, C, H, W]`, pixels in [0, 1] (plus noise)
  /// \return   float `[B, K]` logits. \throws ModelError when the model breaks its contract.
  virtual at::Tensor logits(const at::Tensor& x) = 0;
  /// Logits of noisy copies whose rows were drawn at different noise levels (training with a
  /// per-example σ). A plain classifier ignores σ; the base classifier of denoised smoothing
  /// (DenoisedClassifier) denoises row b at sigma[b] [DDS; docs/method.md §9].
  /// \param x  float `[B, C, H, W]`, pixels in [0, 1] plus noise. \param sigma  `[B]` noise
  /// levels (>= 0; 0 = a clean row). \return `[B, K]` logits. \throws ModelError, ConfigError.
  virtual at::Tensor logits_under_noise(const at::Tensor& x, const at::Tensor& sigma) {
    (void)sigma;
    return logits(x);
  }
  /// K, the number of classes.
  virtual std::int64_t num_classes() const = 0;
  /// For messages and provenance, e.g. "mnist_cnn(/path/model.pt)".
  virtual std::string describe() const = 0;
  /// The trainable module of a native model; nullptr for frozen (TorchScript) models.
  virtual torch::nn::Module* module() { return nullptr; }
  /// Checks an input batch against the model's input contract (what logits() checks before
  /// its forward). \throws ModelError naming the expected shape. The default accepts any.
  virtual void check_input(const at::Tensor& x) const { (void)x; }
  /// TorchScript source of a native model's forward, over its parameters and buffers named
  /// by flat_name (inference_graph.h): what its frozen inference form is compiled from.
  /// Empty when the model has none (docs/method.md §14).
  virtual std::string script_source() const { return ""; }
  /// How the forward runs: "frozen" (a frozen, optimised graph) or "eager".
  virtual std::string inference_form() const { return "eager"; }
  /// Switches training mode (dropout, batch norm) where the model has one.
  virtual void set_training(bool training) = 0;
  /// Moves a native model's weights and buffers to `device` ("cpu", "cuda:N"; see
  /// parse_device); logits() then moves its input there and returns logits on that device.
  /// The default (TorchScript models, which are placed when loaded) accepts only "cpu".
  /// \throws ModelError on a device this model or this LibTorch cannot use.
  virtual void to_device(const std::string& device);
};

/// `device` as a Torch device: "cpu", "cuda" or "cuda:N".
/// \throws ModelError on a malformed name, or a CUDA device when this LibTorch has no CUDA or
/// no CUDA device is visible (Debian's libtorch is CPU-only).
c10::Device parse_device(const std::string& device);

/// Builds a native architecture with fresh weights. \param arch "mnist_cnn", "cifar_resnet20",
/// "cifar_resnet56", "cifar_resnet110" or "resnet50".
/// \throws ConfigError on an unknown architecture.
std::unique_ptr<BaseModel> make_native_model(const std::string& arch, std::int64_t num_classes);

/// What a loaded model is for: inference stages get the frozen, optimised form when the
/// config's `optimize` is true; training stages always get the eager module.
enum class ModelUse { kInference, kTraining };

/// The model a config names: a native architecture loaded from `checkpoint` and moved to
/// `config.device`, or a TorchScript file loaded on `config.device`; for kInference with
/// `config.optimize`, in its frozen inference form (prepare_for_inference).
/// \param pointer  the config entry of the model, e.g. "/model" or "/dual/experts/0" (messages)
/// \param warning  set to a one-line warning when the model could not be frozen and runs eager
/// \throws ModelError naming the file when it cannot be loaded, or naming the device.
std::unique_ptr<BaseModel> load_model(const ModelConfig& config, ModelUse use = ModelUse::kInference,
                                      const std::string& pointer = "/model", std::string* warning = nullptr);

/// The frozen inference form of a loaded native model (docs/method.md §14): its
/// script_source() compiled over copies of its weights, frozen and optimised for inference
/// (oneDNN on the CPU), checked against the eager form on the first batch (GraphModel).
/// A model without script source is returned as it is.
/// \param pointer  the config entry whose `optimize` turns this off (named in errors)
/// \throws ModelError when the graph cannot be built or frozen (a bug in dualrs's source for
/// the architecture, not bad input).
std::unique_ptr<BaseModel> prepare_for_inference(std::unique_ptr<BaseModel> model, const std::string& pointer);

/// Saves a native model's weights to `path` atomically (tmp + rename). \throws ModelError.
void save_checkpoint(BaseModel& model, const std::string& path);

/// Loads weights saved by save_checkpoint into `model`. \throws ModelError naming the path.
void load_checkpoint(BaseModel& model, const std::string& path);

/// save_checkpoint / load_checkpoint for any native module (e.g. an ε-model); `what` names it in messages.
/// save_module_checkpoint publishes atomically (tmp + rename); load_module_checkpoint refuses a
/// checkpoint whose tensors are missing or have other shapes. Checkpoints are device-neutral:
/// tensors are read onto the CPU and the module returns to the device its parameters were on,
/// so a checkpoint written on a GPU loads on a CPU-only machine and vice versa.
/// \throws ModelError naming the path.
void save_module_checkpoint(torch::nn::Module& module, const std::string& what, const std::string& path);
void load_module_checkpoint(torch::nn::Module& module, const std::string& what, const std::string& path);

/// Copies into `to` every parameter and buffer of `from` that has the same name and shape,
/// e.g. a noise-trained classifier's feature layers into a variance estimator of the same
/// architecture whose output layer has |Σ| instead of K units (that layer is left as is).
/// \returns the number of tensors copied. \throws ModelError when either model has no native
/// weights or no tensor matches (a different architecture).
std::int64_t copy_matching_weights(BaseModel& to, BaseModel& from);

}  // namespace dualrs::model
