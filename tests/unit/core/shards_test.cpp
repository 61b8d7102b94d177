// Shard ranges and the --shard-subset syntax (core/shards.h).

#include "dualrs/core/shards.h"

#include <gtest/gtest.h>

#include "dualrs/core/error.h"

namespace dualrs {
namespace {

TEST(ShardsTest, FixedRangesPartitionTheSelection) {
  const std::vector<Shard> shards = make_shards(10, 4);
  EXPECT_EQ(shards, (std::vector<Shard>{{0, 0, 4}, {1, 4, 8}, {2, 8, 10}}));
  EXPECT_EQ(make_shards(8, 4).size(), 2u);
  EXPECT_EQ(make_shards(0, 4), (std::vector<Shard>{{0, 0, 0}}));
  EXPECT_EQ(make_shards(3, 100), (std::vector<Shard>{{0, 0, 3}}));
  EXPECT_THROW(make_shards(10, 0), ConfigError);
}

TEST(ShardsTest, SubsetsAreParsedAndRejectedWithTheFlagNamed) {
  const ShardSubset s = parse_shard_subset("3/16");
  EXPECT_EQ(s.index, 3);
  EXPECT_EQ(s.count, 16);
  EXPECT_TRUE(s.contains({19, 0, 1}));
  EXPECT_FALSE(s.contains({18, 0, 1}));
  EXPECT_EQ(s.text(), "3/16");
  EXPECT_TRUE(ShardSubset{}.all());
  for (const char* bad : {"16/16", "-1/4", "1/0", "1", "a/b", "1/2x", ""}) {
    try {
      parse_shard_subset(bad);
      ADD_FAILURE() << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--shard-subset"), std::string::npos) << e.what();
    }
  }
}

TEST(ShardsTest, IndexListsAreWrittenAsRanges) {
  EXPECT_EQ(describe_shard_indices({7, 1, 3, 2, 9, 8}), "1-3, 7-9");
  EXPECT_EQ(describe_shard_indices({4}), "4");
  EXPECT_EQ(describe_shard_indices({}), "");
}

}  // namespace
}  // namespace dualrs
