// The overlapped input pipeline (docs/method.md §19): batches arrive in step order whatever
// the thread count, a failed batch fails its own step only, and training with 1 or 4 loader
// threads gives bit-identical weights after an epoch (train-base and train-denoiser, whose
// draws come from one sequential generator).

#include "dualrs/train/prefetch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "dualrs/data/parallel.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/mnist_unet.h"
#include "dualrs/train/denoiser_trainer.h"
#include "dualrs/train/train_base.h"
#include "digits.h"

namespace dualrs::train {
namespace {

using test_data::digits;
using test_data::mnist;

TEST(PrefetchTest, BatchesArriveInStepOrderForAnyThreadCount) {
  for (int threads : {0, 1, 2, 4, 9}) {
    std::atomic<int> in_flight{0}, most{0};
    BatchPrefetcher<std::int64_t> batches(7, threads, [&](std::int64_t step) {
      const int now = ++in_flight;
      most = std::max(most.load(), now);
      EXPECT_EQ(data::on_loader_thread(), threads > 0);
      // Later steps finish first: order must come from next(), not from completion.
      std::this_thread::sleep_for(std::chrono::milliseconds(7 - step));
      --in_flight;
      return step * 10;
    });
    for (std::int64_t s = 0; s < 7; ++s) EXPECT_EQ(batches.next(), s * 10) << threads << " threads";
    EXPECT_THROW(batches.next(), Error);
    EXPECT_LE(most.load(), std::max(threads, 1));
  }
  EXPECT_FALSE(data::on_loader_thread());
}

TEST(PrefetchTest, AFailedBatchFailsItsOwnStep) {
  BatchPrefetcher<int> batches(5, 3, [](std::int64_t step) {
    if (step == 2) throw std::runtime_error("step 2 is broken");
    return static_cast<int>(step);
  });
  EXPECT_EQ(batches.next(), 0);
  EXPECT_EQ(batches.next(), 1);
  EXPECT_THROW(batches.next(), std::runtime_error);
  EXPECT_EQ(batches.next(), 3);
  // The last batch is still being built or done; the destructor waits for it.
}

TEST(PrefetchTest, LoaderThreadsDefaultToTheCpuShare) {
  EXPECT_GE(default_loader_threads(), 1);
  EXPECT_LE(default_loader_threads(), 4);
  EXPECT_EQ(loader_threads_of(0), default_loader_threads());
  EXPECT_EQ(loader_threads_of(3), 3);
}

std::vector<at::Tensor> trained_base_weights(std::int64_t loader_threads) {
  torch::set_num_threads(1);
  std::vector<std::int64_t> subset(96);
  std::iota(subset.begin(), subset.end(), 300);
  TrainBaseConfig config;
  config.epochs = 1;
  config.batch_size = 16;
  config.lr = 2e-3;
  config.sigma_candidates = {0.25, 0.5, 1.0};
  config.seed = 9;
  config.loader_threads = loader_threads;
  torch::manual_seed(11);
  auto model = model::make_mnist_cnn(10);
  dist::SingleProcessCommunicator comm;
  train_base(*model, digits(), subset, config, 1, "", {comm}, {}, Verbosity::kQuiet);
  return model->module()->parameters();
}

void expect_bit_identical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

TEST(PrefetchTest, TrainBaseWeightsDoNotDependOnLoaderThreads) {
  const auto one = trained_base_weights(1);
  expect_bit_identical(one, trained_base_weights(4));
  // And training changed them (the comparison is not between untouched initial weights).
  torch::manual_seed(11);
  const auto initial = model::make_mnist_cnn(10);
  EXPECT_FALSE(torch::equal(one[0], initial->module()->parameters()[0]));
}

std::vector<at::Tensor> trained_denoiser_weights(std::int64_t loader_threads) {
  torch::set_num_threads(1);
  TrainDenoiserConfig c;
  c.epochs = 1;
  c.batch_size = 16;
  c.validation_fraction = 0.0;
  c.seed = 4;
  c.loader_threads = loader_threads;
  std::vector<std::int64_t> indices(64);
  std::iota(indices.begin(), indices.end(), 500);
  torch::manual_seed(11);
  auto eps = std::shared_ptr<model::EpsilonModel>(model::make_mnist_unet());
  model::DiffusionDenoiser denoiser(eps, make_schedule(ScheduleKind::kCosine, 4000));
  train_denoiser(denoiser, digits(), indices, {0.25, 1.0}, c, 1, "", {}, Verbosity::kQuiet);
  return eps->module()->parameters();
}

TEST(PrefetchTest, TrainDenoiserWeightsDoNotDependOnLoaderThreads) {
  expect_bit_identical(trained_denoiser_weights(1), trained_denoiser_weights(4));
}

}  // namespace
}  // namespace dualrs::train
