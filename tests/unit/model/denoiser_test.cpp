// Denoised smoothing (docs/method.md §9): the one-step x̂0 with TorchScript ε-model fixtures whose
// outputs are known in closed form, against numpy (tests/reference/make_diffusion_reference.py);
// the antialiased bicubic resize against torch's own; the DenoisedClassifier composition;
// the ε-model and classifier contracts, and the native mnist_unet.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"
#include "dualrs/model/contract.h"
#include "dualrs/model/denoised_classifier.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/mnist_unet.h"
#include "dualrs/model/torchscript_model.h"

namespace dualrs::model {
namespace {

std::string fixture(const std::string& name) { return std::string(DUALRS_TEST_DATA_DIR) + "/" + name; }

const nlohmann::json& reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(fixture("diffusion_reference.json"));
    return nlohmann::json::parse(in);
  }();
  return doc;
}

at::Tensor tensor_of(const nlohmann::json& values, const nlohmann::json& shape) {
  return torch::tensor(values.get<std::vector<double>>(), torch::kFloat64).view(shape.get<std::vector<std::int64_t>>());
}

std::shared_ptr<DiffusionDenoiser> fixture_denoiser(const std::string& name, ScheduleKind kind, std::int64_t steps) {
  return std::make_shared<DiffusionDenoiser>(load_torchscript_epsilon_model(fixture(name)), make_schedule(kind, steps));
}

void expect_model_error_naming(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    FAIL() << "no ModelError";
  } catch (const ModelError& e) {
    for (const auto& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DiffusionDenoiserTest, X0HatMatchesNumpyForEveryFixture) {
  ASSERT_EQ(reference()["denoise"].size(), 6u);
  for (const auto& ref : reference()["denoise"]) {
    const std::string name = ref["fixture"].get<std::string>() + ".pt";
    auto denoiser = fixture_denoiser(name, parse_schedule_kind(ref["kind"]), ref["steps"]);
    const at::Tensor x_noisy = tensor_of(ref["x_noisy"], ref["shape"]).to(torch::kFloat32);
    const at::Tensor expected = tensor_of(ref["x0_hat"], ref["shape"]);
    const at::Tensor got = denoiser->denoise(x_noisy, ref["sigma"].get<double>());
    ASSERT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_EQ(got.scalar_type(), torch::kFloat32);
    const double err = (got.to(torch::kFloat64) - expected).abs().max().item<double>();
    EXPECT_LT(err, 2e-6) << name << " " << ref["kind"] << " sigma=" << ref["sigma"];
    EXPECT_LE(got.abs().max().item<double>(), 1.0) << "x0_hat is clamped to [-1, 1]";
  }
}

TEST(DiffusionDenoiserTest, PerRowSigmaEqualsOneCallPerSigmaAndCleanRowsPassThrough) {
  auto denoiser = fixture_denoiser("eps_linear.pt", ScheduleKind::kCosine, 4000);
  torch::manual_seed(3);
  const at::Tensor x = torch::rand({5, 1, 6, 6}) * 1.2 - 0.1;
  const at::Tensor sigma = torch::tensor({0.25, 0.5, 0.0, 0.25, 1.0}, torch::kFloat64);
  const at::Tensor mixed = denoiser->denoise(x, sigma);
  for (std::int64_t i = 0; i < 5; ++i) {
    const double s = sigma[i].item<double>();
    const at::Tensor row = x.narrow(0, i, 1);
    const at::Tensor want = s == 0.0 ? (row * 2 - 1).clamp(-1, 1) : denoiser->denoise(row, s);
    EXPECT_TRUE(torch::equal(mixed.narrow(0, i, 1), want)) << "row " << i << " sigma " << s;
  }
}

TEST(DiffusionDenoiserTest, OutputCarriesNoGraphButCanFeedTraining) {
  // The denoiser runs without gradients, not in inference mode: a classifier being trained
  // must be able to use its output in backward.
  auto denoiser = fixture_denoiser("eps_const.pt", ScheduleKind::kLinear, 1000);
  auto classifier = std::shared_ptr<BaseModel>(make_mnist_cnn(10));
  DenoisedClassifier model(denoiser, classifier, {}, std::nullopt);
  model.set_training(true);
  const at::Tensor x = torch::rand({4, 1, 28, 28});
  const at::Tensor loss = model.logits_under_noise(x, torch::tensor({0.25, 0.5, 1.0, 0.0}, torch::kFloat64)).sum();
  loss.backward();
  std::int64_t with_grad = 0;
  for (const auto& p : classifier->module()->parameters()) with_grad += p.grad().defined() ? 1 : 0;
  EXPECT_EQ(with_grad, static_cast<std::int64_t>(classifier->module()->parameters().size()));
}

TEST(ClassifierInputTest, ResizeMatchesTorchAntialiasedBicubic) {
  ASSERT_EQ(reference()["resize"].size(), 3u);
  for (const auto& ref : reference()["resize"]) {
    const at::Tensor x = tensor_of(ref["x"], ref["shape"]).to(torch::kFloat32);
    const auto size = ref["size"].get<std::vector<std::int64_t>>();
    std::vector<std::int64_t> out_shape = ref["shape"].get<std::vector<std::int64_t>>();
    out_shape[2] = size[0];
    out_shape[3] = size[1];
    const at::Tensor expected = torch::tensor(ref["y"].get<std::vector<double>>(), torch::kFloat64).view(out_shape);
    ClassifierInputConfig pm1{InputRange::kMinusOneOne, size[0], size[1]};
    const at::Tensor y = to_classifier_input(x, pm1);
    ASSERT_EQ(y.sizes().vec(), out_shape);
    EXPECT_LT((y.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-6) << ref["shape"] << " -> " << ref["size"];
    ClassifierInputConfig unit{InputRange::kZeroOne, size[0], size[1]};
    EXPECT_LT((to_classifier_input(x, unit).to(torch::kFloat64) - (expected + 1) / 2).abs().max().item<double>(), 1e-6);
  }
}

TEST(ClassifierInputTest, SameSizeAndDefaultRangeLeaveValuesAlone) {
  const at::Tensor x = torch::rand({2, 3, 8, 8}) * 2 - 1;
  EXPECT_TRUE(torch::equal(to_classifier_input(x, {InputRange::kMinusOneOne, 8, 8}), x));
  EXPECT_TRUE(torch::allclose(to_classifier_input(x, {}), (x + 1) / 2));
  EXPECT_THROW(parse_input_range("[0,255]", "/model/input_range"), ConfigError);  // parsed with the config
  EXPECT_THROW(to_classifier_input(x, {InputRange::kZeroOne, 8, 0}), ConfigError);
}

TEST(DenoisedClassifierTest, ComposesDenoiserResizeRangeAndClassifier) {
  // ε̂ = 0: x̂0 = clamp(2(x+δ) − 1); the classifier's logits are k·mean(input).
  auto denoiser = fixture_denoiser("eps_zero.pt", ScheduleKind::kCosine, 4000);
  auto classifier = std::shared_ptr<BaseModel>(load_torchscript_model(fixture("ts_mean_scaled.pt"), 10));
  torch::manual_seed(5);
  const at::Tensor x = torch::rand({3, 1, 28, 28}) * 1.4 - 0.2;
  const at::Tensor x0 = (x * 2 - 1).clamp(-1, 1);
  DenoisedClassifier u(denoiser, classifier, {InputRange::kZeroOne, 0, 0}, 0.5);
  const at::Tensor expected_unit = ((x0 + 1) / 2).mean({1, 2, 3});
  const at::Tensor logits = u.logits(x);
  ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{3, 10}));
  EXPECT_TRUE(torch::allclose(logits.select(1, 1), expected_unit, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(logits.select(1, 7), 7 * expected_unit, 1e-5, 1e-6));
  DenoisedClassifier pm1(denoiser, classifier, {InputRange::kMinusOneOne, 56, 56}, 0.5);
  const at::Tensor resized = torch::nn::functional::interpolate(
      x0, torch::nn::functional::InterpolateFuncOptions().size(std::vector<std::int64_t>{56, 56}).mode(torch::kBicubic).align_corners(false).antialias(true));
  EXPECT_TRUE(torch::allclose(pm1.logits(x).select(1, 1), resized.mean({1, 2, 3}), 1e-5, 1e-6));
  EXPECT_EQ(u.num_classes(), 10);
  EXPECT_EQ(u.step()->t, denoise_step(denoiser->schedule(), 0.5).t);
  EXPECT_NE(u.describe().find("t*=1984"), std::string::npos) << u.describe();
}

TEST(DenoisedClassifierTest, OneDenoiserServesEverySigma) {
  auto denoiser = fixture_denoiser("eps_zero.pt", ScheduleKind::kLinear, 1000);
  auto classifier = std::shared_ptr<BaseModel>(make_mnist_cnn(10));
  std::vector<std::unique_ptr<DenoisedClassifier>> pool;
  for (double s : {0.25, 0.5, 1.0}) pool.push_back(std::make_unique<DenoisedClassifier>(denoiser, classifier, ClassifierInputConfig{}, s));
  EXPECT_EQ(denoiser.use_count(), 4);
  EXPECT_EQ(pool[0]->module(), classifier->module());
  EXPECT_EQ(pool[0]->step()->t, 145);
  EXPECT_EQ(pool[2]->step()->t, 396);
}

TEST(DenoisedClassifierTest, SigmaOutsideTheScheduleAndMissingSigmaAreErrors) {
  auto denoiser = fixture_denoiser("eps_zero.pt", ScheduleKind::kLinear, 1000);
  auto classifier = std::shared_ptr<BaseModel>(make_mnist_cnn(10));
  EXPECT_THROW(DenoisedClassifier(denoiser, classifier, {}, 100.0), ConfigError);
  DenoisedClassifier unset(denoiser, classifier, {}, std::nullopt);
  EXPECT_THROW(unset.logits(torch::rand({1, 1, 28, 28})), ModelError);
}

TEST(EpsilonContractTest, ViolationsAreModelErrorsNamingTheFileAndTheExpectation) {
  const at::Tensor x = torch::rand({2, 3, 4, 5});
  for (const char* name : {"eps_bad_shape.pt", "eps_bad_channels.pt"}) {
    auto denoiser = fixture_denoiser(name, ScheduleKind::kLinear, 1000);
    expect_model_error_naming([&] { denoiser->denoise(x, 0.5); }, {name, "[B, C, H, W] = [2, 3, 4, 5]", "[B, 2C, H, W]"});
  }
  auto ints = fixture_denoiser("eps_int_output.pt", ScheduleKind::kLinear, 1000);
  expect_model_error_naming([&] { ints->denoise(x, 0.5); }, {"eps_int_output.pt", "float"});
  expect_model_error_naming([] { load_torchscript_epsilon_model("/nonexistent/eps.pt"); }, {"/nonexistent/eps.pt", "not found"});
  const auto garbage = std::filesystem::temp_directory_path() / "dualrs_garbage_eps.pt";
  std::ofstream(garbage) << "not a torchscript archive";
  expect_model_error_naming([&] { load_torchscript_epsilon_model(garbage.string()); }, {"dualrs_garbage_eps.pt"});
  std::filesystem::remove(garbage);
  // A classifier file used as an ε-model: forward takes one argument.
  auto wrong = fixture_denoiser("ts_mean_scaled.pt", ScheduleKind::kLinear, 1000);
  expect_model_error_naming([&] { wrong->denoise(x, 0.5); }, {"ts_mean_scaled.pt"});
}

TEST(CheckModelContractTest, ReportsWhatItSawOnValidModels) {
  const auto cls = check_model_contract(fixture("ts_mean_scaled.pt"), ModelContract::kClassifier, {1, 28, 28}, 0);
  EXPECT_EQ(cls.num_classes, 10);
  EXPECT_EQ(cls.output_shape, (std::vector<std::int64_t>{3, 10}));
  EXPECT_EQ(cls.output_dtype, "Float");
  const auto eps = check_model_contract(fixture("eps_linear.pt"), ModelContract::kEpsilon, {3, 8, 8}, 0);
  EXPECT_FALSE(eps.learned_sigma);
  EXPECT_EQ(eps.output_shape, (std::vector<std::int64_t>{3, 3, 8, 8}));
  const auto learned = check_model_contract(fixture("eps_learned_sigma.pt"), ModelContract::kEpsilon, {3, 8, 8}, 0);
  EXPECT_TRUE(learned.learned_sigma);
  // A [0, 1] classifier passes its own contract but not the [-1, 1] one.
  EXPECT_NO_THROW(check_model_contract(fixture("ts_needs_unit_range.pt"), ModelContract::kClassifier, {1, 8, 8}, 10));
}

TEST(CheckModelContractTest, EachViolationNamesTheFile) {
  using C = ModelContract;
  const std::vector<std::tuple<std::string, C, std::int64_t, std::string>> cases = {
      {"ts_mean_scaled.pt", C::kClassifier, 7, "[B, K] = [3, 7]"},
      {"ts_bad_shape.pt", C::kClassifier, 0, "[B, K]"},
      {"ts_int_output.pt", C::kClassifierPm1, 0, "float logits"},
      {"ts_needs_unit_range.pt", C::kClassifierPm1, 10, "expects inputs in [0, 1]"},
      {"ts_mixes_rows.pt", C::kClassifier, 10, "rows must be independent"},
      {"eps_bad_channels.pt", C::kEpsilon, 0, "[B, 2C, H, W]"},
      {"eps_int_output.pt", C::kEpsilon, 0, "float"},
      {"eps_nan.pt", C::kEpsilon, 0, "NaN"},
      {"ts_mean_scaled.pt", C::kEpsilon, 0, "ts_mean_scaled.pt"},
  };
  for (const auto& [name, contract, k, needle] : cases) {
    expect_model_error_naming([&, &name = name, &contract = contract, &k = k] {
      check_model_contract(fixture(name), contract, {1, 8, 8}, k);
    }, {name, needle});
  }
  EXPECT_THROW(parse_model_contract("logits"), ConfigError);
}

TEST(MnistUNetTest, FreshModelPredictsZeroNoiseAndCheckpointsRoundTrip) {
  torch::manual_seed(0);
  auto a = make_mnist_unet();
  const at::Tensor x = torch::rand({2, 1, 28, 28}) * 2 - 1;
  const at::Tensor t = torch::tensor({10.0f, 300.0f});
  torch::NoGradGuard no_grad;
  const at::Tensor eps = a->epsilon(x, t);
  ASSERT_EQ(eps.sizes(), (std::vector<std::int64_t>{2, 1, 28, 28}));
  EXPECT_EQ(eps.abs().max().item<double>(), 0.0);  // zero-initialised output conv
  // Perturb the weights, save, load into a fresh model: identical outputs.
  for (auto& p : a->module()->parameters()) p.add_(0.01 * torch::randn(p.sizes()));
  const auto path = (std::filesystem::temp_directory_path() / "dualrs_unet_test.pt").string();
  save_module_checkpoint(*a->module(), a->describe(), path);
  auto b = make_mnist_unet();
  load_module_checkpoint(*b->module(), b->describe(), path);
  EXPECT_TRUE(torch::equal(a->epsilon(x, t), b->epsilon(x, t)));
  EXPECT_FALSE(torch::equal(a->epsilon(x, t), a->epsilon(x, torch::tensor({11.0f, 300.0f}))));  // depends on t
  std::filesystem::remove(path);
  expect_model_error_naming([&] { a->epsilon(torch::rand({2, 3, 28, 28}), t); }, {"mnist_unet", "[B, 1, 28, 28]"});
  EXPECT_THROW(make_native_epsilon_model("big_unet"), ConfigError);
}

// Device placement of ε-models (train-denoiser and denoised certification on a rank's GPU).
// Only the CPU exists here: these pin that placing and loading keep the outputs, and the
// errors; the CUDA path runs in the gpu tier (tests/gpu/test_gpu_training.py).
TEST(EpsilonDevicePlacementTest, NativeModelsPlaceAndLoadOnTheConfiguredDevice) {
  torch::manual_seed(1);
  auto a = make_mnist_unet();
  torch::NoGradGuard no_grad;
  for (auto& p : a->module()->parameters()) p.add_(0.01 * torch::randn(p.sizes()));
  const at::Tensor x = torch::rand({2, 1, 28, 28}) * 2 - 1;
  const at::Tensor t = torch::tensor({10.0f, 300.0f}, torch::kFloat64);  // any dtype: the model converts
  const at::Tensor before = a->epsilon(x, t);
  a->to_device("cpu");
  EXPECT_TRUE(torch::equal(a->epsilon(x, t), before));
  expect_model_error_naming([&] { a->to_device("gpu"); }, {"device 'gpu'"});
  const auto path = (std::filesystem::temp_directory_path() / "dualrs_unet_place.pt").string();
  save_module_checkpoint(*a->module(), a->describe(), path);
  DenoiserConfig config;
  config.arch = "mnist_unet";
  config.checkpoint = path;
  config.device = "cpu";
  config.optimize = false;  // the eager module, whose parameters are checked (frozen forms: inference_graph_test)
  auto loaded = load_epsilon_model(config);
  EXPECT_TRUE(torch::equal(loaded->epsilon(x, t), before));
  for (const auto& p : loaded->module()->parameters()) EXPECT_TRUE(p.device().is_cpu());
  if (!torch::cuda::is_available()) {
    config.device = "cuda:0";
    expect_model_error_naming([&] { load_epsilon_model(config); }, {"cuda:0", "no CUDA"});
  }
  std::filesystem::remove(path);
}

TEST(EpsilonDevicePlacementTest, TorchScriptModelsStayWhereTheyWereLoaded) {
  auto scripted = load_torchscript_epsilon_model(fixture("eps_linear.pt"));
  EXPECT_NO_THROW(scripted->to_device("cpu"));
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(scripted->to_device("cuda:0"), ModelError);
  } else {
    expect_model_error_naming([&] { scripted->to_device("cuda:0"); }, {"eps_linear.pt", "/denoiser/device"});
  }
}

}  // namespace
}  // namespace dualrs::model
