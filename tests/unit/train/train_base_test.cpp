// Noise-augmented training on real digits learns: loss falls and noisy accuracy beats chance.

#include "dualrs/train/train_base.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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
      train_base(*model, ds, subset, config, {comm}, [&](const EpochStats&) { ++callbacks; }, Verbosity::kQuiet);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(callbacks, 2);
  EXPECT_LT(history[1].loss, history[0].loss);
  EXPECT_GT(history[1].accuracy, 0.5);  // chance is 0.1
}

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
