// The shard runner, the agreement on failures and the world checks, on one process
// (SingleProcessCommunicator). The same runner under mpirun -np 1/2/3 is tests/mpi/.

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/dist/agreement.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/dist/world.h"

namespace dualrs::dist {
namespace {

/// Fires after `after` checks.
class StopAfter : public StopToken {
 public:
  explicit StopAfter(int after) : left_(after) {}
  bool stop_requested() const override { return --left_ < 0; }

 private:
  mutable int left_;
};

/// Records what the runner asked the stage to do.
struct Recorder {
  std::vector<std::int64_t> computed;
  std::vector<std::int64_t> published;  // shard indices
  std::vector<std::int64_t> discarded;
  std::int64_t fail_at = -1;
  ShardCallbacks callbacks() {
    ShardCallbacks c;
    c.compute = [this](std::int64_t position) {
      if (position == fail_at) DUALRS_THROW(DataError, "example at position ", position, " is broken");
      computed.push_back(position);
    };
    c.publish = [this](const Shard& s) { published.push_back(s.index); };
    c.discard = [this](const Shard& s) { discarded.push_back(s.index); };
    return c;
  }
};

TEST(AssignShardsTest, RoundRobinGivesEveryShardToExactlyOneRank) {
  const std::vector<Shard> pending = make_shards(23, 3);  // 8 shards
  for (int size : {1, 2, 3, 5, 11}) {
    std::multiset<std::int64_t> seen;
    for (int rank = 0; rank < size; ++rank) {
      for (const Shard& s : assign_shards(pending, rank, size)) {
        seen.insert(s.index);
        EXPECT_EQ(s.index % size, rank) << "size " << size;
      }
    }
    EXPECT_EQ(seen.size(), pending.size());
    for (const Shard& s : pending) EXPECT_EQ(seen.count(s.index), 1u) << "size " << size;
  }
}

TEST(ShardRunnerTest, ComputesEveryPendingShardInOrderAndPublishesIt) {
  SingleProcessCommunicator comm;
  Recorder rec;
  const std::vector<Shard> all = make_shards(10, 3);
  const std::vector<Shard> pending = {all[0], all[2], all[3]};  // shard 1 done earlier
  ProgressMeter progress("test", 10, "ex", Verbosity::kQuiet);
  progress.resume_from(3);
  const ShardRunResult r = run_shards(comm, NeverStop(), pending, rec.callbacks(), &progress, 3, describe_standard);
  EXPECT_FALSE(r.preempted);
  EXPECT_EQ(rec.computed, (std::vector<std::int64_t>{0, 1, 2, 6, 7, 8, 9}));
  EXPECT_EQ(rec.published, (std::vector<std::int64_t>{0, 2, 3}));
  EXPECT_TRUE(rec.discarded.empty());
  EXPECT_EQ(r.published, 3);
  EXPECT_EQ(r.published_total, 3);
  EXPECT_EQ(r.abandoned_total, 0);
}

TEST(ShardRunnerTest, AStopRequestDiscardsThePartialShardAndKeepsTheFinishedOnes) {
  SingleProcessCommunicator comm;
  Recorder rec;
  // Checks happen before the first example of each shard and before every later example:
  // shard 0 (3 examples) = 3 checks, shard 1: 2 checks pass, the 3rd fires mid-shard.
  const ShardRunResult r = run_shards(comm, StopAfter(5), make_shards(9, 3), rec.callbacks(), nullptr, 0, describe_standard);
  EXPECT_TRUE(r.preempted);
  EXPECT_EQ(rec.published, (std::vector<std::int64_t>{0}));
  EXPECT_EQ(rec.discarded, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(rec.computed, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r.abandoned_total, 2);  // shards 1 and 2
}

TEST(ShardRunnerTest, AFailureIsReportedAfterTheFinishedShardsArePublished) {
  SingleProcessCommunicator comm;
  Recorder rec;
  rec.fail_at = 4;
  try {
    run_shards(comm, NeverStop(), make_shards(9, 3), rec.callbacks(), nullptr, 0, describe_standard);
    FAIL() << "expected AgreedFailure";
  } catch (const AgreedFailure& e) {
    EXPECT_EQ(e.exit_code(), 1);
    ASSERT_EQ(e.lines().size(), 1u);
    EXPECT_NE(e.lines()[0].find("example at position 4 is broken"), std::string::npos) << e.lines()[0];
    EXPECT_EQ(e.lines()[0].rfind("error: ", 0), 0u) << e.lines()[0];
  }
  EXPECT_EQ(rec.published, (std::vector<std::int64_t>{0}));
  EXPECT_EQ(rec.discarded, (std::vector<std::int64_t>{1}));
}

TEST(AgreementTest, SuccessReturnsAndAConfigErrorMapsToExitCode2) {
  SingleProcessCommunicator comm;
  EXPECT_NO_THROW(agreed(comm, describe_standard, [] {}));
  try {
    agreed(comm, describe_standard, [] { throw ConfigError("c.json", "/certify/n", "must be >= 1"); });
    FAIL();
  } catch (const AgreedFailure& e) {
    EXPECT_EQ(e.exit_code(), 2);
    ASSERT_EQ(e.lines().size(), 1u);
    EXPECT_NE(e.lines()[0].find("/certify/n"), std::string::npos);
  }
}

TEST(AgreementTest, RankTagsAreIgnoredWhenComparingMessages) {
  EXPECT_EQ(without_rank_tag("cannot open x [rank 12, config.cpp:127]"), "cannot open x [config.cpp:127]");
  EXPECT_EQ(without_rank_tag("cannot open x [config.cpp:127]"), "cannot open x [config.cpp:127]");
}

TEST(SingleProcessCommunicatorTest, CollectivesAreIdentitiesAndNoticesComeBack) {
  SingleProcessCommunicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_TRUE(comm.all_agree(true));
  EXPECT_FALSE(comm.all_agree(false));
  EXPECT_TRUE(comm.any_of(true));
  EXPECT_EQ(comm.all_reduce(std::int64_t{7}, ReduceOp::kSum), 7);
  std::string text = "abc";
  comm.broadcast(text, 0);
  EXPECT_EQ(text, "abc");
  EXPECT_EQ(comm.gather(std::string("x"), 0), (std::vector<std::string>{"x"}));
  EXPECT_FALSE(comm.poll().has_value());
  comm.post(0, NoticeKind::kProgress, 42);
  const auto n = comm.poll();
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->kind, NoticeKind::kProgress);
  EXPECT_EQ(n->value, 42);
  EXPECT_FALSE(comm.poll().has_value());
  EXPECT_THROW(comm.post(1, NoticeKind::kStop, 0), CommError);
}

TEST(WorldTest, TagsDevicesAndExpectedSize) {
  World w;
  EXPECT_EQ(w.tag(), "");
  w.rank = 3;
  w.size = 4;
  w.local_rank = 3;
  EXPECT_EQ(w.tag(), "[rank 3] ");
  EXPECT_EQ(rank_device(w, "cpu", 0), "cpu");
  EXPECT_EQ(rank_device(w, "cuda", 2), "cuda:1");
  EXPECT_EQ(rank_device(w, "cuda:0", 2), "cuda:0");
  EXPECT_THROW(rank_device(w, "cuda", 0), ConfigError);
  try {
    rank_device(w, "cuda", 0, "/denoiser/device");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/denoiser/device"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_expected_world_size(w, 4));
  EXPECT_NO_THROW(check_expected_world_size(w, 0));
  try {
    check_expected_world_size(w, 2);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--expect-world-size"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("expected 2 ranks but this job has 4"), std::string::npos) << e.what();
  }
}

TEST(WorldTest, ASingleRankWorldInAMultiTaskStepIsRefused) {
  World one;
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("PMI_SIZE");
  ::setenv("SLURM_STEP_NUM_TASKS", "1", 1);
  EXPECT_NO_THROW(check_not_silent_singleton(one));
  ::setenv("SLURM_STEP_NUM_TASKS", "4", 1);
  try {
    check_not_silent_singleton(one);
    FAIL();
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_STEP_NUM_TASKS=4"), std::string::npos) << e.what();
  }
  World four;
  four.size = 4;
  EXPECT_NO_THROW(check_not_silent_singleton(four));
  ::unsetenv("SLURM_STEP_NUM_TASKS");
}

}  // namespace
}  // namespace dualrs::dist
