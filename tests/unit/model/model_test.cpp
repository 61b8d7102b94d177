// TorchScript loading with its [B, K] contract, and native checkpoints.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/torchscript_model.h"

namespace dualrs::model {
namespace {

std::string fixture(const std::string& name) { return std::string(DUALRS_TEST_DATA_DIR) + "/" + name; }

TEST(TorchScriptModelTest, OutputsMatchTheFixtureFormula) {
  auto model = load_torchscript_model(fixture("ts_mean_scaled.pt"), 10);
  const auto x = torch::full({3, 1, 28, 28}, 0.5f);
  x[1].fill_(0.25f);
  const auto logits = model->logits(x);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{3, 10}));
  for (int k = 0; k < 10; ++k) {
    EXPECT_FLOAT_EQ(logits[0][k].item<float>(), 0.5f * static_cast<float>(k));
    EXPECT_FLOAT_EQ(logits[1][k].item<float>(), 0.25f * static_cast<float>(k));
  }
}

TEST(TorchScriptModelTest, ContractViolationsAreModelErrorsNamingTheFile) {
  const auto x = torch::zeros({2, 1, 28, 28});
  for (const char* name : {"ts_bad_shape.pt", "ts_int_output.pt"}) {
    auto model = load_torchscript_model(fixture(name), 10);
    try {
      model->logits(x);
      FAIL() << name;
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  // Right shape, wrong K.
  auto model = load_torchscript_model(fixture("ts_mean_scaled.pt"), 3);
  EXPECT_THROW(model->logits(x), ModelError);
}

TEST(TorchScriptModelTest, MissingOrGarbageFile) {
  EXPECT_THROW(load_torchscript_model("/nonexistent/model.pt", 10), ModelError);
  const auto path = std::filesystem::temp_directory_path() / "dualrs_garbage.pt";
  std::ofstream(path) << "not a torchscript archive";
  try {
    load_torchscript_model(path.string(), 10);
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("dualrs_garbage.pt"), std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST(NativeModelTest, CheckpointRoundTripGivesIdenticalLogits) {
  torch::manual_seed(0);
  auto a = make_mnist_cnn(10);
  auto b = make_mnist_cnn(10);
  a->set_training(false);
  b->set_training(false);
  const auto x = torch::rand({4, 1, 28, 28});
  torch::NoGradGuard no_grad;
  ASSERT_FALSE(torch::equal(a->logits(x), b->logits(x)));
  const auto path = (std::filesystem::temp_directory_path() / "dualrs_cnn.pt").string();
  save_checkpoint(*a, path);
  load_checkpoint(*b, path);
  EXPECT_TRUE(torch::equal(a->logits(x), b->logits(x)));
  std::filesystem::remove(path);
  EXPECT_THROW(load_checkpoint(*b, path), ModelError);
  EXPECT_THROW(b->logits(torch::zeros({1, 3, 28, 28})), ModelError);
}

TEST(NativeModelTest, CheckpointOfAnotherShapeIsRejected) {
  auto ten = make_mnist_cnn(10);
  auto three = make_mnist_cnn(3);
  const auto path = (std::filesystem::temp_directory_path() / "dualrs_cnn10.pt").string();
  save_checkpoint(*ten, path);
  EXPECT_THROW(load_checkpoint(*three, path), ModelError);
  std::filesystem::remove(path);
}

TEST(NativeModelTest, CopyMatchingWeightsTakesTheFeatureLayersAndKeepsTheOutputLayer) {
  torch::manual_seed(1);
  auto classifier = make_mnist_cnn(10);
  auto estimator = make_mnist_cnn(3);
  const auto fresh_head = estimator->module()->named_parameters()["fc2.weight"].clone();
  // conv1, conv2, fc1: weight and bias each; fc2 differs in shape (10 vs 3 outputs).
  EXPECT_EQ(copy_matching_weights(*estimator, *classifier), 6);
  auto est = estimator->module()->named_parameters();
  auto cls = classifier->module()->named_parameters();
  for (const char* name : {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias"}) {
    EXPECT_TRUE(torch::equal(est[name], cls[name])) << name;
  }
  EXPECT_TRUE(torch::equal(est["fc2.weight"], fresh_head));
  // The copy is a copy: training the estimator leaves the classifier alone.
  {
    torch::NoGradGuard no_grad;
    est["conv1.weight"].add_(1.0);
  }
  EXPECT_FALSE(torch::equal(est["conv1.weight"], cls["conv1.weight"]));
}

TEST(NativeModelTest, CopyMatchingWeightsRefusesAnotherArchitecture) {
  auto cnn = make_mnist_cnn(3);
  auto resnet = make_native_model("cifar_resnet20", 10);
  EXPECT_THROW(copy_matching_weights(*cnn, *resnet), ModelError);
  auto scripted = load_torchscript_model(fixture("ts_mean_scaled.pt"), 10);
  EXPECT_THROW(copy_matching_weights(*cnn, *scripted), ModelError);
}

}  // namespace
}  // namespace dualrs::model
