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

// Device placement (native models train and certify on the rank's GPU; docs/cluster.md §2). Here only
// the CPU exists, so these pin the device names, the errors and that a placed model and a
// loaded checkpoint compute what an unplaced one does; the CUDA path runs in the gpu tier.
TEST(DevicePlacementTest, ParseDeviceAcceptsCpuAndNamesBadDevices) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  for (const char* bad : {"gpu", "cuda:x", "", "mps"}) {
    try {
      parse_device(bad);
      FAIL() << bad;
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("device '" + std::string(bad) + "'"), std::string::npos) << e.what();
    }
  }
  if (!torch::cuda::is_available()) {
    try {
      parse_device("cuda:0");
      FAIL() << "cuda:0 accepted without CUDA";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA"), std::string::npos) << e.what();
    }
  } else {
    const auto visible = static_cast<int>(torch::cuda::device_count());
    EXPECT_THROW(parse_device("cuda:" + std::to_string(visible)), ModelError);
  }
}

TEST(DevicePlacementTest, NativeModelsOnTheCpuComputeWhatTheyDidAndLoadCheckpointsInPlace) {
  torch::manual_seed(3);
  for (const char* arch : {"mnist_cnn", "cifar_resnet20"}) {
    auto model = make_native_model(arch, 10);
    model->set_training(false);
    const bool mnist = std::string(arch) == "mnist_cnn";
    const auto x = mnist ? torch::rand({2, 1, 28, 28}) : torch::rand({2, 3, 32, 32});
    torch::NoGradGuard no_grad;
    const auto before = model->logits(x);
    model->to_device("cpu");
    EXPECT_TRUE(torch::equal(model->logits(x), before)) << arch;
    EXPECT_THROW(model->to_device("gpu"), ModelError) << arch;
    const auto path = (std::filesystem::temp_directory_path() / (std::string("dualrs_place_") + arch + ".pt")).string();
    save_checkpoint(*model, path);
    // load_model places the loaded weights on the config's device.
    ModelConfig config;
    config.arch = arch;
    config.checkpoint = path;
    config.device = "cpu";
    config.optimize = false;  // the eager module, whose parameters are checked (frozen forms: inference_graph_test)
    auto loaded = load_model(config);
    EXPECT_TRUE(torch::equal(loaded->logits(x), before)) << arch;
    for (const auto& p : loaded->module()->parameters()) EXPECT_TRUE(p.device().is_cpu());
    config.device = "cuda:7";
    if (!torch::cuda::is_available()) {
      EXPECT_THROW(load_model(config), ModelError) << arch;
    }
    std::filesystem::remove(path);
  }
}

TEST(DevicePlacementTest, TorchScriptModelsStayOnTheDeviceTheyWereLoadedOn) {
  auto scripted = load_torchscript_model(fixture("ts_mean_scaled.pt"), 10);
  EXPECT_NO_THROW(scripted->to_device("cpu"));
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(scripted->to_device("cuda"), ModelError);
  } else {
    try {
      scripted->to_device("cuda:0");
      FAIL() << "a CPU-loaded TorchScript model claimed to move";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("ts_mean_scaled.pt"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace dualrs::model
