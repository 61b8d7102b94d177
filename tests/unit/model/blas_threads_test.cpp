// OpenBLAS's own thread pool is limited to one thread unless the user chose a count.

#include "dualrs/model/blas_threads.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace dualrs::model {
namespace {

TEST(BlasThreadsTest, SetsOpenBlasThreadsUnlessTheUserChose) {
  unsetenv("OPENBLAS_NUM_THREADS");
  unsetenv("GOTO_NUM_THREADS");
  const BlasThreads two = limit_openblas_threads(2);
  if (!two.openblas) {
    EXPECT_EQ(two.threads, 0);
    GTEST_SKIP() << "this LibTorch does not use OpenBLAS";
  }
  EXPECT_FALSE(two.user_set);
  EXPECT_EQ(two.threads, 2);
  EXPECT_EQ(limit_openblas_threads(1).threads, 1);
  EXPECT_EQ(limit_openblas_threads(0).threads, 1);  // at least one

  setenv("OPENBLAS_NUM_THREADS", "2", 1);
  const BlasThreads kept = limit_openblas_threads(1);
  EXPECT_TRUE(kept.user_set);
  EXPECT_EQ(kept.threads, 1);  // the count in force is left alone
  unsetenv("OPENBLAS_NUM_THREADS");
}

}  // namespace
}  // namespace dualrs::model
