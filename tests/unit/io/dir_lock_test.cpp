// The output folder's lock: one job at a time (or disjoint shard subsets), the holder named,
// stale locks taken over.

#include "dualrs/io/dir_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "io_test_util.h"

namespace dualrs::io {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::io_error_message;
using testing::TempDir;

std::string host() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

/// The pid of a child that has exited (and been reaped): no process has it now.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

void write_holder(const std::string& path, const nlohmann::json& holder) { testing::write_bytes(path, holder.dump()); }

TEST(DirectoryLockTest, TheLockNamesItsHolderAndIsReleased) {
  TempDir dir;
  {
    DirectoryLock lock = DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, nullptr);
    const auto holder = nlohmann::json::parse(testing::read_bytes(dir.file("dualrs.lock")));
    EXPECT_EQ(holder["pid"], static_cast<long>(::getpid()));
    EXPECT_EQ(holder["host"], host());
    EXPECT_EQ(holder["scope"], "all");
    const std::string message =
        io_error_message([&] { DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, nullptr); });
    EXPECT_PRED2(contains, message, "locked by another job");
    EXPECT_PRED2(contains, message, "pid " + std::to_string(::getpid()));
    EXPECT_PRED2(contains, message, "host " + host());
    EXPECT_PRED2(contains, message, "dualrs label");
  }
  EXPECT_FALSE(fs::exists(dir.file("dualrs.lock")));
}

TEST(DirectoryLockTest, ALockOfADeadProcessOnThisHostIsTakenOver) {
  TempDir dir;
  const long pid = dead_pid();
  write_holder(dir.file("dualrs.lock"), {{"host", host()}, {"pid", pid}, {"command", "dualrs certify"}, {"scope", "all"}});
  std::string notice;
  DirectoryLock lock = DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, &notice);
  EXPECT_PRED2(contains, notice, "took over the stale lock");
  EXPECT_PRED2(contains, notice, "process " + std::to_string(pid));
  EXPECT_EQ(nlohmann::json::parse(testing::read_bytes(dir.file("dualrs.lock")))["pid"], static_cast<long>(::getpid()));
}

TEST(DirectoryLockTest, ALiveProcessOnAnotherHostIsNeverAssumedDead) {
  TempDir dir;
  write_holder(dir.file("dualrs.lock"), {{"host", "elsewhere"}, {"pid", dead_pid()}, {"slurm_job_id", "77"}});
  const std::string message =
      io_error_message([&] { DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, nullptr); });
  EXPECT_PRED2(contains, message, "host elsewhere");
  EXPECT_PRED2(contains, message, "Slurm job 77");
}

TEST(DirectoryLockTest, AnEarlierRunOfARequeuedSlurmJobLeavesAStaleLock) {
  TempDir dir;
  write_holder(dir.file("dualrs.lock"),
               {{"host", "node17"}, {"pid", 4242}, {"slurm_job_id", "9001"}, {"slurm_restart_count", 0}});
  ::setenv("SLURM_JOB_ID", "9001", 1);
  ::setenv("SLURM_RESTART_COUNT", "1", 1);
  std::string notice;
  EXPECT_NO_THROW(DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, &notice));
  EXPECT_PRED2(contains, notice, "requeued Slurm job 9001");
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_RESTART_COUNT");
}

TEST(DirectoryLockTest, DisjointShardSubsetsShareAFolderOverlappingOnesDoNot) {
  TempDir dir;
  DirectoryLock even = DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{0, 2}, nullptr);
  DirectoryLock odd = DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{1, 2}, nullptr);
  EXPECT_TRUE(fs::exists(dir.file("dualrs.subset-0-of-2.lock")));
  EXPECT_TRUE(fs::exists(dir.file("dualrs.subset-1-of-2.lock")));
  // 3 mod 4 shares shards with 1 mod 2; a whole run shares with everything.
  EXPECT_PRED2(contains, io_error_message([&] { DirectoryLock::acquire(dir.path(), "x", ShardSubset{3, 4}, nullptr); }),
               "overlap");
  EXPECT_PRED2(contains, io_error_message([&] { DirectoryLock::acquire(dir.path(), "x", ShardSubset{}, nullptr); }),
               "overlap");
  EXPECT_FALSE(fs::exists(dir.file("dualrs.subset-3-of-4.lock")));
  EXPECT_FALSE(fs::exists(dir.file("dualrs.lock")));
  odd.release();
  EXPECT_NO_THROW(DirectoryLock::acquire(dir.path(), "x", ShardSubset{3, 4}, nullptr));
}

TEST(DirectoryLockTest, ReleaseLeavesALockThatIsNoLongerOurs) {
  TempDir dir;
  DirectoryLock lock = DirectoryLock::acquire(dir.path(), "dualrs label", ShardSubset{}, nullptr);
  write_holder(dir.file("dualrs.lock"), {{"host", host()}, {"pid", 1}, {"command", "a newer job"}});
  lock.release();
  EXPECT_TRUE(fs::exists(dir.file("dualrs.lock")));
}

}  // namespace
}  // namespace dualrs::io
