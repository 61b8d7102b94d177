// Certified-accuracy tables and the sigma analyses on hand-made results.

#include "dualrs/report/analyses.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dualrs/core/error.h"
#include "report_test_util.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::report {
namespace {

using testing::rec;

io::CertifyResults global(double sigma, std::vector<CertifyRecord> records) {
  io::CertifyResults r;
  r.info.method = "global_sigma_" + std::to_string(sigma);
  r.info.sigma = sigma;
  r.records = std::move(records);
  return r;
}

TEST(CertifiedAccuracyTest, InclusiveAndStrictConventions) {
  const std::vector<CertifyRecord> rs = {rec(0, 1, 1, 0.5), rec(1, 2, 2, 0.25), rec(2, 3, 4, 0.9), rec(3, 1, kAbstain, 0)};
  EXPECT_DOUBLE_EQ(certified_accuracy(rs, 0.25, Convention::kInclusive), 0.5);
  EXPECT_DOUBLE_EQ(certified_accuracy(rs, 0.25, Convention::kStrict), 0.25);
  EXPECT_DOUBLE_EQ(certified_accuracy(rs, 0.0, Convention::kInclusive), 0.5);
  EXPECT_DOUBLE_EQ(certified_accuracy(rs, 1.0, Convention::kInclusive), 0.0);
  EXPECT_DOUBLE_EQ(average_certified_radius(rs), (0.5 + 0.25) / 4);  // wrong and abstained count 0
}

TEST(SigmaAnalysisTest, OptimalSigmaAndRadiusGaps) {
  // Three examples, Σ = {0.25, 1.0}.
  const auto g1 = global(0.25, {rec(0, 1, 1, 0.4), rec(1, 2, 2, 0.2), rec(2, 3, 5, 0.9)});
  const auto g2 = global(1.0, {rec(0, 1, 1, 0.4), rec(1, 2, 2, 0.7), rec(2, 3, 5, 0.3)});
  io::CertifyResults dual;
  dual.info.method = "dual_rs";
  dual.info.sigma_candidates = {0.25, 1.0};
  dual.info.sigma_e = 1.0;
  CertifyRecord d0 = rec(0, 1, 1, 0.3);
  d0.sigma_index = 1;
  d0.r_sigma = 0.3;
  d0.r_c = 0.35;
  CertifyRecord d1 = rec(1, 2, 2, 0.1);
  d1.sigma_index = 0;
  d1.r_sigma = 0.6;
  d1.r_c = 0.1;
  CertifyRecord d2 = rec(2, 3, kAbstain, 0);  // estimator abstained
  dual.records = {d0, d1, d2};
  const SigmaAnalysis a = analyze_sigma_choice({g1, g2}, dual);
  EXPECT_EQ(a.optimal_index, (std::vector<std::int64_t>{0, 1, -1}));  // tie -> smaller sigma; wrong -> none
  EXPECT_EQ(a.chosen_index, (std::vector<std::int64_t>{1, 0, kAbstain}));
  ASSERT_EQ(a.delta_r_c.size(), 2u);
  EXPECT_DOUBLE_EQ(a.delta_r_c[0], 0.4 - 0.35);
  EXPECT_DOUBLE_EQ(a.delta_r_c[1], 0.7 - 0.1);
  ASSERT_EQ(a.delta_r_sigma.size(), 2u);
  EXPECT_DOUBLE_EQ(a.delta_r_sigma[0], 0.3 - 0.35);
  EXPECT_DOUBLE_EQ(a.delta_r_sigma[1], 0.6 - 0.1);
  const std::string dist = sigma_distribution_csv(a);
  EXPECT_NE(dist.find("0.25,1,"), std::string::npos) << dist;
  EXPECT_NE(dist.find("none,1,"), std::string::npos) << dist;
  const std::string confusion = confusion_csv(a);
  EXPECT_NE(confusion.find("0.25,0,1,0"), std::string::npos) << confusion;
}

TEST(SigmaAnalysisTest, MismatchedFilesAreRefused) {
  const auto g1 = global(0.25, {rec(0, 1, 1, 0.4)});
  io::CertifyResults dual;
  dual.info.sigma_candidates = {0.25, 1.0};
  dual.info.sigma_e = 1.0;
  dual.records = {rec(0, 1, 1, 0.3)};
  EXPECT_THROW(analyze_sigma_choice({g1}, dual), DataError);  // no file for sigma 1.0
  const auto g2 = global(1.0, {rec(9, 1, 1, 0.4)});
  EXPECT_THROW(analyze_sigma_choice({g1, g2}, dual), DataError);  // other examples
}

TEST(SigmaAnalysisTest, QuantilesInterpolateLikeNumpy) {
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.1), 1.3);
  EXPECT_DOUBLE_EQ(quantile({5}, 0.9), 5);
  EXPECT_TRUE(std::isnan(quantile({}, 0.5)));
}

}  // namespace
}  // namespace dualrs::report
