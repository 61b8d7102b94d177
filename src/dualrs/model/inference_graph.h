#pragma once
/// \file
/// The inference form of a model: a TorchScript graph, frozen (weights become constants,
/// convolution and batch norm folded) and passed through LibTorch's optimize_for_inference
/// (oneDNN layouts with pre-packed weights on the CPU), checked against the eager form on
/// the first batch it sees (docs/method.md §14). For use inside src/dualrs/model only: it
/// pulls in <torch/script.h>.

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dualrs/model/base_model.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/model/precision.h"

namespace torch::nn {
class Module;
}

namespace dualrs::model {

/// The self-check's tolerance: on the first batch, every logit of the graph must be within
/// kInferenceTolerance · (1 + max |eager logit| of its row) of the eager form's.
inline constexpr double kInferenceTolerance = 1e-3;

/// Rows of the first batch that the self-check runs through the eager form as well.
inline constexpr std::int64_t kSelfCheckRows = 16;

/// "layer1.0.conv1.weight" → "layer1_0_conv1_weight": how the parameters and buffers of a
/// native module are named inside its script module.
std::string flat_name(const std::string& name);

/// A script module of class `class_name` holding copies of every parameter and buffer of
/// `eager` (under flat_name, on their device), in eval mode, with `source` (TorchScript
/// defining `forward`) compiled into it.
/// \throws ModelError naming `class_name` when the source does not compile.
torch::jit::Module script_from_source(const torch::nn::Module& eager, const std::string& class_name,
                                      const std::string& source);

/// torch::jit::freeze then torch::jit::optimize_for_inference of `module` (put in eval
/// mode first). \throws whatever the passes throw (c10::Error, std::exception): callers
/// decide whether that is a fallback or an error.
torch::jit::Module freeze_and_optimize(torch::jit::Module module);

/// A native module's frozen graph and the device its weights are on.
struct NativeGraph {
  torch::jit::Module graph;
  c10::Device device{c10::kCPU};
};

/// script_from_source over `eager`'s weights, then freeze_and_optimize.
/// \param what  the model's name (e.g. "mnist_cnn"): the script class and errors name it;
/// \param pointer  the config entry that turns it off
/// \throws ModelError when the source does not compile or the passes fail.
NativeGraph freeze_native(torch::nn::Module& eager, const std::string& what, const std::string& source,
                          const std::string& pointer);

/// A classifier run through a frozen graph. `eager` keeps the input contract (check_input),
/// the class count and the description, and answers the self-check: on the first batch,
/// the first kSelfCheckRows rows also go through the eager form, and a logit further than
/// the tolerance from it is refused. After that only the graph runs.
class GraphModel final : public BaseModel {
 public:
  /// \param pointer  the config entry that turns the graph off, named in the self-check's error
  GraphModel(std::unique_ptr<BaseModel> eager, torch::jit::Module graph, c10::Device device, std::string pointer);

  /// \param x  float `[B, C, H, W]`. \return `[B, K]` logits on the model's device.
  /// \throws ModelError on input the eager form refuses, an output that is not `[B, K]`, or
  /// a failed self-check.
  at::Tensor logits(const at::Tensor& x) override;
  std::int64_t num_classes() const override { return eager_->num_classes(); }
  std::string describe() const override { return eager_->describe(); }
  std::string inference_form() const override { return "frozen"; }
  /// Only `false`: a frozen graph has no training mode. \throws ModelError on `true`.
  void set_training(bool training) override;
  /// Only the device the graph was frozen on. \throws ModelError otherwise.
  void to_device(const std::string& device) override;
  /// The largest |graph − eager| / (1 + max |eager|) the self-check saw; -1 before it ran.
  double self_check_error() const { return checked_error_; }

 private:
  std::unique_ptr<BaseModel> eager_;
  torch::jit::Module graph_;
  c10::Device device_;
  std::string pointer_;
  double checked_error_ = -1.0;
};

/// An ε-model run through a frozen graph, checked against its eager form on the first
/// batch as GraphModel is (the pointer is /denoiser).
class GraphEpsilonModel final : public EpsilonModel {
 public:
  GraphEpsilonModel(std::unique_ptr<EpsilonModel> eager, torch::jit::Module graph, c10::Device device);
  /// \param x_t  float `[B, C, H, W]`; \param t  float `[B]`. \return float32 `[B, C, H, W]`.
  /// \throws ModelError on input the eager form refuses or a failed self-check.
  at::Tensor epsilon(const at::Tensor& x_t, const at::Tensor& t) override;
  std::string describe() const override { return eager_->describe(); }
  std::string inference_form() const override { return "frozen"; }
  void set_training(bool training) override;
  void to_device(const std::string& device) override;

 private:
  std::unique_ptr<EpsilonModel> eager_;
  torch::jit::Module graph_;
  c10::Device device_;
  bool checked_ = false;
};

/// The self-check's tolerance for a graph output of `out`'s type: kInferenceTolerance for
/// float32, kReducedInferenceTolerance (precision.h) for bf16 and fp16.
double self_check_tolerance(const at::Tensor& out);

/// The relative difference the self-check measures: max over rows of
/// max |a − b| / (1 + max |b|) (b the eager logits). Both `[R, K]`.
double relative_logit_error(const at::Tensor& a, const at::Tensor& b);

}  // namespace dualrs::model
