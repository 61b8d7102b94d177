// Reduced-precision inference (docs/method.md §18): a trained mnist_cnn in bf16, eager and
// frozen, predicts the class of fp32 on at least 98 % / 95 % of noisy copies of test digits, with
// float32 logits out; TorchScript modules are cast, or refused with an error naming the
// precision key when their forward cannot run in bf16; the ε-model runs in bf16 too; the
// config keys parse, refuse fp16 on a CPU and stay out of a float32 run's resolved config.

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/precision.h"
#include "dualrs/model/torchscript_model.h"
#include "dualrs/train/train_base.h"

namespace dualrs::model {
namespace {

namespace fs = std::filesystem;

std::string mnist(const std::string& name) { return std::string(DUALRS_SOURCE_DIR) + "/data/mnist/" + name; }

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("dualrs_precision_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// One mnist_cnn trained for an epoch under noise, shared by the tests (a few seconds).
const std::string& trained_checkpoint() {
  static const std::string path = [] {
    torch::set_num_threads(1);
    const auto ds = data::load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
    const auto train = data::read_split(mnist("split/train.txt"), ds.size());
    std::vector<std::int64_t> subset(train.begin(), train.begin() + 1500);
    auto net = make_mnist_cnn(10);
    TrainBaseConfig config;
    config.epochs = 1;
    config.batch_size = 64;
    config.lr = 2e-3;
    config.sigma_candidates = {0.25, 0.5};
    dist::SingleProcessCommunicator comm;
    train::train_base(*net, ds, subset, config, 1, "", {comm}, nullptr, Verbosity::kQuiet);
    const std::string out = (temp_dir() / "mnist_cnn.pt").string();
    save_checkpoint(*net, out);
    return out;
  }();
  return path;
}

// 20 noisy copies (σ = 0.5, fixed seed) of each of 50 test digits: [1000, 1, 28, 28].
at::Tensor noisy_test_digits() {
  const auto ds = data::load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
  const auto test = data::read_split(mnist("split/test.txt"), ds.size());
  std::vector<std::int64_t> idx(test.begin(), test.begin() + 50);
  torch::manual_seed(7);
  const at::Tensor clean = ds.batch(idx).repeat_interleave(20, 0);
  return clean + 0.5 * torch::randn_like(clean);
}

ModelConfig native_config(Precision precision, bool optimize) {
  ModelConfig c;
  c.arch = "mnist_cnn";
  c.checkpoint = trained_checkpoint();
  c.precision = precision;
  c.optimize = optimize;
  return c;
}

double argmax_agreement(const at::Tensor& a, const at::Tensor& b) {
  return a.argmax(1).eq(b.argmax(1)).to(torch::kFloat64).mean().item<double>();
}

TEST(PrecisionTest, Bf16MnistCnnAgreesWithFp32OnNoisyCopies) {
  torch::set_num_threads(1);
  const at::Tensor x = noisy_test_digits();
  (void)trained_checkpoint();  // trains outside the inference-mode guard
  torch::InferenceMode guard;
  auto fp32 = load_model(native_config(Precision::kFp32, true));
  const at::Tensor reference = fp32->logits(x);
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "frozen" : "eager");
    auto bf16 = load_model(native_config(Precision::kBf16, optimize));
    EXPECT_NE(bf16->describe().find("in bf16"), std::string::npos) << bf16->describe();
    EXPECT_EQ(bf16->inference_form(), optimize ? "frozen" : "eager");
    const at::Tensor out = bf16->logits(x);
    EXPECT_EQ(out.scalar_type(), torch::kFloat32);
    EXPECT_EQ(out.sizes(), reference.sizes());
    const double agreement = argmax_agreement(out, reference);
    std::printf("bf16 %s: argmax agreement with fp32 %.4f on %lld noisy copies, max relative logit error %.4f\n",
                optimize ? "frozen" : "eager", agreement, static_cast<long long>(x.size(0)),
                relative_logit_error(out, reference));
    // Measured: 0.991 eager, 0.973 frozen (oneDNN's bf16 kernels round more; a one-epoch model
    // at σ = 0.5 has many near ties). The bounds leave room for other CPUs' kernels.
    EXPECT_GE(agreement, optimize ? 0.95 : 0.98);
    EXPECT_LE(relative_logit_error(out, reference), 0.1);
    EXPECT_GT(relative_logit_error(out, reference), 0.0);  // it really ran in bf16
  }
}

TEST(PrecisionTest, TrainingUseIgnoresThePrecision) {
  auto model = load_model(native_config(Precision::kBf16, true), ModelUse::kTraining);
  ASSERT_NE(model->module(), nullptr);
  for (const auto& p : model->module()->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

// A TorchScript classifier written here: [B, 1, 28, 28] -> [B, 3] through one weight matrix.
std::string save_script(const std::string& name, const std::string& forward) {
  torch::jit::Module m("Linear3");
  torch::manual_seed(3);
  m.register_parameter("w", torch::randn({784, 3}) * 0.05, false);
  m.define(forward);
  const std::string path = (temp_dir() / name).string();
  m.save(path);
  return path;
}

TEST(PrecisionTest, TorchScriptModelIsCastToBf16) {
  const std::string path =
      save_script("linear.pt", "def forward(self, x: Tensor) -> Tensor:\n    return torch.matmul(x.flatten(1), self.w)\n");
  const at::Tensor x = torch::rand({8, 1, 28, 28});
  torch::InferenceMode guard;
  for (bool optimize : {false, true}) {
    auto fp32 = load_torchscript_model(path, 3, "cpu", optimize);
    auto bf16 = with_precision(load_torchscript_model(path, 3, "cpu", optimize, "/model", nullptr, Precision::kBf16),
                               Precision::kBf16, "/model");
    const at::Tensor a = fp32->logits(x), b = bf16->logits(x);
    EXPECT_EQ(b.scalar_type(), torch::kFloat32);
    EXPECT_LE(relative_logit_error(b, a), 0.05);
    EXPECT_GT(relative_logit_error(b, a), 0.0);
  }
}

TEST(PrecisionTest, TorchScriptModelThatCannotRunInBf16IsRefusedNamingTheKey) {
  // Its forward forces float32 input onto bf16 weights: matmul refuses mixed types.
  const std::string path = save_script(
      "float_only.pt", "def forward(self, x: Tensor) -> Tensor:\n    return torch.matmul(x.flatten(1).float(), self.w)\n");
  auto bf16 = with_precision(load_torchscript_model(path, 3, "cpu", false, "/dual/estimator", nullptr, Precision::kBf16),
                             Precision::kBf16, "/dual/estimator");
  try {
    bf16->logits(torch::rand({2, 1, 28, 28}));
    FAIL() << "a model that cannot run in bf16 was accepted";
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot run in bf16 (/dual/estimator/precision)"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("set /dual/estimator/precision to fp32"), std::string::npos) << what;
  }
}

TEST(PrecisionTest, NativeEpsilonModelRunsInBf16) {
  auto eps = make_native_epsilon_model("mnist_unet");
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    for (auto& p : eps->module()->parameters()) p.normal_(0.0, 0.05);  // the output layer starts at zero
  }
  const std::string ckpt = (temp_dir() / "unet.pt").string();
  save_module_checkpoint(*eps->module(), "mnist_unet", ckpt);
  DenoiserConfig c;
  c.arch = "mnist_unet";
  c.checkpoint = ckpt;
  c.steps = 1000;
  const at::Tensor x_t = torch::rand({4, 1, 28, 28}) * 2 - 1;
  const at::Tensor t = torch::tensor({10.0f, 200.0f, 500.0f, 999.0f});
  torch::InferenceMode guard;
  auto fp32 = load_epsilon_model(c);
  const at::Tensor reference = fp32->epsilon(x_t, t);
  for (bool optimize : {false, true}) {
    c.optimize = optimize;
    c.precision = Precision::kBf16;
    auto bf16 = load_epsilon_model(c);
    const at::Tensor out = bf16->epsilon(x_t, t);
    EXPECT_EQ(out.scalar_type(), torch::kFloat32);
    const double error = relative_logit_error(out.flatten(1), reference.flatten(1));
    EXPECT_LE(error, 0.1) << (optimize ? "frozen" : "eager");
    EXPECT_GT(error, 0.0);
  }
}

TEST(PrecisionTest, ConfigKeys) {
  auto config = [](const nlohmann::json& model) {
    nlohmann::json m = model;
    m["num_classes"] = 10;
    return ExperimentConfig::from_json({{"model", m}}, "test.json");
  };
  EXPECT_EQ(config({{"arch", "mnist_cnn"}}).model().precision, Precision::kFp32);
  EXPECT_EQ(config({{"arch", "mnist_cnn"}, {"precision", "bf16"}}).model().precision, Precision::kBf16);
  try {
    (void)config({{"arch", "mnist_cnn"}, {"precision", "fp16"}}).model();
    FAIL() << "fp16 on a CPU was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/model/precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp16 needs a CUDA device"), std::string::npos) << e.what();
  }
  try {
    (void)config({{"arch", "mnist_cnn"}, {"precision", "fp8"}}).model();
    FAIL() << "an unknown precision was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/model/precision"), std::string::npos) << e.what();
  }
  ModelConfig m;
  EXPECT_FALSE(to_json(m).contains("precision"));  // float32 runs keep their resolved config
  m.precision = Precision::kBf16;
  EXPECT_EQ(to_json(m).at("precision"), "bf16");
}

}  // namespace
}  // namespace dualrs::model
