// MpiCommunicator, the agreement on failures and the shard runner under a real MPI job.
// CTest runs this one binary under `mpirun -np 1`, `-np 2` and `-np 3` (label `mpi`); every
// rank runs every test and checks what it can see, so a wrong answer on any rank fails the run.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>
#include <set>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/dist/agreement.h"
#include "dualrs/dist/mpi_communicator.h"
#include "dualrs/dist/shard_runner.h"

namespace dualrs::dist {
namespace {

Communicator* g_comm = nullptr;  // set by main(): the test driver owns the MPI environment

Communicator& comm() { return *g_comm; }

TEST(MpiCommunicatorTest, RankAndSizeMatchTheLauncher) {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  ASSERT_NE(size, nullptr) << "run this test under mpirun";
  EXPECT_EQ(comm().size(), std::atoi(size));
  EXPECT_EQ(comm().rank(), std::atoi(std::getenv("OMPI_COMM_WORLD_RANK")));
}

TEST(MpiCommunicatorTest, AllReduceSumMaxMinOverInt64AndDouble) {
  const int r = comm().rank(), n = comm().size();
  std::vector<std::int64_t> v = {r, 10 * r + 1, -r};
  comm().all_reduce(v.data(), v.size(), ReduceOp::kSum);
  EXPECT_EQ(v, (std::vector<std::int64_t>{n * (n - 1) / 2, 10 * n * (n - 1) / 2 + n, -n * (n - 1) / 2}));
  std::vector<double> d = {0.5 * r, -1.0 * r};
  comm().all_reduce(d.data(), d.size(), ReduceOp::kMax);
  EXPECT_EQ(d, (std::vector<double>{0.5 * (n - 1), 0.0}));
  d = {0.5 * r, -1.0 * r};
  comm().all_reduce(d.data(), d.size(), ReduceOp::kMin);
  EXPECT_EQ(d, (std::vector<double>{0.0, -1.0 * (n - 1)}));
  EXPECT_EQ(comm().all_reduce(std::int64_t{r + 1}, ReduceOp::kMax), n);
}

TEST(MpiCommunicatorTest, AgreementIsAnAndAnyOfIsAnOr) {
  const int last = comm().size() - 1;
  EXPECT_TRUE(comm().all_agree(true));
  EXPECT_FALSE(comm().all_agree(comm().rank() != last));
  EXPECT_TRUE(comm().any_of(comm().rank() == last));
  EXPECT_FALSE(comm().any_of(false));
}

TEST(MpiCommunicatorTest, BroadcastStringsAndVectorsOfAnyLength) {
  const int root = comm().size() - 1;
  std::string text = comm().rank() == root ? std::string(100000, 'q') + "end" : "other";
  comm().broadcast(text, root);
  EXPECT_EQ(text.size(), 100003u);
  EXPECT_EQ(text.substr(text.size() - 3), "end");
  std::vector<std::int64_t> v;
  if (comm().rank() == root) v = {3, 1, 4, 1, 5};
  comm().broadcast(v, root);
  EXPECT_EQ(v, (std::vector<std::int64_t>{3, 1, 4, 1, 5}));
  std::string empty = comm().rank() == root ? "" : "not empty";
  comm().broadcast(empty, root);
  EXPECT_EQ(empty, "");
}

TEST(MpiCommunicatorTest, GatherCollectsOneValuePerRankInRankOrderOnTheRoot) {
  const int r = comm().rank();
  const auto ints = comm().gather(std::int64_t{r * r}, 0);
  const auto doubles = comm().gather(0.25 * r, 0);
  const auto texts = comm().gather(std::string(static_cast<std::size_t>(r), 'x') + std::to_string(r), 0);
  if (r != 0) {
    EXPECT_TRUE(ints.empty());
    EXPECT_TRUE(texts.empty());
    return;
  }
  ASSERT_EQ(ints.size(), static_cast<std::size_t>(comm().size()));
  for (int i = 0; i < comm().size(); ++i) {
    EXPECT_EQ(ints[static_cast<std::size_t>(i)], i * i);
    EXPECT_EQ(doubles[static_cast<std::size_t>(i)], 0.25 * i);
    EXPECT_EQ(texts[static_cast<std::size_t>(i)], std::string(static_cast<std::size_t>(i), 'x') + std::to_string(i));
  }
}

TEST(MpiCommunicatorTest, NoticesArriveInOrderFromEverySender) {
  const int r = comm().rank(), n = comm().size();
  for (int dest = 0; dest < n; ++dest) {
    if (dest == r) continue;
    for (std::int64_t k = 0; k < 3; ++k) comm().post(dest, NoticeKind::kProgress, 100 * r + k);
  }
  std::vector<std::vector<std::int64_t>> got(static_cast<std::size_t>(n));
  std::size_t received = 0;
  while (received < static_cast<std::size_t>(3 * (n - 1))) {
    if (auto notice = comm().poll()) {
      got[static_cast<std::size_t>(notice->source)].push_back(notice->value);
      ++received;
    }
  }
  comm().complete_posts();
  for (int s = 0; s < n; ++s) {
    if (s == r) continue;
    EXPECT_EQ(got[static_cast<std::size_t>(s)], (std::vector<std::int64_t>{100 * s, 100 * s + 1, 100 * s + 2}));
  }
  comm().barrier();
  EXPECT_FALSE(comm().poll().has_value());
}

TEST(MpiAgreementTest, OneFailingRankMakesEveryRankThrowAndTheRootNamesIt) {
  const int last = comm().size() - 1;
  try {
    agreed(comm(), describe_standard, [&] {
      if (comm().rank() == last) DUALRS_THROW(DataError, "bad example 17");
    });
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& e) {
    EXPECT_EQ(e.exit_code(), 1);
    if (comm().is_root()) {
      ASSERT_EQ(e.lines().size(), 1u);
      EXPECT_NE(e.lines()[0].find("bad example 17"), std::string::npos) << e.lines()[0];
      if (last != 0) {
        EXPECT_NE(e.lines()[0].find("(rank " + std::to_string(last) + ")"), std::string::npos) << e.lines()[0];
      }
    } else {
      EXPECT_TRUE(e.lines().empty());
    }
  }
}

TEST(MpiAgreementTest, TheSameErrorOnEveryRankIsReportedOnce) {
  try {
    agreed(comm(), describe_standard, [&] { throw ConfigError("c.json", "/label/n", "must be >= 1"); });
    FAIL();
  } catch (const AgreedFailure& e) {
    EXPECT_EQ(e.exit_code(), 2);
    if (comm().is_root()) {
      ASSERT_EQ(e.lines().size(), 1u) << e.lines()[0];
      if (comm().size() > 1) {
        EXPECT_NE(e.lines()[0].find("(all " + std::to_string(comm().size()) + " ranks)"), std::string::npos);
      }
    }
  }
}

/// Fires once a given number of examples have been computed on this rank.
class StopAfterExamples : public StopToken {
 public:
  StopAfterExamples(bool armed, const std::int64_t& computed, std::int64_t after)
      : armed_(armed), computed_(computed), after_(after) {}
  bool stop_requested() const override { return armed_ && computed_ >= after_; }

 private:
  bool armed_;
  const std::int64_t& computed_;
  std::int64_t after_;
};

struct RankWork {
  std::vector<std::int64_t> published;
  std::int64_t computed = 0;
  std::int64_t discarded = 0;
  ShardCallbacks callbacks() {
    ShardCallbacks c;
    c.compute = [this](std::int64_t) { ++computed; };
    c.publish = [this](const Shard& s) { published.push_back(s.index); };
    c.discard = [this](const Shard&) { ++discarded; };
    return c;
  }
};

TEST(MpiShardRunnerTest, EveryShardIsComputedOnceAcrossTheRanks) {
  const std::vector<Shard> shards = make_shards(41, 4);  // 11 shards
  RankWork work;
  ProgressMeter progress("test", 41, "ex", Verbosity::kQuiet);
  const ShardRunResult r =
      run_shards(comm(), NeverStop(), shards, work.callbacks(), comm().is_root() ? &progress : nullptr, 0, describe_standard);
  EXPECT_FALSE(r.preempted);
  EXPECT_EQ(r.published_total, 11);
  EXPECT_EQ(comm().all_reduce(work.computed, ReduceOp::kSum), 41);
  std::vector<std::int64_t> mine = work.published;
  std::int64_t count = static_cast<std::int64_t>(mine.size());
  std::vector<std::int64_t> counts = comm().gather(count, 0);
  if (comm().is_root()) {
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}), 11);
  }
  for (std::int64_t index : mine) EXPECT_EQ(index % comm().size(), comm().rank());
}

TEST(MpiShardRunnerTest, AStopOnOneRankStopsEveryRankEvenThoseWithLittleWork) {
  // 5 shards: with 3 ranks, rank 2 has one shard and finishes early; the last rank stops
  // after 3 examples, and every rank must agree on the stop without hanging.
  const int last = comm().size() - 1;
  const std::vector<Shard> shards = make_shards(50, 10);
  RankWork work;
  const StopAfterExamples stop(comm().rank() == last, work.computed, 3);
  const ShardRunResult r = run_shards(comm(), stop, shards, work.callbacks(), nullptr, 0, describe_standard);
  EXPECT_TRUE(r.preempted);
  EXPECT_GT(r.abandoned_total, 0);
  EXPECT_EQ(r.published_total + r.abandoned_total, 5);
  if (comm().rank() == last) {
    EXPECT_EQ(work.computed, 3);
    EXPECT_EQ(work.discarded, 1);
    EXPECT_TRUE(work.published.empty());
  }
}

/// Fires on the armed rank, leaving a marker file when it does.
class StopAndMark : public StopToken {
 public:
  StopAndMark(bool armed, std::string marker) : armed_(armed), marker_(std::move(marker)) {}
  bool stop_requested() const override {
    if (armed_ && !std::filesystem::exists(marker_)) std::ofstream(marker_) << "stop\n";
    return armed_;
  }

 private:
  bool armed_;
  std::string marker_;
};

TEST(MpiShardRunnerTest, ARankWithNoWorkLeftStillPassesOnItsStopSignal) {
  if (comm().size() < 2) GTEST_SKIP() << "needs a rank without work";
  std::string folder;
  if (comm().is_root()) folder = testing::TempDir() + "dualrs_mpi_stop_" + std::to_string(::getpid());
  comm().broadcast(folder, 0);
  if (comm().is_root()) std::filesystem::create_directories(folder);
  comm().barrier();
  const std::string marker = folder + "/stopped";
  // One long shard for every rank but the last, which has nothing to do and is signalled.
  const int idle = comm().size() - 1;
  std::vector<Shard> shards;
  for (int r = 0; r < idle; ++r) shards.push_back({r, 1000 * r, 1000 * (r + 1)});
  RankWork work;
  ShardCallbacks c = work.callbacks();
  c.compute = [&](std::int64_t position) {
    // Hold every working rank at its second example until the idle rank has been signalled
    // (at most a minute: without the stop being passed on, the assertions below fail).
    if (position % 1000 == 1) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!std::filesystem::exists(marker) && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    ++work.computed;
  };
  const StopAndMark stop(comm().rank() == idle, marker);
  const ShardRunResult r = run_shards(comm(), stop, shards, c, nullptr, 0, describe_standard);
  EXPECT_TRUE(r.preempted);
  EXPECT_EQ(r.abandoned_total, idle);
  if (comm().rank() != idle) {
    // Stopped before or inside its shard (which it then discarded), never finishing it.
    EXPECT_TRUE(work.published.empty());
    EXPECT_LT(work.computed, 1000);
    EXPECT_EQ(work.discarded, work.computed > 0 ? 1 : 0);
  }
  comm().barrier();
  if (comm().is_root()) std::filesystem::remove_all(folder);
}

TEST(MpiShardRunnerTest, AFailureOnOneRankIsAgreedAfterTheOthersStop) {
  const int last = comm().size() - 1;
  RankWork work;
  ShardCallbacks c = work.callbacks();
  c.compute = [&](std::int64_t position) {
    if (comm().rank() == last && work.computed == 2) DUALRS_THROW(ModelError, "model broke at position ", position);
    ++work.computed;
  };
  try {
    run_shards(comm(), NeverStop(), make_shards(60, 5), c, nullptr, 0, describe_standard);
    FAIL() << "every rank must throw";
  } catch (const AgreedFailure& e) {
    if (comm().is_root()) {
      ASSERT_EQ(e.lines().size(), 1u);
      EXPECT_NE(e.lines()[0].find("model broke at position"), std::string::npos) << e.lines()[0];
    }
  }
  // Nothing is left in flight: the next collective and notices work as usual.
  EXPECT_TRUE(comm().all_agree(true));
  EXPECT_FALSE(comm().poll().has_value());
}

}  // namespace
}  // namespace dualrs::dist

int main(int argc, char** argv) {
  dualrs::dist::MpiEnvironment env(&argc, &argv);
  dualrs::dist::g_comm = &env.communicator();
  ::testing::InitGoogleTest(&argc, argv);
  if (env.world().rank != 0) {
    // One report: the other ranks only print failures.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict decides the exit code of every rank.
  const bool ok = env.communicator().all_agree(failed == 0);
  return ok ? 0 : 1;
}
