#include "dualrs/model/mnist_cnn.h"

#include <string>
#include <utility>

#include <torch/torch.h>

#include "dualrs/core/error.h"

namespace dualrs::model {
namespace {

struct MnistCnnImpl : torch::nn::Module {
  explicit MnistCnnImpl(std::int64_t num_classes)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)))),
        fc1(register_module("fc1", torch::nn::Linear(32 * 7 * 7, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, num_classes))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = (x - 0.1307) / 0.3081;  // MNIST statistics; inside the model, after the noise
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    x = torch::relu(fc1(x.flatten(1)));
    return fc2(x);
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(MnistCnn);

struct MnistMlpImpl : torch::nn::Module {
  explicit MnistMlpImpl(std::int64_t num_classes)
      : fc1(register_module("fc1", torch::nn::Linear(28 * 28, 256))),
        fc2(register_module("fc2", torch::nn::Linear(256, 128))),
        fc3(register_module("fc3", torch::nn::Linear(128, num_classes))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = (x - 0.1307) / 0.3081;
    x = torch::relu(fc1(x.flatten(1)));
    x = torch::relu(fc2(x));
    return fc3(x);
  }

  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(MnistMlp);

// The digit models' wrapper: `Net` (a TORCH_MODULE of the eager network) with its name and the
// TorchScript source of its forward, op for op (the frozen graph then folds and repacks it).
template <typename Net>
class DigitModel : public BaseModel {
 public:
  DigitModel(std::string name, std::string script, std::int64_t num_classes)
      : net_(num_classes), name_(std::move(name)), script_(std::move(script)), num_classes_(num_classes) {}
  at::Tensor logits(const at::Tensor& x) override {
    check_input(x);
    return net_->forward(x.to(device_));
  }
  void check_input(const at::Tensor& x) const override {
    DUALRS_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28, ModelError, name_,
                 " expects [B, 1, 28, 28] input, got ", x.sizes());
  }
  std::string script_source() const override { return script_; }
  std::int64_t num_classes() const override { return num_classes_; }
  std::string describe() const override { return name_; }
  torch::nn::Module* module() override { return net_.get(); }
  void set_training(bool training) override { net_->train(training); }
  void to_device(const std::string& device) override {
    device_ = parse_device(device);
    net_->to(device_);
  }

 private:
  Net net_;
  std::string name_;
  std::string script_;
  std::int64_t num_classes_;
  c10::Device device_{c10::kCPU};
};

// MnistCnnImpl::forward in TorchScript, with each ReLU moved after its max pooling: ReLU is
// monotone, so relu(max(a, b, c, d)) = max(relu(a), …, relu(d)) exactly, and it then runs on a
// quarter of the values.
constexpr const char* kMnistCnnScript = R"(
def forward(self, x: Tensor) -> Tensor:
    x = (x - 0.1307) / 0.3081
    x = torch.relu(torch.max_pool2d(torch.conv2d(x, self.conv1_weight, self.conv1_bias, [1, 1], [1, 1]), [2, 2]))
    x = torch.relu(torch.max_pool2d(torch.conv2d(x, self.conv2_weight, self.conv2_bias, [1, 1], [1, 1]), [2, 2]))
    x = torch.relu(torch.linear(torch.flatten(x, 1), self.fc1_weight, self.fc1_bias))
    return torch.linear(x, self.fc2_weight, self.fc2_bias)
)";

// MnistMlpImpl::forward in TorchScript.
constexpr const char* kMnistMlpScript = R"(
def forward(self, x: Tensor) -> Tensor:
    x = (x - 0.1307) / 0.3081
    x = torch.relu(torch.linear(torch.flatten(x, 1), self.fc1_weight, self.fc1_bias))
    x = torch.relu(torch.linear(x, self.fc2_weight, self.fc2_bias))
    return torch.linear(x, self.fc3_weight, self.fc3_bias)
)";

}  // namespace

std::unique_ptr<BaseModel> make_mnist_cnn(std::int64_t num_classes) {
  return std::make_unique<DigitModel<MnistCnn>>("mnist_cnn", kMnistCnnScript, num_classes);
}

std::unique_ptr<BaseModel> make_mnist_mlp(std::int64_t num_classes) {
  return std::make_unique<DigitModel<MnistMlp>>("mnist_mlp", kMnistMlpScript, num_classes);
}

}  // namespace dualrs::model
