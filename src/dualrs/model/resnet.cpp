#include "dualrs/model/resnet.h"

#include <torch/torch.h>

#include <array>
#include <string>
#include <utility>

#include "dualrs/core/error.h"
#include "dualrs/model/inference_graph.h"

namespace dualrs::model {
namespace {

// Module and parameter names follow the PyTorch definitions (conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0, fc, ...), so a state dict maps one to one.

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

/// 1×1 conv + BN projection for a shortcut whose shape changes (option B).
torch::nn::Sequential projection(std::int64_t in, std::int64_t out, std::int64_t stride) {
  return torch::nn::Sequential(conv(in, out, 1, stride), torch::nn::BatchNorm2d(out));
}

struct BasicBlockImpl : torch::nn::Module {
  static constexpr std::int64_t kExpansion = 1;

  BasicBlockImpl(std::int64_t in, std::int64_t planes, std::int64_t stride)
      : conv1(register_module("conv1", conv(in, planes, 3, stride))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv(planes, planes, 3, 1))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(planes))) {
    if (stride != 1 || in != planes) downsample = register_module("downsample", projection(in, planes, stride));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor identity = downsample.is_empty() ? x : downsample->forward(x);
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return torch::relu(out + identity);
  }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

struct BottleneckImpl : torch::nn::Module {
  static constexpr std::int64_t kExpansion = 4;

  // torchvision v1.5: the stride sits on the 3×3 conv, not on the first 1×1.
  BottleneckImpl(std::int64_t in, std::int64_t planes, std::int64_t stride)
      : conv1(register_module("conv1", conv(in, planes, 1, 1))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", conv(planes, planes, 3, stride))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(planes))),
        conv3(register_module("conv3", conv(planes, planes * kExpansion, 1, 1))),
        bn3(register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion))) {
    if (stride != 1 || in != planes * kExpansion) {
      downsample = register_module("downsample", projection(in, planes * kExpansion, stride));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor identity = downsample.is_empty() ? x : downsample->forward(x);
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = torch::relu(bn2(conv2(out)));
    out = bn3(conv3(out));
    return torch::relu(out + identity);
  }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Conv2d conv3;
  torch::nn::BatchNorm2d bn3;
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

/// `blocks` residual blocks, the first with `stride` (and a projection if the shape changes).
/// \param in  channels entering the stage; updated to the channels leaving it.
template <typename Block>
torch::nn::Sequential make_stage(std::int64_t& in, std::int64_t planes, int blocks, std::int64_t stride) {
  torch::nn::Sequential stage;
  stage->push_back(Block(in, planes, stride));
  in = planes * Block::Impl::kExpansion;
  for (int i = 1; i < blocks; ++i) stage->push_back(Block(in, planes, 1));
  return stage;
}

/// Kaiming-normal (fan-out, ReLU) conv weights, as Cohen et al. and torchvision; batch norm
/// keeps γ = 1, β = 0 and the linear layer PyTorch's default initialisation.
void init_convs(torch::nn::Module& net) {
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
}

/// Per-channel normalisation constants as `[1, 3, 1, 1]` buffers, so they follow the module
/// to its device (Module::to and Module::load update the registered tensor in place, which the
/// member handles share) and travel in checkpoints.
struct Normalisation {
  Normalisation(torch::nn::Module& net, const std::array<float, 3>& mean_values, const std::array<float, 3>& std_values)
      : mean(net.register_buffer("mean", torch::tensor(at::ArrayRef<float>(mean_values)).view({1, 3, 1, 1}))),
        stddev(net.register_buffer("std", torch::tensor(at::ArrayRef<float>(std_values)).view({1, 3, 1, 1}))) {}
  torch::Tensor operator()(const torch::Tensor& x) const { return (x - mean) / stddev; }
  torch::Tensor mean, stddev;
};

struct CifarResNetImpl : torch::nn::Module {
  CifarResNetImpl(int depth, std::int64_t num_classes)
      : normalise(*this, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}),
        conv1(register_module("conv1", conv(3, 16, 3, 1))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(16))) {
    const int n = (depth - 2) / 6;
    std::int64_t channels = 16;
    layer1 = register_module("layer1", make_stage<BasicBlock>(channels, 16, n, 1));
    layer2 = register_module("layer2", make_stage<BasicBlock>(channels, 32, n, 2));
    layer3 = register_module("layer3", make_stage<BasicBlock>(channels, 64, n, 2));
    fc = register_module("fc", torch::nn::Linear(channels, num_classes));
    init_convs(*this);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = normalise(x);
    h = torch::relu(bn1(conv1(h)));
    h = layer3->forward(layer2->forward(layer1->forward(h)));
    return fc(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }

  Normalisation normalise;
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(CifarResNet);

struct ResNet50Impl : torch::nn::Module {
  explicit ResNet50Impl(std::int64_t num_classes)
      : normalise(*this, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}),
        conv1(register_module("conv1", conv(3, 64, 7, 2))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(64))) {
    std::int64_t channels = 64;
    layer1 = register_module("layer1", make_stage<Bottleneck>(channels, 64, 3, 1));
    layer2 = register_module("layer2", make_stage<Bottleneck>(channels, 128, 4, 2));
    layer3 = register_module("layer3", make_stage<Bottleneck>(channels, 256, 6, 2));
    layer4 = register_module("layer4", make_stage<Bottleneck>(channels, 512, 3, 2));
    fc = register_module("fc", torch::nn::Linear(channels, num_classes));
    init_convs(*this);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = normalise(x);
    h = torch::max_pool2d(torch::relu(bn1(conv1(h))), /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
    h = layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
    return fc(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }

  Normalisation normalise;
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet50);

// ---- The inference graph (docs/method.md §14): the forward above as TorchScript source ----

std::string bn_of(const std::string& input, const std::string& bn) {
  return "torch.batch_norm(" + input + ", self." + bn + "_weight, self." + bn + "_bias, self." + bn + "_running_mean, self." +
         bn + "_running_var, False, 0.1, 1e-05, True)";
}

// conv (no bias, padding kernel/2, as conv() above) then batch norm, as TorchScript.
std::string conv_bn(const std::string& input, const std::string& conv_name, const std::string& bn_name,
                    std::int64_t stride, std::int64_t padding) {
  const std::string s = std::to_string(stride), p = std::to_string(padding);
  return bn_of("torch.conv2d(" + input + ", self." + conv_name + "_weight, None, [" + s + ", " + s + "], [" + p + ", " + p + "])",
               bn_name);
}

/// The forward of CifarResNetImpl (`imagenet` false) or ResNet50Impl over flat_name'd
/// tensors. The block structure is read off the module's parameter names (layerL.J.conv3
/// marks a bottleneck, layerL.J.downsample a projection), so it is the module's own.
std::string resnet_script(const torch::nn::Module& net, bool imagenet) {
  const auto params = net.named_parameters();
  auto has = [&](const std::string& name) { return params.find(name) != nullptr; };
  std::string src = "def forward(self, x: Tensor) -> Tensor:\n";
  src += "    h = (x - self.mean) / self.std\n";
  src += "    h = torch.relu(" + conv_bn("h", "conv1", "bn1", imagenet ? 2 : 1, imagenet ? 3 : 1) + ")\n";
  if (imagenet) src += "    h = torch.max_pool2d(h, [3, 3], [2, 2], [1, 1])\n";
  for (int layer = 1; has("layer" + std::to_string(layer) + ".0.conv1.weight"); ++layer) {
    for (int block = 0;; ++block) {
      const std::string dotted = "layer" + std::to_string(layer) + "." + std::to_string(block) + ".";
      if (!has(dotted + "conv1.weight")) break;
      const std::string b = flat_name(dotted);
      const std::int64_t stride = (layer > 1 && block == 0) ? 2 : 1;
      const bool bottleneck = has(dotted + "conv3.weight");
      src += has(dotted + "downsample.0.weight")
                 ? "    i = " + conv_bn("h", b + "downsample_0", b + "downsample_1", stride, 0) + "\n"
                 : "    i = h\n";
      if (bottleneck) {  // the stride sits on the 3×3 conv
        src += "    o = torch.relu(" + conv_bn("h", b + "conv1", b + "bn1", 1, 0) + ")\n";
        src += "    o = torch.relu(" + conv_bn("o", b + "conv2", b + "bn2", stride, 1) + ")\n";
        src += "    o = " + conv_bn("o", b + "conv3", b + "bn3", 1, 0) + "\n";
      } else {
        src += "    o = torch.relu(" + conv_bn("h", b + "conv1", b + "bn1", stride, 1) + ")\n";
        src += "    o = " + conv_bn("o", b + "conv2", b + "bn2", 1, 1) + "\n";
      }
      src += "    h = torch.relu(o + i)\n";
    }
  }
  src += "    h = torch.flatten(torch.adaptive_avg_pool2d(h, [1, 1]), 1)\n";
  src += "    return torch.linear(h, self.fc_weight, self.fc_bias)\n";
  return src;
}

/// BaseModel around a ResNet: the input contract lives here, the network in `Net`.
template <typename Net>
class ResNetModel final : public BaseModel {
 public:
  /// \param min_side  0: exactly `side` × `side`; otherwise H, W ≥ min_side.
  ResNetModel(Net net, std::string name, std::int64_t num_classes, std::int64_t side, std::int64_t min_side)
      : net_(std::move(net)), name_(std::move(name)), num_classes_(num_classes), side_(side), min_side_(min_side) {}

  at::Tensor logits(const at::Tensor& x) override {
    check_input(x);
    return net_->forward(x.to(device_));
  }
  void check_input(const at::Tensor& x) const override {
    const bool spatial_ok = x.dim() == 4 && (min_side_ == 0 ? x.size(2) == side_ && x.size(3) == side_
                                                            : x.size(2) >= min_side_ && x.size(3) >= min_side_);
    if (!(x.is_floating_point() && x.dim() == 4 && x.size(1) == 3 && spatial_ok)) {
      const std::string expected = min_side_ == 0 ? "[B, 3, " + std::to_string(side_) + ", " + std::to_string(side_) + "]"
                                                  : "[B, 3, H, W] with H, W >= " + std::to_string(min_side_);
      DUALRS_THROW(ModelError, name_, " expects float ", expected, " input, got ", x.scalar_type(), " ", x.sizes());
    }
  }
  std::string script_source() const override { return resnet_script(*net_, min_side_ != 0); }
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
  c10::Device device_{c10::kCPU};
  std::string name_;
  std::int64_t num_classes_;
  std::int64_t side_;
  std::int64_t min_side_;
};

}  // namespace

std::unique_ptr<BaseModel> make_cifar_resnet(int depth, std::int64_t num_classes) {
  DUALRS_CHECK(depth >= 8 && (depth - 2) % 6 == 0, ModelError, "cifar_resnet depth must be 6n+2 (20, 56, 110), got ",
               depth);
  DUALRS_CHECK(num_classes >= 1, ModelError, "cifar_resnet needs num_classes >= 1, got ", num_classes);
  return std::make_unique<ResNetModel<CifarResNet>>(CifarResNet(depth, num_classes),
                                                    "cifar_resnet" + std::to_string(depth), num_classes, 32, 0);
}

std::unique_ptr<BaseModel> make_resnet50(std::int64_t num_classes) {
  DUALRS_CHECK(num_classes >= 1, ModelError, "resnet50 needs num_classes >= 1, got ", num_classes);
  return std::make_unique<ResNetModel<ResNet50>>(ResNet50(num_classes), "resnet50", num_classes, 224, 32);
}

}  // namespace dualrs::model
