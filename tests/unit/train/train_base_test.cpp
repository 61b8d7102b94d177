// Noise-augmented training on real digits learns: loss falls and noisy accuracy beats chance;
// a run resumed from a checkpoint and the optimizer state repeats an uninterrupted one.

#include "dualrs/train/train_base.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <numeric>

#include "dualrs/core/error.h"
#include "dualrs/model/mnist_cnn.h"

namespace dualrs::train {
namespace {

std::string mnist(const std::string& name) { return std::string(DUALRS_SOURCE_DIR) + "/data/mnist/" + name; }

TEST(TrainBaseTest, LearnsDigitsUnderNoise) {
  torch::set_num_threads(1);
  const auto ds = data::load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
  const auto train = data::read_split(mnist("split/train.txt"), ds.size());
  std::vector<std::int64_t> subset(train.begin(), train.begin() + 1500);
  auto model = model::make_mnist_cnn(10);
  TrainBaseConfig config;
  config.epochs = 2;
  config.batch_size = 64;
  config.lr = 2e-3;
  config.sigma_candidates = {0.25, 0.5};
  int callbacks = 0;
  dist::SingleProcessCommunicator comm;
  const auto history =
      train_base(*model, ds, subset, config, 1, "", {comm}, [&](const EpochStats&) { ++callbacks; }, Verbosity::kQuiet);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(callbacks, 2);
  EXPECT_LT(history[1].loss, history[0].loss);
  EXPECT_GT(history[1].accuracy, 0.5);  // chance is 0.1
}

// Trains 3 epochs at once, and 1 epoch then epochs 2..3 from the saved weights and AdamW
// state, with the learning rate halved after every epoch; the weights and per-epoch losses
// must agree bit for bit. `finetune` picks finetune_classifier (fixed per-example σ).
void expect_resume_repeats_uninterrupted(bool finetune) {
  torch::set_num_threads(1);
  const auto ds = data::load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
  std::vector<std::int64_t> subset(48);
  std::iota(subset.begin(), subset.end(), 200);
  std::vector<double> sigma(subset.size());
  for (std::size_t j = 0; j < sigma.size(); ++j) sigma[j] = j % 2 ? 0.25 : 0.5;
  TrainBaseConfig config;
  config.epochs = 3;
  config.batch_size = 16;
  config.lr = 2e-3;
  config.lr_step_epochs = 1;
  config.lr_gamma = 0.5;
  config.sigma_candidates = {0.25, 0.5, 1.0};
  config.seed = 5;
  dist::SingleProcessCommunicator comm;
  const auto dir = std::filesystem::temp_directory_path() /
                   (finetune ? "dualrs_finetune_resume" : "dualrs_train_base_resume");
  std::filesystem::create_directories(dir);
  const std::string optimizer = (dir / "optimizer.pt").string();
  const std::string checkpoint = (dir / "model.pt").string();
  auto make = [] {
    torch::manual_seed(11);  // the same initial weights for every run
    return model::make_mnist_cnn(10);
  };
  auto train = [&](model::BaseModel& m, const TrainBaseConfig& c, std::int64_t first, const std::string& state) {
    return finetune ? finetune_classifier(m, ds, subset, sigma, c, first, state, {comm}, {}, Verbosity::kQuiet)
                    : train_base(m, ds, subset, c, first, state, {comm}, {}, Verbosity::kQuiet);
  };
  auto whole = make();
  const auto whole_history = train(*whole, config, 1, "");

  auto first = make();
  TrainBaseConfig one = config;
  one.epochs = 1;
  const auto first_history = train(*first, one, 1, optimizer);
  model::save_checkpoint(*first, checkpoint);
  auto resumed = make();
  model::load_checkpoint(*resumed, checkpoint);
  const auto rest = train(*resumed, config, 2, optimizer);

  ASSERT_EQ(whole_history.size(), 3u);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(first_history[0].loss, whole_history[0].loss);
  for (std::size_t e = 0; e < rest.size(); ++e) {
    EXPECT_EQ(rest[e].epoch, whole_history[e + 1].epoch);
    EXPECT_EQ(rest[e].loss, whole_history[e + 1].loss) << "epoch " << rest[e].epoch;
    EXPECT_EQ(rest[e].lr, whole_history[e + 1].lr) << "epoch " << rest[e].epoch;
  }
  const auto a = whole->module()->parameters();
  const auto b = resumed->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  std::filesystem::remove_all(dir);
}

TEST(TrainBaseTest, ResumedTrainingRepeatsAnUninterruptedRunBitForBit) { expect_resume_repeats_uninterrupted(false); }

TEST(TrainBaseTest, ResumedFinetuningRepeatsAnUninterruptedRunBitForBit) { expect_resume_repeats_uninterrupted(true); }

TEST(TrainBaseTest, InvalidSettingsAreReportedTogether) {
  TrainBaseConfig config;
  config.epochs = 0;
  config.lr = 0;
  config.sigma = -0.5;
  try {
    validate(config);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.issues().size(), 3u) << e.what();
  }
}

}  // namespace
}  // namespace dualrs::train
