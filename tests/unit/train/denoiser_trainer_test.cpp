// train-denoiser's library part: timestep windows around t*, learning on real digits, and the
// resume promise (a resumed run repeats an uninterrupted one bit for bit).

#include "dualrs/train/denoiser_trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/mnist_unet.h"
#include "digits.h"

namespace dualrs::train {
namespace {

using test_data::digits;
using test_data::mnist;

std::vector<std::int64_t> first_train(std::size_t count) {
  const auto train = data::read_split(mnist("split/train.txt"), digits().size());
  return {train.begin(), train.begin() + static_cast<std::ptrdiff_t>(count)};
}

TEST(DenoiserTrainerTest, TimestepWindowsSurroundTStar) {
  const auto schedule = make_schedule(ScheduleKind::kLinear, 1000);
  const auto windows = timestep_windows(schedule, {0.25, 1.0}, 0.25);
  ASSERT_EQ(windows.size(), 2u);
  const std::int64_t t1 = denoise_step(schedule, 0.25).t, t2 = denoise_step(schedule, 1.0).t;  // 145, 396
  EXPECT_EQ(windows[0], std::make_pair(static_cast<std::int64_t>(std::floor(t1 * 0.75)), static_cast<std::int64_t>(std::ceil(t1 * 1.25))));
  EXPECT_EQ(windows[1], std::make_pair(static_cast<std::int64_t>(std::floor(t2 * 0.75)), static_cast<std::int64_t>(std::ceil(t2 * 1.25))));
  EXPECT_EQ(timestep_windows(schedule, {0.5}, 0.0)[0], std::make_pair(denoise_step(schedule, 0.5).t, denoise_step(schedule, 0.5).t));
  EXPECT_EQ(timestep_windows(schedule, {1.0}, 1.0)[0].second, std::min<std::int64_t>(999, 2 * t2));
  EXPECT_THROW(timestep_windows(schedule, {500.0}, 0.25), ConfigError);
  EXPECT_THROW(timestep_windows(schedule, {0.5}, 1.5), ConfigError);
}

TEST(DenoiserTrainerTest, InvalidSettingsAreReportedTogether) {
  TrainDenoiserConfig c;
  c.epochs = 0;
  c.lr = 0;
  c.t_window = 2;
  c.sigmas = {0.5, -1};
  try {
    validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.issues().size(), 4u) << e.what();
  }
}

TEST(DenoiserTrainerTest, LearnsToDenoiseDigits) {
  torch::set_num_threads(1);
  auto eps = std::shared_ptr<model::EpsilonModel>(model::make_mnist_unet());
  model::DiffusionDenoiser denoiser(eps, make_schedule(ScheduleKind::kLinear, 1000));
  TrainDenoiserConfig c;
  c.epochs = 3;
  c.batch_size = 32;
  c.lr = 3e-3;
  c.validation_fraction = 0.2;
  const std::vector<double> sigmas = {0.5};
  // Before training ε̂ = 0: x̂0 is the clamped noisy image; its error is the baseline.
  const auto before = train_denoiser(denoiser, digits(), first_train(320), sigmas, [&] {
    TrainDenoiserConfig none = c;
    none.lr = 1e-12;
    none.epochs = 1;
    return none;
  }(), 1, "", {}, Verbosity::kQuiet);
  auto fresh = std::shared_ptr<model::EpsilonModel>(model::make_mnist_unet());
  model::DiffusionDenoiser trained_denoiser(fresh, make_schedule(ScheduleKind::kLinear, 1000));
  const auto history = train_denoiser(trained_denoiser, digits(), first_train(320), sigmas, c, 1, "", {}, Verbosity::kQuiet);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_LT(history.back().loss, history.front().loss);
  ASSERT_EQ(history.back().val_rmse.size(), 1u);
  EXPECT_LT(history.back().val_rmse[0], 0.8 * before.back().val_rmse[0])
      << "denoised " << history.back().val_rmse[0] << " vs noisy " << before.back().val_rmse[0];
}

TEST(DenoiserTrainerTest, ResumedTrainingRepeatsAnUninterruptedRunBitForBit) {
  torch::set_num_threads(1);
  const auto dir = std::filesystem::temp_directory_path() / "dualrs_denoiser_resume";
  std::filesystem::create_directories(dir);
  const std::string optimizer = (dir / "optimizer.pt").string();
  const std::string checkpoint = (dir / "denoiser.pt").string();
  TrainDenoiserConfig c;
  c.epochs = 2;
  c.batch_size = 16;
  c.validation_fraction = 0.0;
  c.seed = 4;
  const auto indices = first_train(48);
  auto make = [] {
    torch::manual_seed(11);  // same initial weights for both runs
    return std::shared_ptr<model::EpsilonModel>(model::make_mnist_unet());
  };
  auto whole = make();
  model::DiffusionDenoiser whole_denoiser(whole, make_schedule(ScheduleKind::kCosine, 4000));
  train_denoiser(whole_denoiser, digits(), indices, {0.25, 1.0}, c, 1, "", {}, Verbosity::kQuiet);

  auto first = make();
  model::DiffusionDenoiser first_denoiser(first, make_schedule(ScheduleKind::kCosine, 4000));
  TrainDenoiserConfig one = c;
  one.epochs = 1;
  train_denoiser(first_denoiser, digits(), indices, {0.25, 1.0}, one, 1, optimizer, {}, Verbosity::kQuiet);
  model::save_module_checkpoint(*first->module(), "first", checkpoint);
  auto resumed = std::shared_ptr<model::EpsilonModel>(model::make_mnist_unet());
  model::load_module_checkpoint(*resumed->module(), "resumed", checkpoint);
  model::DiffusionDenoiser resumed_denoiser(resumed, make_schedule(ScheduleKind::kCosine, 4000));
  train_denoiser(resumed_denoiser, digits(), indices, {0.25, 1.0}, c, 2, optimizer, {}, Verbosity::kQuiet);

  const auto a = whole->module()->parameters();
  const auto b = resumed->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dualrs::train
