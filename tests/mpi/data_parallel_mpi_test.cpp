// Float all-reduce and data-parallel training's collectives under a real MPI job. CTest runs
// this binary under `mpirun -np 1`, `-np 2` and `-np 3` (label `mpi`); every rank checks what
// it sees, so a wrong answer on any rank fails the run.

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/dist/agreement.h"
#include "dualrs/dist/mpi_communicator.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/train/data_parallel.h"

namespace dualrs::train {
namespace {

dist::Communicator* g_comm = nullptr;  // set by main(): the test driver owns the MPI environment

dist::Communicator& comm() { return *g_comm; }

/// Parameters of several sizes, so that small buckets split them in a known way.
struct OddSizesImpl : torch::nn::Module {
  OddSizesImpl() {
    for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<std::int64_t>>>{
             {"a", {3}}, {"b", {1000}}, {"c", {7, 11}}, {"d", {1}}, {"e", {300}}, {"f", {2, 2, 2}}}) {
      register_parameter(name, torch::zeros(shape));
    }
  }
};
TORCH_MODULE(OddSizes);

/// Every byte of the module's parameters and buffers, as text (gathered and compared on rank 0).
std::string state_bytes(torch::nn::Module& module) {
  std::string out;
  auto add = [&](const at::Tensor& t) {
    const at::Tensor c = t.detach().contiguous();
    out.append(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()) * c.element_size());
  };
  for (const auto& p : module.parameters()) add(p);
  for (const auto& b : module.buffers()) add(b);
  return out;
}

/// True on every rank when every rank's `text` equals rank 0's.
bool same_on_every_rank(const std::string& text) {
  const auto all = comm().gather(text, 0);
  bool same = true;
  for (const auto& t : all) same = same && t == all.front();
  std::int64_t flag = comm().is_root() ? (same ? 1 : 0) : 1;
  return comm().all_reduce(flag, dist::ReduceOp::kMin) == 1;
}

TEST(FloatAllReduceTest, SumAndMeanOverRanks) {
  const int r = comm().rank(), n = comm().size();
  std::vector<float> v = {r + 0.5f, -2.0f * r, 1.0f};
  comm().all_reduce(v.data(), v.size(), dist::ReduceOp::kSum);
  EXPECT_EQ(v, (std::vector<float>{n * (n - 1) / 2.0f + 0.5f * n, -1.0f * n * (n - 1), 1.0f * n}));
  v = {r + 0.5f, -2.0f * r, 1.0f};
  comm().all_reduce(v.data(), v.size(), dist::ReduceOp::kMean);
  EXPECT_FLOAT_EQ(v[0], (n - 1) / 2.0f + 0.5f);
  EXPECT_FLOAT_EQ(v[1], -1.0f * (n - 1));
  EXPECT_EQ(v[2], 1.0f);
  v = {1.0f * r, -1.0f * r};
  comm().all_reduce(v.data(), v.size(), dist::ReduceOp::kMax);
  EXPECT_EQ(v, (std::vector<float>{n - 1.0f, 0.0f}));
}

TEST(FloatAllReduceTest, LargeBuffersArriveWhole) {
  const int r = comm().rank(), n = comm().size();
  std::vector<float> v(3'000'001);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) + r;
  comm().all_reduce(v.data(), v.size(), dist::ReduceOp::kSum);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < v.size(); ++i) wrong += v[i] != static_cast<float>(n * (i % 7) + n * (n - 1) / 2);
  EXPECT_EQ(wrong, 0u);
}

TEST(FloatAllReduceTest, MeanIsRefusedForIntegerAndDoubleBuffers) {
  std::int64_t i = 1;
  double d = 1;
  EXPECT_THROW(comm().all_reduce(&i, 1, dist::ReduceOp::kMean), CommError);
  EXPECT_THROW(comm().all_reduce(&d, 1, dist::ReduceOp::kMean), CommError);
}

TEST(DataParallelMpiTest, GradientsAreTheBatchWeightedMeanInFixedBuckets) {
  const int r = comm().rank(), n = comm().size();
  OddSizes module;
  // 1 KiB buckets (256 floats): a | b | c d | e | f, as {3}, {1000}, {77, 1}, {300}, {8}.
  DataParallel dp(*module, {comm()}, 1024);
  const std::vector<GradientBucket> expected = {{0, 1, 3}, {1, 1, 1000}, {2, 2, 78}, {4, 1, 300}, {5, 1, 8}};
  EXPECT_EQ(dp.buckets(), expected);
  std::string plan;
  for (const auto& b : dp.buckets()) plan += std::to_string(b.first) + ":" + std::to_string(b.count) + ",";
  EXPECT_TRUE(same_on_every_rank(plan));
  // Rank q trains on q + 1 examples (the last rank on none when there are several), and its
  // gradient of parameter k, element e is g(q, k, e) = (q + 1)·(k + 1) + e / 1000.
  auto local = [&](int q) { return n > 1 && q == n - 1 ? 0 : q + 1; };
  std::int64_t global = 0;
  for (int q = 0; q < n; ++q) global += local(q);
  auto params = module->parameters();
  if (local(r) > 0) {
    for (std::size_t k = 0; k < params.size(); ++k) {
      const at::Tensor e = torch::arange(params[k].numel(), torch::kFloat32).view(params[k].sizes());
      params[k].mutable_grad() = (r + 1.0) * (k + 1.0) + e / 1000.0;
    }
  }
  dp.reduce_gradients(local(r), global, nullptr);
  for (std::size_t k = 0; k < params.size(); ++k) {
    const at::Tensor e = torch::arange(params[k].numel(), torch::kFloat64).view(params[k].sizes());
    at::Tensor want = torch::zeros_like(e);
    for (int q = 0; q < n; ++q) {
      if (local(q) > 0) want += (static_cast<double>(local(q)) / global) * ((q + 1.0) * (k + 1.0) + e / 1000.0);
    }
    ASSERT_TRUE(params[k].grad().defined()) << k;
    EXPECT_TRUE(torch::allclose(params[k].grad().to(torch::kFloat64), want, 1e-6, 1e-6)) << "parameter " << k;
  }
}

TEST(DataParallelMpiTest, ParametersAndBuffersAreRankZerosAfterTheBroadcast) {
  // A ResNet has BatchNorm buffers (running statistics, an int64 step count).
  torch::manual_seed(100 + comm().rank());
  auto model = model::make_native_model("cifar_resnet20", 10);
  torch::nn::Module& module = *model->module();
  {
    torch::NoGradGuard no_grad;
    for (auto& b : module.buffers()) b.fill_(comm().rank() + 2);
  }
  const std::string before = state_bytes(module);
  std::string root_before = before;
  comm().broadcast(root_before, 0);
  if (comm().size() > 1) {
    EXPECT_FALSE(same_on_every_rank(before));  // the seeds differ
  }
  DataParallel dp(module, {comm()});
  dp.broadcast_parameters_and_buffers();
  const std::string after = state_bytes(module);
  EXPECT_TRUE(same_on_every_rank(after));
  EXPECT_EQ(after, root_before);
}

TEST(DataParallelMpiTest, ParametersAreIdenticalAfterResumingFromACheckpoint) {
  // Rank 0 saves; every rank loads the same file (as train-estimator does when resuming) into
  // a model of its own seed; a rank that loaded something else is overruled by the broadcast.
  std::string path;
  if (comm().is_root()) {
    path = (std::filesystem::temp_directory_path() / ("dualrs_dp_resume_" + std::to_string(::getpid()) + ".pt")).string();
    torch::manual_seed(7);
    auto saved = model::make_mnist_cnn(10);
    model::save_checkpoint(*saved, path);
  }
  comm().broadcast(path, 0);
  torch::manual_seed(200 + comm().rank());
  auto model = model::make_mnist_cnn(10);
  model::load_checkpoint(*model, path);
  const std::string loaded = state_bytes(*model->module());
  EXPECT_TRUE(same_on_every_rank(loaded));
  if (comm().rank() == comm().size() - 1 && comm().size() > 1) {
    torch::NoGradGuard no_grad;
    model->module()->parameters().front().add_(1.0);
  }
  DataParallel dp(*model->module(), {comm()});
  dp.broadcast_parameters_and_buffers();
  EXPECT_EQ(state_bytes(*model->module()), loaded);
  comm().barrier();
  if (comm().is_root()) std::filesystem::remove(path);
}

TEST(DataParallelMpiTest, AFailureInAStepOnOneRankFailsEveryRank) {
  torch::manual_seed(3);
  auto model = model::make_mnist_cnn(10);
  DataParallel dp(*model->module(), {comm()});
  const int last = comm().size() - 1;
  const std::exception_ptr error =
      comm().rank() == last ? std::make_exception_ptr(DataError("example 17 is unreadable")) : nullptr;
  if (comm().size() == 1) {
    EXPECT_THROW(dp.reduce_gradients(2, 2, error), DataError);
    return;
  }
  try {
    dp.reduce_gradients(2, 2 * comm().size(), error);
    ADD_FAILURE() << "reduce_gradients returned on rank " << comm().rank();
  } catch (const dist::AgreedFailure& failure) {
    if (comm().is_root()) {
      ASSERT_EQ(failure.lines().size(), 1u);
      EXPECT_NE(failure.lines()[0].find("example 17 is unreadable"), std::string::npos) << failure.lines()[0];
      EXPECT_NE(failure.lines()[0].find("(rank " + std::to_string(last) + ")"), std::string::npos) << failure.lines()[0];
    }
  }
  // The next collective still matches on every rank.
  EXPECT_EQ(comm().all_reduce(std::int64_t{1}, dist::ReduceOp::kSum), comm().size());
}

TEST(DataParallelMpiTest, DifferentModelsOnTheRanksAreRefusedOnEveryRank) {
  if (comm().size() == 1) GTEST_SKIP() << "needs two ranks";
  auto model = model::make_mnist_cnn(comm().is_root() ? 10 : 3);
  EXPECT_THROW(DataParallel(*model->module(), {comm()}), CommError);
  EXPECT_EQ(comm().all_reduce(std::int64_t{1}, dist::ReduceOp::kSum), comm().size());
}

}  // namespace
}  // namespace dualrs::train

int main(int argc, char** argv) {
  dualrs::dist::MpiEnvironment env(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  torch::set_num_threads(1);
  dualrs::train::g_comm = &env.communicator();
  // Only rank 0 prints GoogleTest's report; every rank's result decides the exit code.
  if (env.world().rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  const std::int64_t any = env.communicator().all_reduce(std::int64_t{failed != 0}, dualrs::dist::ReduceOp::kMax);
  return any != 0 ? 1 : 0;
}
