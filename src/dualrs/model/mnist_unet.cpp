#include "dualrs/model/mnist_unet.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"

namespace dualrs::model {
namespace {

constexpr std::int64_t kChannels = 16;
constexpr std::int64_t kEmbedding = 2 * kChannels;

torch::nn::Conv2d conv3(std::int64_t in, std::int64_t out, std::int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

/// Sinusoidal embedding of the (float) timesteps [Vaswani et al. 2017; DDPM]: `[B] -> [B, dim]`.
torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim) {
  const std::int64_t half = dim / 2;
  const auto freqs =
      torch::exp(-std::log(10000.0) * torch::arange(half, t.options().dtype(torch::kFloat32)) / static_cast<double>(half));
  const auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  return torch::cat({torch::sin(args), torch::cos(args)}, 1);
}

struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(std::int64_t in, std::int64_t out)
      : norm1(register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(8, in)))),
        conv1(register_module("conv1", conv3(in, out))),
        time(register_module("time", torch::nn::Linear(kEmbedding, out))),
        norm2(register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(8, out)))),
        conv2(register_module("conv2", conv3(out, out))) {
    if (in != out) skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) {
    torch::Tensor h = conv1(torch::silu(norm1(x)));
    h = h + time(emb).unsqueeze(2).unsqueeze(3);
    h = conv2(torch::silu(norm2(h)));
    return h + (skip.is_empty() ? x : skip(x));
  }

  torch::nn::GroupNorm norm1;
  torch::nn::Conv2d conv1;
  torch::nn::Linear time;
  torch::nn::GroupNorm norm2;
  torch::nn::Conv2d conv2;
  torch::nn::Conv2d skip{nullptr};
};
TORCH_MODULE(ResBlock);

struct MnistUNetImpl : torch::nn::Module {
  MnistUNetImpl()
      : embed1(register_module("embed1", torch::nn::Linear(kChannels, kEmbedding))),
        embed2(register_module("embed2", torch::nn::Linear(kEmbedding, kEmbedding))),
        input(register_module("input", conv3(4, kChannels))),
        down1(register_module("down1", ResBlock(kChannels, kChannels))),
        downsample(register_module("downsample", conv3(kChannels, 2 * kChannels, 2))),
        down2(register_module("down2", ResBlock(2 * kChannels, 2 * kChannels))),
        middle(register_module("middle", ResBlock(2 * kChannels, 2 * kChannels))),
        up2(register_module("up2", ResBlock(4 * kChannels, 2 * kChannels))),
        upsample(register_module("upsample", conv3(2 * kChannels, kChannels))),
        up1(register_module("up1", ResBlock(2 * kChannels, kChannels))),
        out_norm(register_module("out_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(8, kChannels)))),
        out(register_module("out", conv3(kChannels, 4))) {
    // improved-diffusion's zero_module: a fresh model predicts ε̂ = 0.
    torch::NoGradGuard no_grad;
    out->weight.zero_();
    out->bias.zero_();
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) {
    // The embedding is computed in float32 and cast to the weights' type (bf16 inference).
    const torch::Tensor emb =
        embed2(torch::silu(embed1(timestep_embedding(t, kChannels).to(embed1->weight.scalar_type()))));
    const torch::Tensor h1 = down1(input(torch::pixel_unshuffle(x, 2)), emb);   // [B, c, 14, 14]
    const torch::Tensor h2 = down2(downsample(h1), emb);                       // [B, 2c, 7, 7]
    torch::Tensor u = middle(h2, emb);
    u = up2(torch::cat({u, h2}, 1), emb);
    u = upsample(torch::upsample_nearest2d(u, {h1.size(2), h1.size(3)}));  // [B, c, 14, 14]
    u = up1(torch::cat({u, h1}, 1), emb);
    return torch::pixel_shuffle(out(torch::silu(out_norm(u))), 2);          // [B, 1, 28, 28]
  }

  torch::nn::Linear embed1, embed2;
  torch::nn::Conv2d input;
  ResBlock down1;
  torch::nn::Conv2d downsample;
  ResBlock down2, middle, up2;
  torch::nn::Conv2d upsample;
  ResBlock up1;
  torch::nn::GroupNorm out_norm;
  torch::nn::Conv2d out;
};
TORCH_MODULE(MnistUNet);

// ---- The inference graph (docs/method.md §14): MnistUNetImpl::forward as TorchScript ----

std::string conv_of(const std::string& input, const std::string& conv, int stride, int padding) {
  const std::string s = std::to_string(stride), p = std::to_string(padding);
  return "torch.conv2d(" + input + ", self." + conv + "_weight, self." + conv + "_bias, [" + s + ", " + s + "], [" + p +
         ", " + p + "])";
}

std::string silu_norm(const std::string& input, const std::string& norm) {
  return "torch.silu(torch.group_norm(" + input + ", 8, self." + norm + "_weight, self." + norm + "_bias, 1e-05, True))";
}

// ResBlockImpl::forward of block `b` on `x` into `out` (a TorchScript statement list).
std::string res_block(const std::string& out, const std::string& x, const std::string& b, bool has_skip) {
  std::string src;
  src += "    r = " + conv_of(silu_norm(x, b + "_norm1"), b + "_conv1", 1, 1) + "\n";
  src += "    r = r + torch.linear(emb, self." + b + "_time_weight, self." + b + "_time_bias).unsqueeze(2).unsqueeze(3)\n";
  src += "    r = " + conv_of(silu_norm("r", b + "_norm2"), b + "_conv2", 1, 1) + "\n";
  src += "    " + out + " = r + " + (has_skip ? conv_of(x, b + "_skip", 1, 0) : x) + "\n";
  return src;
}

std::string unet_script(const torch::nn::Module& net) {
  const auto params = net.named_parameters();
  auto skip = [&](const std::string& block) { return params.find(block + ".skip.weight") != nullptr; };
  char log_base[64];
  std::snprintf(log_base, sizeof log_base, "%.17g", -std::log(10000.0));
  const std::string half = std::to_string(kChannels / 2);
  std::string src = "def forward(self, x: Tensor, t: Tensor) -> Tensor:\n";
  src += "    freqs = torch.exp(" + std::string(log_base) + " * torch.arange(" + half +
         ", dtype=6, device=t.device) / " + half + ".0)\n";
  src += "    args = t.float().unsqueeze(1) * freqs.unsqueeze(0)\n";  // dtype 6: float32
  src += "    emb = torch.cat([torch.sin(args), torch.cos(args)], 1).to(self.embed1_weight.dtype)\n";
  src += "    emb = torch.linear(torch.silu(torch.linear(emb, self.embed1_weight, self.embed1_bias)), self.embed2_weight, "
         "self.embed2_bias)\n";
  src += "    h0 = " + conv_of("torch.pixel_unshuffle(x, 2)", "input", 1, 1) + "\n";
  src += res_block("h1", "h0", "down1", skip("down1"));
  src += "    h2in = " + conv_of("h1", "downsample", 2, 1) + "\n";
  src += res_block("h2", "h2in", "down2", skip("down2"));
  src += res_block("u", "h2", "middle", skip("middle"));
  src += "    u2in = torch.cat([u, h2], 1)\n";
  src += res_block("u", "u2in", "up2", skip("up2"));
  // Nearest 7×7 → 14×14 is an exact 2×2 repeat of every pixel.
  src += "    u = " + conv_of("u.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)", "upsample", 1, 1) + "\n";
  src += "    u1in = torch.cat([u, h1], 1)\n";
  src += res_block("u", "u1in", "up1", skip("up1"));
  src += "    return torch.pixel_shuffle(" + conv_of(silu_norm("u", "out_norm"), "out", 1, 1) + ", 2)\n";
  return src;
}

class MnistUNetModel : public EpsilonModel {
 public:
  at::Tensor epsilon(const at::Tensor& x_t, const at::Tensor& t) override {
    check_input(x_t, t);
    return net_->forward(x_t.to(device_, net_->embed1->weight.scalar_type()), t.to(device_));
  }
  void check_input(const at::Tensor& x_t, const at::Tensor& t) const override {
    DUALRS_CHECK(x_t.is_floating_point() && x_t.dim() == 4 && x_t.size(1) == 1 && x_t.size(2) == 28 && x_t.size(3) == 28,
                 ModelError, "mnist_unet expects float [B, 1, 28, 28] input, got ", x_t.scalar_type(), " ", x_t.sizes());
    DUALRS_CHECK(t.dim() == 1 && t.size(0) == x_t.size(0), ModelError, "mnist_unet expects timesteps [B] = [", x_t.size(0),
                 "], got ", t.sizes());
  }
  std::string script_source() const override { return unet_script(*net_); }
  void to_device(const std::string& device) override {
    device_ = parse_device(device);
    net_->to(device_);
  }
  std::string describe() const override { return "mnist_unet"; }
  torch::nn::Module* module() override { return net_.get(); }
  void set_training(bool training) override { net_->train(training); }

 private:
  MnistUNet net_;
  c10::Device device_{c10::kCPU};
};

}  // namespace

std::unique_ptr<EpsilonModel> make_mnist_unet() { return std::make_unique<MnistUNetModel>(); }

}  // namespace dualrs::model
