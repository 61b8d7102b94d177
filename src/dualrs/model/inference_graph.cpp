#include "dualrs/model/inference_graph.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "dualrs/core/error.h"
#include "dualrs/model/torch_compat.h"

namespace dualrs::model {

std::string flat_name(const std::string& name) {
  std::string out = name;
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

torch::jit::Module script_from_source(const torch::nn::Module& eager, const std::string& class_name,
                                      const std::string& source) {
  torch::jit::Module module(c10::QualifiedName("__torch__.dualrs." + class_name));
  module.register_attribute("training", c10::BoolType::get(), false);
  torch::NoGradGuard no_grad;
  for (const auto& item : eager.named_parameters()) {
    module.register_parameter(flat_name(item.key()), item.value().detach().clone(), /*is_buffer=*/false);
  }
  for (const auto& item : eager.named_buffers()) {
    module.register_buffer(flat_name(item.key()), item.value().detach().clone());
  }
  try {
    module.define(source);
  } catch (const std::exception& e) {  // c10::Error or a TorchScript frontend error
    DUALRS_THROW(ModelError, "the inference graph of ", class_name, " does not compile: ", e.what());
  }
  module.eval();
  return module;
}

torch::jit::Module freeze_and_optimize(torch::jit::Module module) {
  module.eval();
  torch::jit::Module frozen = torch::jit::freeze(module);
  return torch::jit::optimize_for_inference(frozen);
}

double self_check_tolerance(const at::Tensor& out) {
  return out.scalar_type() == torch::kBFloat16 || out.scalar_type() == torch::kFloat16 ? kReducedInferenceTolerance
                                                                                       : kInferenceTolerance;
}

double relative_logit_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(torch::kCPU, torch::kFloat64);
  const at::Tensor y = b.to(torch::kCPU, torch::kFloat64);
  if (x.numel() == 0) return 0.0;
  const at::Tensor scale = 1.0 + std::get<0>(y.abs().max(1, /*keepdim=*/true));
  const at::Tensor diff = (x - y).abs() / scale;
  // NaN anywhere (one form finite, the other not) is a failure, not a pass.
  if (!torch::isfinite(x).equal(torch::isfinite(y))) return std::numeric_limits<double>::infinity();
  const at::Tensor finite = torch::isfinite(diff);
  return finite.any().item<bool>() ? diff.masked_select(finite).max().item<double>() : 0.0;
}

GraphModel::GraphModel(std::unique_ptr<BaseModel> eager, torch::jit::Module graph, c10::Device device, std::string pointer)
    : eager_(std::move(eager)), graph_(std::move(graph)), device_(device), pointer_(std::move(pointer)) {}

at::Tensor GraphModel::logits(const at::Tensor& x) {
  eager_->check_input(x);
  at::Tensor out;
  try {
    // The graph the freezing passes made runs as it is, from the first call on.
    torch::jit::GraphOptimizerEnabledGuard as_frozen(false);
    out = forward_frozen(graph_, {x.to(device_)});
  } catch (const std::exception& e) {
    DUALRS_THROW(ModelError, "the frozen inference graph of ", describe(), " failed on input ", x.sizes(), ": ", e.what(),
                 " (set ", pointer_, "/optimize false to run the eager model)");
  }
  const std::int64_t b = x.size(0);
  if (out.dim() != 2 || out.size(0) != b || out.size(1) != num_classes()) {
    DUALRS_THROW(ModelError, "the frozen inference graph of ", describe(), " returned ", out.sizes(), " for input ",
                 x.sizes(), "; expected [B, K] = [", b, ", ", num_classes(), "]");
  }
  if (checked_error_ < 0.0) {
    const std::int64_t rows = std::min(b, kSelfCheckRows);
    const at::Tensor eager = eager_->logits(x.narrow(0, 0, rows));
    checked_error_ = relative_logit_error(out.narrow(0, 0, rows), eager);
    const double tolerance = self_check_tolerance(out);
    if (!(checked_error_ <= tolerance)) {
      DUALRS_THROW(ModelError, "model ", describe(), ": its frozen, optimised graph gives logits up to ", checked_error_,
                   " (relative) away from the eager model's on the first ", rows, " inputs, more than the tolerance ",
                   tolerance, "; refusing it (set ", pointer_, "/optimize false to run the eager model)");
    }
  }
  return out;
}

void GraphModel::set_training(bool training) {
  DUALRS_CHECK(!training, ModelError, "model ", describe(), " is a frozen inference graph and cannot train (", pointer_,
               "/optimize is for inference stages)");
}

void GraphModel::to_device(const std::string& device) {
  DUALRS_CHECK(parse_device(device) == device_, ModelError, "model ", describe(), " was frozen on ", device_.str(),
               " and cannot move to '", device, "'");
}

GraphEpsilonModel::GraphEpsilonModel(std::unique_ptr<EpsilonModel> eager, torch::jit::Module graph, c10::Device device)
    : eager_(std::move(eager)), graph_(std::move(graph)), device_(device) {}

at::Tensor GraphEpsilonModel::epsilon(const at::Tensor& x_t, const at::Tensor& t) {
  eager_->check_input(x_t, t);
  at::Tensor out;
  try {
    torch::jit::GraphOptimizerEnabledGuard as_frozen(false);
    // x_t keeps its floating type (float32, or the cast of a reduced-precision model); t is float32.
    out = forward_frozen(graph_, {x_t.to(device_), t.to(device_, torch::kFloat32)});
  } catch (const std::exception& e) {
    DUALRS_THROW(ModelError, "the frozen inference graph of epsilon-model ", describe(), " failed on x_t ", x_t.sizes(),
                 ": ", e.what(), " (set /denoiser/optimize false to run the eager model)");
  }
  DUALRS_CHECK(out.dim() == 4 && out.size(0) == x_t.size(0) && out.size(2) == x_t.size(2) && out.size(3) == x_t.size(3) &&
                   out.size(1) >= x_t.size(1),
               ModelError, "the frozen inference graph of epsilon-model ", describe(), " returned ", out.sizes(), " for x_t ",
               x_t.sizes());
  const double tolerance = self_check_tolerance(out);
  out = out.narrow(1, 0, x_t.size(1)).to(torch::kFloat32);
  if (!checked_) {
    const std::int64_t rows = std::min(x_t.size(0), kSelfCheckRows);
    const at::Tensor eager = eager_->epsilon(x_t.narrow(0, 0, rows), t.narrow(0, 0, rows));
    const double error = relative_logit_error(out.narrow(0, 0, rows).flatten(1), eager.flatten(1));
    if (!(error <= tolerance)) {
      DUALRS_THROW(ModelError, "epsilon-model ", describe(), ": its frozen, optimised graph predicts noise up to ", error,
                   " (relative) away from the eager model's on the first ", rows, " inputs, more than the tolerance ",
                   tolerance, "; refusing it (set /denoiser/optimize false to run the eager model)");
    }
    checked_ = true;
  }
  return out;
}

void GraphEpsilonModel::set_training(bool training) {
  DUALRS_CHECK(!training, ModelError, "epsilon-model ", describe(),
               " is a frozen inference graph and cannot train (train-denoiser uses the eager model)");
}

void GraphEpsilonModel::to_device(const std::string& device) {
  DUALRS_CHECK(parse_device(device) == device_, ModelError, "epsilon-model ", describe(), " was frozen on ", device_.str(),
               " and cannot move to '", device, "'");
}

NativeGraph freeze_native(torch::nn::Module& eager, const std::string& what, const std::string& source,
                          const std::string& pointer) {
  NativeGraph out;
  for (const auto& p : eager.parameters()) {
    out.device = p.device();
    break;
  }
  try {
    out.graph = freeze_and_optimize(script_from_source(eager, what, source));
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {
    DUALRS_THROW(ModelError, "cannot freeze the inference graph of ", what, ": ", e.what(), " (set ", pointer,
                 "/optimize false to run the eager model)");
  }
  return out;
}

std::unique_ptr<EpsilonModel> prepare_epsilon_for_inference(std::unique_ptr<EpsilonModel> model) {
  const std::string source = model->script_source();
  if (source.empty() || model->module() == nullptr) return model;
  model->set_training(false);
  NativeGraph native = freeze_native(*model->module(), model->describe(), source, "/denoiser");
  return std::make_unique<GraphEpsilonModel>(std::move(model), std::move(native.graph), native.device);
}

}  // namespace dualrs::model
