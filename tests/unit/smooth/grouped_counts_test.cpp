// Forwards shared by several examples (docs/method.md §14): sample_counts_grouped keeps every
// example's votes apart, cuts the concatenated copies into forwards of batch_size rows, and
// draws each copy's noise from its own (example, σ, sample) counter; label_examples and
// estimate_sigma_examples agree with their one-example forms; ExampleGroups never lets a
// group cross a shard.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/pipeline/example_groups.h"
#include "dualrs/smooth/dual.h"
#include "dualrs/smooth/sample_counts.h"
#include "test_models.h"

namespace dualrs::smooth {
namespace {

Example example(std::int64_t idx, std::int64_t label, float value) { return {idx, label, torch::full({1, 4, 4}, value)}; }

TEST(GroupedCountsTest, VotesMatchOneExampleAtATimeAndForwardsAreFull) {
  const NoiseSource noise(7, NoiseStage::kLabel);
  const std::vector<Example> examples = {example(3, 0, 0.5f), example(11, 1, 0.6f), example(12, 0, 0.4f)};
  const std::vector<std::int64_t> counts = {50, 0, 37};
  CoinModel alone(2), grouped(2);
  std::vector<GroupedRequest> requests;
  std::vector<SampleCounts> expected;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const NoiseRequest q{examples[i].idx, 1, 0.5, 0, counts[i], 1000};
    requests.push_back({examples[i].image, q});
    expected.push_back(sample_counts(alone, examples[i].image, noise, q));
  }
  const std::vector<SampleCounts> got = sample_counts_grouped(grouped, requests, noise, 16);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].votes, expected[i].votes) << i;
    EXPECT_EQ(got[i].total(), counts[i]) << i;
  }
  // 87 copies in forwards of 16: five full ones and the rest (one forward spans examples 3 and 12).
  EXPECT_EQ(grouped.rows, (std::vector<std::int64_t>{16, 16, 16, 16, 16, 7}));
  // The copies really differ by example: pixel 0.6 votes 1 more often than pixel 0.4.
  EXPECT_GT(got[0].votes[1] + got[2].votes[0], 0);
}

TEST(GroupedCountsTest, OneRequestIsSampleCountsExactly) {
  const NoiseSource noise(1, NoiseStage::kCertifyEstimation);
  CoinModel a(2), b(2);
  const Example ex = example(5, 0, 0.5f);
  const NoiseRequest q{5, 0, 0.25, 100, 250, 64};
  const SampleCounts one = sample_counts(a, ex.image, noise, q);
  const SampleCounts grouped = sample_counts_grouped(b, {{ex.image, q}}, noise, 64).front();
  EXPECT_EQ(one.votes, grouped.votes);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.rows, (std::vector<std::int64_t>{64, 64, 64, 58}));
}

TEST(GroupedCountsTest, BadImagesAreNamedByExample) {
  const NoiseSource noise(1, NoiseStage::kLabel);
  CoinModel m(2);
  const at::Tensor nan = torch::full({1, 4, 4}, NAN);
  try {
    sample_counts_grouped(m, {{torch::zeros({1, 4, 4}), {1, 0, 0.5, 0, 4, 4}}, {nan, {9, 0, 0.5, 0, 4, 4}}}, noise, 8);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 9"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sample_counts_grouped(m, {{torch::zeros({1, 4, 4}), {1, 0, 0.5, 0, 4, 4}},
                                         {torch::zeros({1, 5, 4}), {2, 0, 0.5, 0, 4, 4}}},
                                     noise, 8),
               DataError);
  EXPECT_THROW(sample_counts_grouped(m, {{torch::zeros({1, 4, 4}), {1, 0, 0.5, 0, 4, 4}}}, noise, 0), ConfigError);
}

TEST(GroupedCountsTest, LabelAndSigmaGroupsAgreeWithOneExampleForms) {
  PerSigmaSettings ps;
  ps.sigma_candidates = {0.25, 0.5, 1.0};
  ps.n = 40;
  ps.batch_size = 100;  // 2.5 examples per forward
  ps.seed = 4;
  const std::vector<Example> examples = {example(0, 0, 0.3f), example(1, 1, 0.7f), example(2, 1, 0.55f),
                                         example(3, 0, 0.5f)};
  CoinModel model(2);
  const ClassifierPool pool(3, &model);
  const std::vector<LabelRow> rows = label_examples(pool, examples, ps, 0.01);
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const LabelRow one = label_example(pool, examples[i], ps, 0.01);
    EXPECT_EQ(rows[i].top_count, one.top_count) << i;
    EXPECT_EQ(rows[i].radii, one.radii) << i;
  }
  CoinModel estimator(3);
  const std::vector<SigmaVote> votes = estimate_sigma_examples(estimator, examples, 1.0, 16, 40, 2, 3);
  for (std::size_t i = 0; i < examples.size(); ++i) {
    EXPECT_EQ(votes[i].votes, estimate_sigma_example(estimator, examples[i], 1.0, 16, 40, 2, 3).votes) << i;
  }
  EXPECT_EQ(estimator.rows.front(), 40);  // the grouped call filled its forwards
}

TEST(ExampleGroupsTest, GroupsStartAtShardsAndNeverCrossThem) {
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  pipeline::ExampleGroups<std::int64_t> groups(23, 10, 4, [&](std::int64_t begin, std::int64_t end) {
    calls.emplace_back(begin, end);
    std::vector<std::int64_t> out;
    for (std::int64_t p = begin; p < end; ++p) out.push_back(100 + p);
    return out;
  });
  for (std::int64_t p = 0; p < 23; ++p) EXPECT_EQ(groups.at(p), 100 + p);
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected = {{0, 4},   {4, 8},   {8, 10}, {10, 14},
                                                                       {14, 18}, {18, 20}, {20, 23}};
  EXPECT_EQ(calls, expected);
  // A resumed run that starts at shard 2 forms the same groups there.
  calls.clear();
  groups.reset();
  EXPECT_EQ(groups.at(20), 120);
  EXPECT_EQ(groups.at(22), 122);
  EXPECT_EQ(calls, (std::vector<std::pair<std::int64_t, std::int64_t>>{{20, 23}}));
  EXPECT_EQ(pipeline::examples_per_forward(1000, 100), 10);
  EXPECT_EQ(pipeline::examples_per_forward(50, 100), 1);
  EXPECT_EQ(pipeline::examples_per_forward(1000, 0), 1);
}

}  // namespace
}  // namespace dualrs::smooth
