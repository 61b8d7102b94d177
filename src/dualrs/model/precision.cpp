#include "dualrs/model/precision.h"

#include <torch/torch.h>

#include "dualrs/core/error.h"

namespace dualrs::model {
namespace {

// Rethrows the first failure of a cast model as "cannot run at this precision".
[[noreturn]] void refuse(const std::string& what, Precision precision, const std::string& pointer, const std::string& why) {
  DUALRS_THROW(ModelError, what, " cannot run in ", to_string(precision), " (", pointer, "/precision): ", why, "; set ",
               pointer, "/precision to fp32");
}

class PrecisionModel final : public BaseModel {
 public:
  PrecisionModel(std::unique_ptr<BaseModel> inner, Precision precision, std::string pointer)
      : inner_(std::move(inner)), precision_(precision), dtype_(scalar_type_of(precision)), pointer_(std::move(pointer)) {}

  at::Tensor logits(const at::Tensor& x) override {
    inner_->check_input(x);
    if (checked_) return inner_->logits(x.to(dtype_)).to(torch::kFloat32);
    at::Tensor out;
    try {
      out = inner_->logits(x.to(dtype_));
    } catch (const ModelError& e) {
      refuse("model " + inner_->describe(), precision_, pointer_, e.what());
    } catch (const c10::Error& e) {
      refuse("model " + inner_->describe(), precision_, pointer_, e.what_without_backtrace());
    }
    checked_ = true;
    return out.to(torch::kFloat32);
  }
  std::int64_t num_classes() const override { return inner_->num_classes(); }
  std::string describe() const override { return inner_->describe() + " in " + to_string(precision_); }
  void check_input(const at::Tensor& x) const override { inner_->check_input(x); }
  std::string inference_form() const override { return inner_->inference_form(); }
  void set_training(bool training) override {
    DUALRS_CHECK(!training, ModelError, "model ", describe(), " runs in ", to_string(precision_),
                 " for inference only; training stages train in float32");
    inner_->set_training(false);
  }
  void to_device(const std::string& device) override { inner_->to_device(device); }

 private:
  std::unique_ptr<BaseModel> inner_;
  Precision precision_;
  c10::ScalarType dtype_;
  std::string pointer_;
  bool checked_ = false;
};

class PrecisionEpsilonModel final : public EpsilonModel {
 public:
  PrecisionEpsilonModel(std::unique_ptr<EpsilonModel> inner, Precision precision, std::string pointer)
      : inner_(std::move(inner)), precision_(precision), dtype_(scalar_type_of(precision)), pointer_(std::move(pointer)) {}

  at::Tensor epsilon(const at::Tensor& x_t, const at::Tensor& t) override {
    inner_->check_input(x_t, t);
    if (checked_) return inner_->epsilon(x_t.to(dtype_), t).to(torch::kFloat32);
    at::Tensor out;
    try {
      out = inner_->epsilon(x_t.to(dtype_), t);
    } catch (const ModelError& e) {
      refuse("epsilon-model " + inner_->describe(), precision_, pointer_, e.what());
    } catch (const c10::Error& e) {
      refuse("epsilon-model " + inner_->describe(), precision_, pointer_, e.what_without_backtrace());
    }
    checked_ = true;
    return out.to(torch::kFloat32);
  }
  std::string describe() const override { return inner_->describe() + " in " + to_string(precision_); }
  void check_input(const at::Tensor& x_t, const at::Tensor& t) const override { inner_->check_input(x_t, t); }
  std::string inference_form() const override { return inner_->inference_form(); }
  void set_training(bool training) override {
    DUALRS_CHECK(!training, ModelError, "epsilon-model ", describe(), " runs in ", to_string(precision_),
                 " for inference only; train-denoiser trains in float32");
    inner_->set_training(false);
  }
  void to_device(const std::string& device) override { inner_->to_device(device); }

 private:
  std::unique_ptr<EpsilonModel> inner_;
  Precision precision_;
  c10::ScalarType dtype_;
  std::string pointer_;
  bool checked_ = false;
};

}  // namespace

c10::ScalarType scalar_type_of(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return torch::kFloat32;
    case Precision::kBf16: return torch::kBFloat16;
    case Precision::kFp16: return torch::kFloat16;
  }
  return torch::kFloat32;
}

void cast_module(BaseModel& model, Precision precision) {
  torch::nn::Module* module = model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "model ", model.describe(), " has no native weights to cast");
  module->to(scalar_type_of(precision));
}

std::unique_ptr<BaseModel> with_precision(std::unique_ptr<BaseModel> model, Precision precision,
                                          const std::string& pointer) {
  if (precision == Precision::kFp32) return model;
  return std::make_unique<PrecisionModel>(std::move(model), precision, pointer);
}

std::unique_ptr<EpsilonModel> with_precision(std::unique_ptr<EpsilonModel> model, Precision precision,
                                             const std::string& pointer) {
  if (precision == Precision::kFp32) return model;
  return std::make_unique<PrecisionEpsilonModel>(std::move(model), precision, pointer);
}

void allow_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace dualrs::model
