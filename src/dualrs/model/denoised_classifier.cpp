#include "dualrs/model/denoised_classifier.h"

#include <torch/torch.h>

#include "dualrs/core/error.h"

namespace dualrs::model {

void validate(const ClassifierInputConfig& input, const std::string& pointer) {
  std::vector<ConfigIssue> issues;
  if (input.height < 0 || input.width < 0 || (input.height == 0) != (input.width == 0)) {
    issues.push_back({pointer + "/input_size", "must be a positive side or [height, width], got [" +
                                                   std::to_string(input.height) + ", " + std::to_string(input.width) + "]"});
  }
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}

at::Tensor to_classifier_input(const at::Tensor& x, const ClassifierInputConfig& input) {
  validate(input, "");
  DUALRS_CHECK(x.dim() == 4, ModelError, "classifier input must be [B, C, H, W], got ", x.sizes());
  at::Tensor out = x;
  if (input.height > 0 && (input.height != x.size(2) || input.width != x.size(3))) {
    namespace F = torch::nn::functional;
    out = F::interpolate(out, F::InterpolateFuncOptions()
                                  .size(std::vector<std::int64_t>{input.height, input.width})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));
  }
  if (input.range == InputRange::kZeroOne) out = (out + 1.0) * 0.5;
  return out;
}

DenoisedClassifier::DenoisedClassifier(std::shared_ptr<DiffusionDenoiser> denoiser, std::shared_ptr<BaseModel> classifier,
                                       ClassifierInputConfig input, std::optional<double> sigma)
    : denoiser_(std::move(denoiser)), classifier_(std::move(classifier)), input_(std::move(input)) {
  DUALRS_CHECK(denoiser_ != nullptr && classifier_ != nullptr, ModelError, "a denoised classifier needs a denoiser and a classifier");
  validate(input_, "");
  if (sigma) step_ = denoiser_->step(*sigma);
}

at::Tensor DenoisedClassifier::logits(const at::Tensor& x) {
  DUALRS_CHECK(step_.has_value(), ModelError, describe(), " was built without a noise level; use logits_under_noise");
  return classifier_->logits(to_classifier_input(denoiser_->denoise(x, step_->sigma), input_));
}

at::Tensor DenoisedClassifier::logits_under_noise(const at::Tensor& x, const at::Tensor& sigma) {
  return classifier_->logits(to_classifier_input(denoiser_->denoise(x, sigma), input_));
}

std::string DenoisedClassifier::describe() const {
  std::string s = "denoised(";
  if (step_) s += "sigma=" + format_decimal(step_->sigma) + ", t*=" + std::to_string(step_->t) + ", ";
  return s + denoiser_->describe() + ") -> " + classifier_->describe();
}

namespace {

class InputAdapter : public BaseModel {
 public:
  InputAdapter(std::shared_ptr<BaseModel> classifier, ClassifierInputConfig input)
      : classifier_(std::move(classifier)), input_(std::move(input)) {}
  at::Tensor logits(const at::Tensor& x) override {
    return classifier_->logits(to_classifier_input(x.to(torch::kFloat32) * 2.0f - 1.0f, input_));
  }
  std::int64_t num_classes() const override { return classifier_->num_classes(); }
  std::string describe() const override { return classifier_->describe() + " (input " + to_string(input_.range) + ")"; }
  torch::nn::Module* module() override { return classifier_->module(); }
  void set_training(bool training) override { classifier_->set_training(training); }

 private:
  std::shared_ptr<BaseModel> classifier_;
  ClassifierInputConfig input_;
};

}  // namespace

std::shared_ptr<BaseModel> adapt_input(std::shared_ptr<BaseModel> classifier, const ClassifierInputConfig& input) {
  validate(input, "");
  if (input.is_identity()) return classifier;
  return std::make_shared<InputAdapter>(std::move(classifier), input);
}

}  // namespace dualrs::model
