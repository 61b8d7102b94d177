// TorchScript models: the one loader, the classifier and ε-model contracts
// (data_schemas/models.md), and the contract check of `dualrs check-model`.

#include "dualrs/model/torchscript_model.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/model/contract.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/precision.h"

namespace dualrs::model {
namespace {

struct LoadedModule {
  torch::jit::Module module;
  torch::Device device;
};

// The one TorchScript loader (docs/style.md §5): torch::jit::load on the device, eval mode; failures
// become ModelError naming the path.
LoadedModule load_module(const std::string& path, const std::string& device, const std::string& what) {
  if (!std::filesystem::exists(path)) DUALRS_THROW(ModelError, what, " file not found: ", path);
  const torch::Device dev = parse_device(device);  // the device names the problem, not the file
  try {
    torch::jit::Module module = torch::jit::load(path, dev);
    module.eval();
    return {std::move(module), dev};
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "cannot load TorchScript ", what, " ", path, ": ", e.what_without_backtrace());
  }
}

// The last non-empty line of a message: a TorchScript `raise` arrives as a JITException whose
// text is two tracebacks followed by "builtins.RuntimeError: <message>".
std::string last_line(const std::string& text) {
  std::size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return text;
  const std::size_t begin = text.rfind('\n', end);
  return text.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
}

// forward(inputs) as a tensor; a throwing module or a non-tensor result is a ModelError.
at::Tensor run_forward(torch::jit::Module& module, std::vector<torch::jit::IValue> inputs, const std::string& what,
                       const std::string& path, const std::string& input_text) {
  try {
    torch::jit::IValue result = module.forward(std::move(inputs));
    if (!result.isTensor()) {
      DUALRS_THROW(ModelError, "TorchScript ", what, " ", path, " returned a ", result.tagKind(), " for input ", input_text,
                   "; expected one tensor");
    }
    return result.toTensor();
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "TorchScript ", what, " ", path, " failed on input ", input_text, ": ", e.what_without_backtrace());
  } catch (const ModelError&) {
    throw;
  } catch (const std::exception& e) {  // torch::jit::JITException: the module raised
    DUALRS_THROW(ModelError, "TorchScript ", what, " ", path, " failed on input ", input_text, ": ", last_line(e.what()));
  }
}

// Contract `classifier` / `classifier-pm1` output: float [B, K] (k <= 0: any K).
void check_logits(const std::string& path, const at::Tensor& out, std::int64_t b, std::int64_t k, const at::Tensor& x) {
  if (out.dim() != 2 || out.size(0) != b || (k > 0 && out.size(1) != k)) {
    DUALRS_THROW(ModelError, "TorchScript model ", path, " returned ", out.sizes(), " for input ", x.sizes(),
                 "; expected [B, K] = [", b, ", ", (k > 0 ? std::to_string(k) : std::string("K")), "]");
  }
  if (!out.is_floating_point()) {
    DUALRS_THROW(ModelError, "TorchScript model ", path, " returned dtype ", out.scalar_type(), "; expected float logits");
  }
}

// Contract `epsilon` output: float [B, C, H, W] or [B, 2C, H, W] for x_t [B, C, H, W].
void check_epsilon(const std::string& path, const at::Tensor& out, const at::Tensor& x_t) {
  const std::int64_t b = x_t.size(0), c = x_t.size(1), h = x_t.size(2), w = x_t.size(3);
  const bool shape_ok = out.dim() == 4 && out.size(0) == b && out.size(2) == h && out.size(3) == w &&
                        (out.size(1) == c || out.size(1) == 2 * c);
  if (!shape_ok) {
    DUALRS_THROW(ModelError, "TorchScript epsilon-model ", path, " returned ", out.sizes(), " for x_t ", x_t.sizes(),
                 "; expected [B, C, H, W] = [", b, ", ", c, ", ", h, ", ", w, "] or, for a learned-sigma model, [B, 2C, H, W] = [",
                 b, ", ", 2 * c, ", ", h, ", ", w, "] (contract 'epsilon', data_schemas/models.md)");
  }
  if (!out.is_floating_point()) {
    DUALRS_THROW(ModelError, "TorchScript epsilon-model ", path, " returned dtype ", out.scalar_type(),
                 "; expected a float tensor (contract 'epsilon')");
  }
}

std::string shape_text(const at::Tensor& t) { return c10::str(t.sizes()); }

// The frozen, optimised form of a loaded module, made from a copy (the unfrozen module stays
// the eager form of the self-check). A module the passes cannot freeze (e.g. one whose
// forward mutates an attribute) gives nullopt and, in `warning`, one line naming the file.
std::optional<torch::jit::Module> try_freeze(const torch::jit::Module& module, const std::string& path,
                                             const std::string& what, const std::string& pointer, std::string* warning) {
  std::string why_not;
  try {
    return freeze_and_optimize(module.deepcopy());
  } catch (const c10::Error& e) {
    why_not = e.what_without_backtrace();
  } catch (const std::exception& e) {
    why_not = e.what();
  }
  if (warning != nullptr) {
    *warning = "TorchScript " + what + " " + path + " cannot be frozen for inference (" +
               why_not.substr(0, why_not.find('\n')) + "); it runs unfrozen, without the optimised graph (set " + pointer +
               "/optimize false to silence this)";
  }
  return std::nullopt;
}

class TorchScriptModel : public BaseModel {
 public:
  TorchScriptModel(std::string path, torch::jit::Module module, std::int64_t num_classes, torch::Device device)
      : path_(std::move(path)), module_(std::move(module)), num_classes_(num_classes), device_(device) {}

  at::Tensor logits(const at::Tensor& x) override {
    const at::Tensor out = run_forward(module_, {x.to(device_)}, "model", path_, shape_text(x));
    check_logits(path_, out, x.size(0), num_classes_, x);
    return out;
  }
  std::int64_t num_classes() const override { return num_classes_; }
  std::string describe() const override { return "torchscript(" + path_ + ")"; }
  void set_training(bool training) override { module_.train(training); }
  void to_device(const std::string& device) override {
    DUALRS_CHECK(parse_device(device) == device_, ModelError, "TorchScript model ", path_, " was loaded on ", device_.str(),
                 " and cannot move to '", device, "'; set the config's device instead");
  }

 private:
  std::string path_;
  torch::jit::Module module_;
  std::int64_t num_classes_;
  torch::Device device_;
};

class TorchScriptEpsilonModel : public EpsilonModel {
 public:
  TorchScriptEpsilonModel(std::string path, torch::jit::Module module, torch::Device device)
      : path_(std::move(path)), module_(std::move(module)), device_(device) {}

  at::Tensor epsilon(const at::Tensor& x_t, const at::Tensor& t) override {
    DUALRS_CHECK(x_t.dim() == 4 && t.dim() == 1 && t.size(0) == x_t.size(0), ModelError, "epsilon-model ", path_,
                 ": x_t must be [B, C, H, W] and t [B], got ", x_t.sizes(), " and ", t.sizes());
    // x_t keeps its floating type (float32, or bf16/fp16 for a cast module); t stays float32.
    const at::Tensor out = run_forward(module_, {x_t.to(device_), t.to(device_, torch::kFloat32)},
                                       "epsilon-model", path_, "x_t " + shape_text(x_t) + ", t " + shape_text(t));
    check_epsilon(path_, out, x_t);
    return out.narrow(1, 0, x_t.size(1)).to(torch::kFloat32);
  }
  std::string describe() const override { return "torchscript(" + path_ + ")"; }
  void set_training(bool training) override { module_.train(training); }
  void to_device(const std::string& device) override {
    DUALRS_CHECK(parse_device(device) == device_, ModelError, "TorchScript epsilon-model ", path_, " was loaded on ",
                 device_.str(), " and cannot move to '", device, "'; set /denoiser/device instead");
  }

 private:
  std::string path_;
  torch::jit::Module module_;
  torch::Device device_;
};

}  // namespace

std::unique_ptr<BaseModel> load_torchscript_model(const std::string& path, std::int64_t num_classes,
                                                  const std::string& device, bool optimize, const std::string& pointer,
                                                  std::string* warning, Precision precision) {
  LoadedModule loaded = load_module(path, device, "model");
  if (precision != Precision::kFp32) loaded.module.to(scalar_type_of(precision));
  if (!optimize) return std::make_unique<TorchScriptModel>(path, std::move(loaded.module), num_classes, loaded.device);
  std::optional<torch::jit::Module> graph = try_freeze(loaded.module, path, "model", pointer, warning);
  auto eager = std::make_unique<TorchScriptModel>(path, std::move(loaded.module), num_classes, loaded.device);
  if (!graph) return eager;
  return std::make_unique<GraphModel>(std::move(eager), std::move(*graph), loaded.device, pointer);
}

std::unique_ptr<EpsilonModel> load_torchscript_epsilon_model(const std::string& path, const std::string& device,
                                                             bool optimize, std::string* warning, Precision precision) {
  LoadedModule loaded = load_module(path, device, "epsilon-model");
  if (precision != Precision::kFp32) loaded.module.to(scalar_type_of(precision));
  std::optional<torch::jit::Module> graph;
  if (optimize) graph = try_freeze(loaded.module, path, "epsilon-model", "/denoiser", warning);
  auto eager = std::make_unique<TorchScriptEpsilonModel>(path, std::move(loaded.module), loaded.device);
  if (!graph) return eager;
  return std::make_unique<GraphEpsilonModel>(std::move(eager), std::move(*graph), loaded.device);
}

ModelContract parse_model_contract(const std::string& name, const std::string& pointer) {
  if (name == "classifier") return ModelContract::kClassifier;
  if (name == "classifier-pm1") return ModelContract::kClassifierPm1;
  if (name == "epsilon") return ModelContract::kEpsilon;
  throw ConfigError("", pointer, "unknown contract '" + name + "' (classifier, classifier-pm1, epsilon)");
}

std::string to_string(ModelContract contract) {
  switch (contract) {
    case ModelContract::kClassifier: return "classifier";
    case ModelContract::kClassifierPm1: return "classifier-pm1";
    case ModelContract::kEpsilon: return "epsilon";
  }
  return "?";
}

ContractReport check_model_contract(const std::string& path, ModelContract contract, const std::vector<std::int64_t>& chw,
                                    std::int64_t num_classes, const std::string& device) {
  DUALRS_CHECK(chw.size() == 3 && chw[0] > 0 && chw[1] > 0 && chw[2] > 0, ModelError,
               "the input shape must be C,H,W with positive sizes");
  const bool epsilon = contract == ModelContract::kEpsilon;
  const std::string what = epsilon ? "epsilon-model" : "model";
  LoadedModule loaded = load_module(path, device, what);
  constexpr std::int64_t kBatch = 3;
  // Deterministic inputs spanning the contract's range: a ramp over every element.
  const double low = contract == ModelContract::kClassifier ? 0.0 : -1.0;
  const std::int64_t numel = kBatch * chw[0] * chw[1] * chw[2];
  const at::Tensor x =
      (low + (1.0 - low) * torch::arange(numel, torch::kFloat64).remainder(997.0) / 996.0).to(torch::kFloat32).view(
          {kBatch, chw[0], chw[1], chw[2]});
  const at::Tensor t = torch::tensor({0.0f, 250.0f, 999.0f});
  auto forward = [&](const at::Tensor& xs, const at::Tensor& ts) {
    std::vector<torch::jit::IValue> inputs{xs.to(loaded.device)};
    if (epsilon) inputs.emplace_back(ts.to(loaded.device));
    const std::string text = epsilon ? "x_t " + shape_text(xs) + ", t " + shape_text(ts) : shape_text(xs);
    at::Tensor out = run_forward(loaded.module, std::move(inputs), what, path, text);
    if (epsilon) check_epsilon(path, out, xs);
    else check_logits(path, out, xs.size(0), num_classes, xs);
    return out;
  };
  torch::NoGradGuard no_grad;
  const at::Tensor raw = forward(x, t);
  const at::Tensor out = raw.to(torch::kCPU, torch::kFloat64);
  if (!torch::isfinite(out).all().item<bool>()) {
    DUALRS_THROW(ModelError, "TorchScript ", what, " ", path, " returned NaN or infinite values on a dummy batch in its input range ",
                 (low == 0.0 ? "[0, 1]" : "[-1, 1]"), " (contract '", to_string(contract), "')");
  }
  const at::Tensor alone = forward(x.narrow(0, 0, 1), t.narrow(0, 0, 1)).to(torch::kCPU, torch::kFloat64);
  const double diff = (alone[0] - out[0]).abs().max().item<double>();
  const double scale = 1.0 + out[0].abs().max().item<double>();
  if (diff > 1e-4 * scale) {
    DUALRS_THROW(ModelError, "TorchScript ", what, " ", path, ": the output of row 0 changes with the rest of the batch (by ", diff,
                 "); rows must be independent (is the module saved in training mode, e.g. batch norm with batch statistics?)");
  }
  ContractReport report;
  report.path = path;
  report.contract = contract;
  report.input_shape = x.sizes().vec();
  report.output_shape = out.sizes().vec();
  report.output_dtype = c10::toString(raw.scalar_type());
  report.num_classes = epsilon ? 0 : out.size(1);
  report.learned_sigma = epsilon && out.size(1) == 2 * chw[0];
  report.max_row_difference = diff;
  return report;
}

}  // namespace dualrs::model
