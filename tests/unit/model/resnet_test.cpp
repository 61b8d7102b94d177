// Native ResNets: shapes, parameter counts against an independent PyTorch build, checkpoints
// (batch-norm running statistics included) and the input contract.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/resnet.h"

namespace dualrs::model {
namespace {

struct ParameterCount {
  std::int64_t elements = 0;
  std::int64_t tensors = 0;
};

ParameterCount count_trainable(BaseModel& model) {
  ParameterCount count;
  for (const auto& p : model.module()->parameters()) {
    if (!p.requires_grad()) continue;
    count.elements += p.numel();
    ++count.tensors;
  }
  return count;
}

// Reference counts printed by tests/reference/count_resnet_params.py, which builds the same
// architectures in plain PyTorch (Debian python3-torch 1.13) from the standard definitions:
// Cohen et al.'s archs/cifar_resnet.py with 1x1 conv + BN projection shortcuts, and
// torchvision's resnet50 layout (whose 25,557,032 for K = 1000 the script asserts).
TEST(ResNetTest, TrainableParameterCountsMatchThePyTorchReference) {
  struct Case {
    int depth;
    std::int64_t num_classes;
    std::int64_t elements;
    std::int64_t tensors;
  };
  for (const Case& c : {Case{20, 10, 272474, 65}, Case{56, 10, 855770, 173}, Case{110, 10, 1730714, 335},
                        Case{110, 4, 1730324, 335}}) {
    auto model = make_cifar_resnet(c.depth, c.num_classes);
    const ParameterCount count = count_trainable(*model);
    EXPECT_EQ(count.elements, c.elements) << model->describe() << " K=" << c.num_classes;
    EXPECT_EQ(count.tensors, c.tensors) << model->describe() << " K=" << c.num_classes;
  }
  for (const auto& [num_classes, elements] : {std::pair<std::int64_t, std::int64_t>{1000, 25557032}, {10, 23528522}}) {
    auto model = make_resnet50(num_classes);
    const ParameterCount count = count_trainable(*model);
    EXPECT_EQ(count.elements, elements) << "resnet50 K=" << num_classes;
    EXPECT_EQ(count.tensors, 161) << "resnet50 K=" << num_classes;
  }
}

TEST(ResNetTest, CifarResNetsGiveBatchByClassLogits) {
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({2, 3, 32, 32});
  for (const std::string arch : {"cifar_resnet20", "cifar_resnet56", "cifar_resnet110"}) {
    auto model = make_native_model(arch, 10);
    EXPECT_EQ(model->describe(), arch);
    EXPECT_EQ(model->num_classes(), 10);
    for (const bool training : {true, false}) {
      model->set_training(training);
      const auto logits = model->logits(x);
      EXPECT_EQ(logits.sizes(), (std::vector<std::int64_t>{2, 10})) << arch;
      EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << arch;
    }
  }
  // A σ estimator over |Σ| = 4 noise levels.
  auto estimator = make_cifar_resnet(20, 4);
  estimator->set_training(false);
  EXPECT_EQ(estimator->logits(x).sizes(), (std::vector<std::int64_t>{2, 4}));
}

TEST(ResNetTest, ResNet50FromTheRegistryGivesBatchByClassLogits) {
  torch::NoGradGuard no_grad;
  auto model = make_native_model("resnet50", 10);
  EXPECT_EQ(model->describe(), "resnet50");
  EXPECT_EQ(model->num_classes(), 10);
  ASSERT_NE(model->module(), nullptr);
  model->set_training(false);
  const auto logits = model->logits(torch::rand({1, 3, 64, 64}));
  EXPECT_EQ(logits.sizes(), (std::vector<std::int64_t>{1, 10}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(ResNetTest, NormalisationUsesTheDatasetStatistics) {
  auto cifar = make_cifar_resnet(20, 10);
  auto imagenet = make_resnet50(10);
  auto buffer = [](BaseModel& m, const char* name) { return m.module()->named_buffers(/*recurse=*/false)[name].flatten(); };
  EXPECT_TRUE(torch::allclose(buffer(*cifar, "mean"), torch::tensor({0.4914f, 0.4822f, 0.4465f})));
  EXPECT_TRUE(torch::allclose(buffer(*cifar, "std"), torch::tensor({0.2470f, 0.2435f, 0.2616f})));
  EXPECT_TRUE(torch::allclose(buffer(*imagenet, "mean"), torch::tensor({0.485f, 0.456f, 0.406f})));
  EXPECT_TRUE(torch::allclose(buffer(*imagenet, "std"), torch::tensor({0.229f, 0.224f, 0.225f})));
}

TEST(ResNetTest, CheckpointRoundTripKeepsBatchNormRunningStatistics) {
  // Same seed, so a and b share their weights and differ only in batch-norm running
  // statistics: the round trip can only make their logits equal if buffers are saved.
  torch::manual_seed(1);
  auto a = make_cifar_resnet(20, 10);
  torch::manual_seed(1);
  auto b = make_cifar_resnet(20, 10);
  torch::NoGradGuard no_grad;
  a->set_training(true);
  for (int step = 0; step < 3; ++step) a->logits(torch::rand({8, 3, 32, 32}));
  a->set_training(false);
  b->set_training(false);
  const auto x = torch::rand({4, 3, 32, 32});
  ASSERT_FALSE(torch::equal(a->logits(x), b->logits(x)));

  const auto path = (std::filesystem::temp_directory_path() / "dualrs_cifar_resnet20.pt").string();
  save_checkpoint(*a, path);
  b->set_training(true);
  load_checkpoint(*b, path);  // leaves b in eval mode
  EXPECT_TRUE(torch::equal(a->logits(x), b->logits(x)));

  auto deeper = make_cifar_resnet(56, 10);
  EXPECT_THROW(load_checkpoint(*deeper, path), ModelError);
  std::filesystem::remove(path);
}

TEST(ResNetTest, WrongInputShapeIsAModelErrorNamingTheExpectedShape) {
  auto cifar = make_cifar_resnet(20, 10);
  for (const auto& x : {torch::zeros({1, 3, 28, 28}), torch::zeros({1, 1, 32, 32}), torch::zeros({3, 32, 32}),
                        torch::zeros({1, 3, 32, 32}, torch::kInt64)}) {
    try {
      cifar->logits(x);
      FAIL() << x.sizes();
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("[B, 3, 32, 32]"), std::string::npos) << e.what();
    }
  }
  auto resnet50 = make_resnet50(10);
  for (const auto& x : {torch::zeros({1, 1, 64, 64}), torch::zeros({1, 3, 16, 64}), torch::zeros({3, 64, 64})}) {
    try {
      resnet50->logits(x);
      FAIL() << x.sizes();
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("[B, 3, H, W]"), std::string::npos) << e.what();
    }
  }
}

TEST(ResNetTest, InvalidArchitecturesAreRefused) {
  EXPECT_THROW(make_cifar_resnet(21, 10), ModelError);
  EXPECT_THROW(make_cifar_resnet(2, 10), ModelError);
  EXPECT_THROW(make_cifar_resnet(20, 0), ModelError);
  EXPECT_THROW(make_resnet50(0), ModelError);
  EXPECT_THROW(make_native_model("resnet18", 10), ConfigError);
}

}  // namespace
}  // namespace dualrs::model
