// The frozen inference forms (docs/method.md §14): every native architecture and TorchScript
// models give the eager logits within the stated tolerance and the same argmax; the
// fallback, the self-check's refusal and the training/inference split.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/mnist_unet.h"
#include "dualrs/model/resnet.h"
#include "dualrs/model/torchscript_model.h"

namespace dualrs::model {
namespace {

std::string fixture(const std::string& name) { return std::string(DUALRS_TEST_DATA_DIR) + "/" + name; }

// Batch-norm statistics and affine terms away from their initial 0/1, so that folding them
// into the convolutions is exercised, not a no-op.
void randomise_batch_norm(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (auto& item : net.named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().uniform_(-0.2, 0.2);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
  for (auto& item : net.named_parameters()) {
    const std::string& name = item.key();
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      item.value().uniform_(name.find("bias") != std::string::npos ? -0.2 : 0.8, name.find("bias") != std::string::npos ? 0.2 : 1.2);
    }
  }
}

struct Agreement {
  double max_error = 0.0;  // relative_logit_error
  double argmax_agreement = 0.0;
};

Agreement compare(BaseModel& frozen, BaseModel& eager, const at::Tensor& x) {
  torch::InferenceMode guard;
  const at::Tensor a = frozen.logits(x);
  const at::Tensor b = eager.logits(x);
  return {relative_logit_error(a, b), a.argmax(1).eq(b.argmax(1)).to(torch::kFloat64).mean().item<double>()};
}

// A native model and its frozen form, with the same (random) weights.
struct Pair {
  std::unique_ptr<BaseModel> eager;
  std::unique_ptr<BaseModel> frozen;
};

Pair native_pair(const std::string& arch) {
  torch::manual_seed(11);
  Pair p;
  p.eager = make_native_model(arch, 10);
  randomise_batch_norm(*p.eager->module());
  p.eager->set_training(false);
  // The frozen form wraps its own model with a copy of the same weights.
  auto twin = make_native_model(arch, 10);
  torch::NoGradGuard no_grad;
  auto src = p.eager->module()->named_parameters();
  for (auto& item : twin->module()->named_parameters()) item.value().copy_(*src.find(item.key()));
  auto bufs = p.eager->module()->named_buffers();
  for (auto& item : twin->module()->named_buffers()) item.value().copy_(*bufs.find(item.key()));
  p.frozen = prepare_for_inference(std::move(twin), "/model");
  return p;
}

class NativeInferenceGraphTest : public ::testing::TestWithParam<std::tuple<std::string, std::int64_t, std::int64_t>> {};

TEST_P(NativeInferenceGraphTest, FrozenFormMatchesEagerWithinTolerance) {
  const auto& [arch, channels, side] = GetParam();
  Pair p = native_pair(arch);
  EXPECT_EQ(p.frozen->inference_form(), "frozen");
  EXPECT_EQ(p.eager->inference_form(), "eager");
  EXPECT_EQ(p.frozen->describe(), p.eager->describe());
  torch::manual_seed(3);
  const std::int64_t batch = arch == "resnet50" ? 6 : 64;
  // Noisy copies of an image in [0, 1]: what the model sees when smoothing.
  const at::Tensor clean = torch::rand({1, channels, side, side});
  const at::Tensor x = clean + 0.5 * torch::randn({batch, channels, side, side});
  const Agreement agreement = compare(*p.frozen, *p.eager, x);
  EXPECT_LE(agreement.max_error, kInferenceTolerance) << arch;
  EXPECT_DOUBLE_EQ(agreement.argmax_agreement, 1.0) << arch;
  // The self-check ran on the first batch and saw the same small error.
  auto* graph = dynamic_cast<GraphModel*>(p.frozen.get());
  ASSERT_NE(graph, nullptr);
  EXPECT_GE(graph->self_check_error(), 0.0);
  EXPECT_LE(graph->self_check_error(), kInferenceTolerance);
}

INSTANTIATE_TEST_SUITE_P(Architectures, NativeInferenceGraphTest,
                         ::testing::Values(std::make_tuple("mnist_cnn", 1, 28), std::make_tuple("mnist_mlp", 1, 28),
                                           std::make_tuple("cifar_resnet20", 3, 32),
                                           std::make_tuple("resnet50", 3, 64)),
                         [](const auto& info) { return std::get<0>(info.param); });

TEST(InferenceGraphTest, MnistCnnArgmaxAgreesOnManyNoisyCopies) {
  // Random weights give small margins between classes: a harder case for agreement than a
  // trained model. 2,000 noisy copies of 20 images at sigma = 0.5.
  Pair p = native_pair("mnist_cnn");
  torch::manual_seed(5);
  const at::Tensor clean = torch::rand({20, 1, 1, 28, 28});
  const at::Tensor x = (clean + 0.5 * torch::randn({20, 100, 1, 28, 28})).view({2000, 1, 28, 28});
  const Agreement agreement = compare(*p.frozen, *p.eager, x);
  EXPECT_LE(agreement.max_error, kInferenceTolerance);
  EXPECT_GE(agreement.argmax_agreement, 0.999);
}

TEST(InferenceGraphTest, FrozenFormKeepsTheInputContractAndRefusesTraining) {
  Pair p = native_pair("mnist_cnn");
  EXPECT_THROW(p.frozen->logits(torch::zeros({2, 3, 28, 28})), ModelError);
  EXPECT_THROW(p.frozen->set_training(true), ModelError);
  EXPECT_NO_THROW(p.frozen->set_training(false));
  EXPECT_EQ(p.frozen->module(), nullptr);
  EXPECT_THROW(p.frozen->to_device("cuda:0"), ModelError);
}

TEST(InferenceGraphTest, SelfCheckRefusesAGraphThatDisagrees) {
  torch::manual_seed(1);
  auto eager = make_native_model("mnist_cnn", 10);
  eager->set_training(false);
  torch::manual_seed(2);
  auto other = make_native_model("mnist_cnn", 10);  // other weights: another function
  torch::jit::Module graph = freeze_and_optimize(script_from_source(*other->module(), "mnist_cnn", other->script_source()));
  GraphModel wrong(std::move(eager), std::move(graph), c10::Device(c10::kCPU), "/dual/estimator");
  try {
    wrong.logits(torch::rand({4, 1, 28, 28}));
    FAIL() << "a graph with other weights passed the self-check";
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/dual/estimator/optimize false"), std::string::npos) << what;
    EXPECT_NE(what.find("tolerance"), std::string::npos) << what;
  }
}

TEST(InferenceGraphTest, BrokenScriptSourceIsAModelErrorNamingTheModel) {
  auto eager = make_native_model("mnist_cnn", 10);
  try {
    script_from_source(*eager->module(), "mnist_cnn", "def forward(self, x: Tensor) -> Tensor:\n    return self.nope\n");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("mnist_cnn"), std::string::npos) << e.what();
  }
}

TEST(InferenceGraphTest, TorchScriptModelIsFrozenAndAgrees) {
  std::string warning;
  auto frozen = load_torchscript_model(fixture("ts_small_cnn.pt"), 10, "cpu", /*optimize=*/true, "/model", &warning);
  auto plain = load_torchscript_model(fixture("ts_small_cnn.pt"), 10, "cpu", /*optimize=*/false);
  EXPECT_TRUE(warning.empty()) << warning;
  EXPECT_EQ(frozen->inference_form(), "frozen");
  EXPECT_EQ(plain->inference_form(), "eager");
  torch::manual_seed(9);
  const at::Tensor x = torch::rand({1, 1, 28, 28}) + 0.25 * torch::randn({128, 1, 28, 28});
  const Agreement agreement = compare(*frozen, *plain, x);
  EXPECT_LE(agreement.max_error, kInferenceTolerance);
  EXPECT_DOUBLE_EQ(agreement.argmax_agreement, 1.0);
}

TEST(InferenceGraphTest, UnfreezableTorchScriptFallsBackWithOneWarningNamingTheFile) {
  std::string warning;
  auto model = load_torchscript_model(fixture("ts_unfreezable.pt"), 10, "cpu", /*optimize=*/true, "/model", &warning);
  EXPECT_EQ(model->inference_form(), "eager");
  EXPECT_NE(warning.find("ts_unfreezable.pt"), std::string::npos) << warning;
  EXPECT_NE(warning.find("/model/optimize false"), std::string::npos) << warning;
  EXPECT_EQ(warning.find('\n'), std::string::npos) << warning;
  const at::Tensor logits = model->logits(torch::full({2, 1, 28, 28}, 0.5f));
  EXPECT_FLOAT_EQ(logits[1][4].item<float>(), 2.0f);  // still k * mean(x)
}

TEST(InferenceGraphTest, LoadModelGivesTheEagerModuleForTraining) {
  const auto dir = std::filesystem::temp_directory_path() / ("dualrs_inference_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto model = make_native_model("mnist_cnn", 10);
  const std::string path = (dir / "model.pt").string();
  save_checkpoint(*model, path);
  ModelConfig config;
  config.arch = "mnist_cnn";
  config.checkpoint = path;
  EXPECT_EQ(load_model(config)->inference_form(), "frozen");
  auto training = load_model(config, ModelUse::kTraining);
  EXPECT_EQ(training->inference_form(), "eager");
  EXPECT_NE(training->module(), nullptr);
  config.optimize = false;
  EXPECT_EQ(load_model(config)->inference_form(), "eager");
  std::filesystem::remove_all(dir);
}

TEST(InferenceGraphTest, MnistUnetFrozenFormMatchesEager) {
  torch::manual_seed(13);
  auto eager = make_mnist_unet();
  auto twin = make_mnist_unet();
  {
    torch::NoGradGuard no_grad;
    // A fresh U-Net predicts 0 (zeroed output layer): give every tensor random values.
    for (auto& item : eager->module()->named_parameters()) item.value().normal_(0.0, 0.2);
    auto src = eager->module()->named_parameters();
    for (auto& item : twin->module()->named_parameters()) item.value().copy_(*src.find(item.key()));
  }
  eager->set_training(false);
  auto frozen = prepare_epsilon_for_inference(std::move(twin));
  EXPECT_EQ(frozen->inference_form(), "frozen");
  const at::Tensor x_t = torch::randn({8, 1, 28, 28});
  const at::Tensor t = torch::tensor({0.0f, 10.0f, 100.0f, 250.0f, 400.0f, 600.0f, 800.0f, 999.0f});
  torch::InferenceMode guard;
  const at::Tensor a = frozen->epsilon(x_t, t);
  const at::Tensor b = eager->epsilon(x_t, t);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_LE(relative_logit_error(a.flatten(1), b.flatten(1)), kInferenceTolerance);
  EXPECT_GT(b.abs().max().item<double>(), 0.1);  // not a comparison of zeros
  EXPECT_THROW(frozen->epsilon(torch::zeros({2, 1, 27, 28}), torch::zeros({2})), ModelError);
}

}  // namespace
}  // namespace dualrs::model
