#pragma once
/// \file
/// The ε-prediction network of a diffusion model (Ho et al. 2020), as used by denoised
/// smoothing [DDS §3; docs/method.md §9]: given a noisy image x_t in model space [−1, 1] and its
/// timestep, it predicts the noise ε that was added. Contract `epsilon`
/// (data_schemas/models.md): `forward(x_t: float [B, C, H, W], t: float [B]) -> float
/// [B, C, H, W]` or `[B, 2C, H, W]` (learned-σ models: the first C channels are ε̂).

#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"

namespace torch::nn {
class Module;
}

namespace dualrs::model {

class EpsilonModel {
 public:
  virtual ~EpsilonModel() = default;
  /// ε̂ = ε_θ(x_t, t).
  /// \param x_t  float `[B, C, H, W]` in model space (about [−1, 1]).
  /// \param t    float `[B]`: the timestep values the network receives (already rescaled, see
  ///             DiffusionSchedule::network_timestep).
  /// \return float32 `[B, C, H, W]` (the first C channels of a learned-σ output), on the
  /// model's device. \throws ModelError naming the model when its output breaks the contract.
  virtual at::Tensor epsilon(const at::Tensor& x_t, const at::Tensor& t) = 0;
  /// For messages and provenance, e.g. "mnist_unet" or "torchscript(/path/eps.pt)".
  virtual std::string describe() const = 0;
  /// The trainable module of a native model; nullptr for TorchScript models.
  virtual torch::nn::Module* module() { return nullptr; }
  /// Checks inputs against the model's contract (what epsilon() checks before its forward).
  /// \throws ModelError. The default accepts any.
  virtual void check_input(const at::Tensor& x_t, const at::Tensor& t) const {
    (void)x_t;
    (void)t;
  }
  /// TorchScript source of a native model's `forward(x_t, t)` over its flat_name'd tensors
  /// (inference_graph.h): what its frozen inference form is compiled from; empty if none.
  virtual std::string script_source() const { return ""; }
  /// "frozen" or "eager" (BaseModel::inference_form).
  virtual std::string inference_form() const { return "eager"; }
  /// Switches training mode where the model has one.
  virtual void set_training(bool training) = 0;
  /// Moves a native model's weights to `device` ("cpu", "cuda:N"; see parse_device);
  /// epsilon() then moves its inputs there. The default accepts only "cpu"; TorchScript
  /// models accept only the device they were loaded on.
  /// \throws ModelError on a device this model or this LibTorch cannot use.
  virtual void to_device(const std::string& device);
};

/// Loads a TorchScript ε-model (contract `epsilon`) on `device`, in eval mode.
/// \throws ModelError naming the path when the file is missing or not TorchScript; each
/// epsilon() call throws ModelError naming the path when the output is not `[B, C, H, W]` or
/// `[B, 2C, H, W]` with the input's B, H, W, or not floating point.
/// \param precision  the module's weights are cast to it (docs/method.md §18); inputs x_t are
/// then expected in that type (model/precision.h's with_precision casts them).
std::unique_ptr<EpsilonModel> load_torchscript_epsilon_model(const std::string& path, const std::string& device = "cpu",
                                                             bool optimize = false, std::string* warning = nullptr,
                                                             Precision precision = Precision::kFp32);

/// The frozen inference form of a native ε-model, as prepare_for_inference (base_model.h) is
/// for classifiers: its script_source() over copies of its weights, frozen and optimised,
/// checked against the eager form on the first batch. A model without script source is
/// returned as it is. \throws ModelError when the graph cannot be built.
std::unique_ptr<EpsilonModel> prepare_epsilon_for_inference(std::unique_ptr<EpsilonModel> model);

/// A native ε-model with fresh weights. \param arch "mnist_unet" (see mnist_unet.h).
/// \throws ConfigError on an unknown architecture.
std::unique_ptr<EpsilonModel> make_native_epsilon_model(const std::string& arch);

/// The ε-model a /denoiser section names: TorchScript, or a native architecture with its
/// checkpoint, on the section's device (an explicit "cpu" or "cuda:N"; map "cuda" to a rank's
/// GPU first); with /denoiser/optimize (the default), in its frozen inference form
/// (docs/method.md §14; a TorchScript file that cannot be frozen runs unfrozen and `warning`
/// says so); at /denoiser/precision (inputs cast to it, ε̂ back to float32; model/precision.h).
/// \throws ConfigError (a native model without checkpoint), ModelError.
std::unique_ptr<EpsilonModel> load_epsilon_model(const DenoiserConfig& config, std::string* warning = nullptr);

}  // namespace dualrs::model
