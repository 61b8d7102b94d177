// Data-parallel building blocks without MPI: bucket plans, batch slices, the shared epoch
// permutation, per-example training noise that does not depend on the batch, and that one
// rank is exactly the plain training loop (the mpi tier covers several ranks).

#include "dualrs/train/data_parallel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <numeric>
#include <set>

#include "dualrs/core/error.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/rng/noise.h"
#include "dualrs/train/noise_augment.h"
#include "dualrs/train/train_base.h"
#include "digits.h"

namespace dualrs::train {
namespace {

using test_data::digits;
using test_data::mnist;

TEST(PlanBucketsTest, BucketsCloseBeforeTheParameterThatWouldOverflowThem) {
  // 1 KiB buckets of floats hold 256 elements.
  const auto buckets = plan_buckets({10, 300, 5, 5, 1000, 2}, 4, 1024);
  const std::vector<GradientBucket> expected = {{0, 1, 10}, {1, 1, 300}, {2, 2, 10}, {4, 1, 1000}, {5, 1, 2}};
  EXPECT_EQ(buckets, expected);
}

TEST(PlanBucketsTest, ExactlyFullBucketsAndEmptyParameters) {
  EXPECT_EQ(plan_buckets({128, 128}, 4, 1024), (std::vector<GradientBucket>{{0, 2, 256}}));
  EXPECT_EQ(plan_buckets({128, 129}, 4, 1024), (std::vector<GradientBucket>{{0, 1, 128}, {1, 1, 129}}));
  EXPECT_EQ(plan_buckets({0, 256, 0}, 4, 1024), (std::vector<GradientBucket>{{0, 3, 256}}));
  EXPECT_TRUE(plan_buckets({}, 4, 1024).empty());
  EXPECT_THROW(plan_buckets({-1}, 4, 1024), CommError);
  EXPECT_THROW(plan_buckets({1}, 4, 0), CommError);
}

TEST(PlanBucketsTest, CoversEveryParameterOnceInOrderWithinTheCap) {
  std::vector<std::int64_t> numels;
  for (int i = 0; i < 200; ++i) numels.push_back((i * 7919) % 50000);
  const std::size_t cap = 100000 * 4;
  const auto buckets = plan_buckets(numels, 4, cap);
  std::size_t next = 0;
  for (const auto& b : buckets) {
    EXPECT_EQ(b.first, next);
    ASSERT_GT(b.count, 0u);
    std::int64_t total = 0;
    for (std::size_t i = b.first; i < b.first + b.count; ++i) total += numels[i];
    EXPECT_EQ(total, b.numel);
    EXPECT_LE(static_cast<std::size_t>(b.numel) * 4, cap);
    next = b.first + b.count;
  }
  EXPECT_EQ(next, numels.size());
  EXPECT_EQ(plan_buckets(numels, 4, cap), buckets);  // a plan depends on its arguments only
}

TEST(RankSliceTest, ContiguousDisjointAndTheFirstRanksTakeTheRemainder) {
  EXPECT_EQ(rank_slice(10, 0, 4).begin, 0);
  EXPECT_EQ(rank_slice(10, 0, 4).count, 3);
  EXPECT_EQ(rank_slice(10, 1, 4).begin, 3);
  EXPECT_EQ(rank_slice(10, 1, 4).count, 3);
  EXPECT_EQ(rank_slice(10, 2, 4).begin, 6);
  EXPECT_EQ(rank_slice(10, 2, 4).count, 2);
  EXPECT_EQ(rank_slice(10, 3, 4).begin, 8);
  EXPECT_EQ(rank_slice(10, 3, 4).count, 2);
  for (std::int64_t batch : {0, 1, 2, 7, 64, 127}) {
    for (int size : {1, 2, 3, 5, 8}) {
      std::int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const RankSlice s = rank_slice(batch, r, size);
        EXPECT_EQ(s.begin, next) << batch << " over " << size;
        EXPECT_GE(s.count, batch / size);
        EXPECT_LE(s.count, batch / size + 1);
        next += s.count;
      }
      EXPECT_EQ(next, batch);
    }
  }
  EXPECT_THROW(rank_slice(4, 2, 2), CommError);
  EXPECT_THROW(rank_slice(4, 0, 0), CommError);
}

TEST(EpochPermutationTest, APermutationThatDependsOnSeedAndEpochOnly) {
  const at::Tensor a = epoch_permutation(1000, 7, 3);
  std::vector<std::int64_t> v(a.data_ptr<std::int64_t>(), a.data_ptr<std::int64_t>() + 1000);
  std::vector<std::int64_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_TRUE(torch::equal(a, epoch_permutation(1000, 7, 3)));
  EXPECT_FALSE(torch::equal(a, epoch_permutation(1000, 7, 4)));
  EXPECT_FALSE(torch::equal(a, epoch_permutation(1000, 8, 3)));
}

TEST(NoisyCopiesTest, AnExamplesNoiseDoesNotDependOnItsBatch) {
  const NoiseSource noise(5, NoiseStage::kTrainEstimator);
  const std::vector<std::int64_t> idx = {12, 400, 7, 9000};
  const std::vector<float> sigma = {0.25f, 0.5f, 1.0f, 0.5f};
  const at::Tensor all = noisy_copies(digits(), idx, sigma, 3, noise, 6);
  ASSERT_EQ(all.sizes(), (std::vector<std::int64_t>{12, 1, 28, 28}));
  for (std::size_t j = 0; j < idx.size(); ++j) {
    const at::Tensor alone = noisy_copies(digits(), {idx[j]}, {sigma[j]}, 3, noise, 6);
    const at::Tensor part = all.narrow(0, static_cast<std::int64_t>(j) * 3, 3).contiguous();
    EXPECT_EQ(std::memcmp(alone.data_ptr<float>(), part.data_ptr<float>(), 3 * 784 * sizeof(float)), 0) << j;
  }
  // Copy k is the clean image plus sigma times the generator's numbers at sample 6 + k.
  std::vector<float> z(2 * 784);
  noise.fill(z.data(), 784, 400, 0, 7, 2, 1.0f);
  const at::Tensor clean = digits().batch({400}).reshape({-1});
  for (int k = 0; k < 2; ++k) {
    const at::Tensor expected = clean + 0.5 * torch::from_blob(z.data() + k * 784, {784}, torch::kFloat32);
    EXPECT_TRUE(torch::allclose(all[4 + k].reshape({-1}), expected, 0, 1e-6)) << k;
  }
  EXPECT_FALSE(torch::equal(all[3], all[4]));  // different samples
  EXPECT_THROW(noisy_copies(digits(), {1, 2}, {0.5f}, 1, noise, 0), DataError);
}

TEST(UniformIndexTest, InRangeReproducibleAndUniform) {
  const NoiseSource choice(3, NoiseStage::kTrainSigmaChoice);
  std::vector<int> counts(3, 0);
  constexpr int kDraws = 30000;
  for (int i = 0; i < kDraws; ++i) {
    const std::uint32_t u = choice.uniform_index(i, 0, 2, 3);
    ASSERT_LT(u, 3u);
    EXPECT_EQ(u, choice.uniform_index(i, 0, 2, 3));
    ++counts[u];
  }
  // Chi-square with 2 degrees of freedom: P(X > 18.42) = 1e-4.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - kDraws / 3.0) * (c - kDraws / 3.0) / (kDraws / 3.0);
  EXPECT_LT(chi2, 18.42);
  int changed = 0;
  for (int i = 0; i < 300; ++i) changed += choice.uniform_index(i, 0, 2, 3) != choice.uniform_index(i, 0, 3, 3);
  EXPECT_GT(changed, 150);  // another epoch, another draw (2/3 differ on average)
  EXPECT_EQ(choice.uniform_index(5, 0, 0, 1), 0u);
  EXPECT_THROW(choice.uniform_index(5, 0, 0, 0), DataError);
  EXPECT_THROW(choice.uniform_index(-1, 0, 0, 3), DataError);
}

TEST(DataParallelTest, OneRankLeavesGradientsBitIdenticalAndRethrowsTheOriginalError) {
  torch::manual_seed(1);
  auto model = model::make_mnist_cnn(10);
  dist::SingleProcessCommunicator comm;
  DataParallel dp(*model->module(), {comm});
  EXPECT_EQ(dp.size(), 1);
  EXPECT_EQ(dp.buckets().size(), 1u);  // 0.8 MB of parameters in a 25 MB bucket
  const at::Tensor x = digits().batch({1, 2, 3});
  model->logits(x).square().mean().backward();
  std::vector<at::Tensor> before;
  for (const auto& p : model->module()->parameters()) before.push_back(p.grad().clone());
  dp.broadcast_parameters_and_buffers();
  dp.reduce_gradients(3, 7, nullptr);
  const auto after = model->module()->parameters();
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i].grad())) << i;
  EXPECT_THROW(dp.reduce_gradients(3, 3, std::make_exception_ptr(DataError("bad example 7"))), DataError);
  EXPECT_THROW(dp.agreed([] { throw ModelError("disk full"); }), ModelError);
}

TEST(DataParallelTest, OneRankTrainingIsBitReproducible) {
  TrainBaseConfig config;
  config.epochs = 2;
  config.batch_size = 16;
  config.sigma_candidates = {0.25, 0.5, 1.0};
  config.seed = 4;
  std::vector<std::int64_t> subset(40);
  std::iota(subset.begin(), subset.end(), 100);
  std::vector<at::Tensor> runs[2];
  std::vector<double> losses[2];
  dist::SingleProcessCommunicator comm;
  for (auto& run : runs) {
    torch::manual_seed(0);
    auto model = model::make_mnist_cnn(10);
    const auto history = train_base(*model, digits(), subset, config, 1, "", {comm}, {}, Verbosity::kQuiet);
    for (const auto& p : model->module()->parameters()) run.push_back(p.detach().clone());
    losses[&run - runs].push_back(history.back().loss);
  }
  for (std::size_t i = 0; i < runs[0].size(); ++i) EXPECT_TRUE(torch::equal(runs[0][i], runs[1][i])) << i;
  EXPECT_EQ(losses[0], losses[1]);
}

}  // namespace
}  // namespace dualrs::train
