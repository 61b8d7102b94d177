#include "dualrs/model/torchscript_model.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "dualrs/core/error.h"

namespace dualrs::model {
namespace {

class TorchScriptModel : public BaseModel {
 public:
  TorchScriptModel(std::string path, torch::jit::Module module, std::int64_t num_classes, torch::Device device)
      : path_(std::move(path)), module_(std::move(module)), num_classes_(num_classes), device_(device) {}

  at::Tensor logits(const at::Tensor& x) override {
    at::Tensor out;
    try {
      out = module_.forward({x.to(device_)}).toTensor();
    } catch (const c10::Error& e) {
      DUALRS_THROW(ModelError, "TorchScript model ", path_, " failed on input ", x.sizes(), ": ",
                   e.what_without_backtrace());
    }
    if (out.dim() != 2 || out.size(0) != x.size(0) || out.size(1) != num_classes_) {
      DUALRS_THROW(ModelError, "TorchScript model ", path_, " returned ", out.sizes(), " for input ", x.sizes(),
                   "; expected [B, K] = [", x.size(0), ", ", num_classes_, "]");
    }
    if (!out.is_floating_point()) {
      DUALRS_THROW(ModelError, "TorchScript model ", path_, " returned dtype ", out.scalar_type(), "; expected float logits");
    }
    return out;
  }
  std::int64_t num_classes() const override { return num_classes_; }
  std::string describe() const override { return "torchscript(" + path_ + ")"; }
  void set_training(bool training) override { module_.train(training); }

 private:
  std::string path_;
  torch::jit::Module module_;
  std::int64_t num_classes_;
  torch::Device device_;
};

}  // namespace

std::unique_ptr<BaseModel> load_torchscript_model(const std::string& path, std::int64_t num_classes,
                                                  const std::string& device) {
  if (!std::filesystem::exists(path)) DUALRS_THROW(ModelError, "model file not found: ", path);
  torch::Device dev(torch::kCPU);
  try {
    dev = torch::Device(device);
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "bad device '", device, "': ", e.what_without_backtrace());
  }
  try {
    torch::jit::Module module = torch::jit::load(path, dev);
    module.eval();
    return std::make_unique<TorchScriptModel>(path, std::move(module), num_classes, dev);
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "cannot load TorchScript model ", path, ": ", e.what_without_backtrace());
  }
}

}  // namespace dualrs::model
