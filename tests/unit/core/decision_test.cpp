// Cohen et al.'s CERTIFY / PREDICT decision rules on hand-made counts.

#include "dualrs/core/decision.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs {
namespace {

TEST(DecisionTest, ArgmaxTiesGoToLowestIndex) {
  EXPECT_EQ(argmax_lowest({3, 7, 7, 1}), 1);
  EXPECT_EQ(argmax_lowest({5, 5, 5}), 0);
  EXPECT_EQ(argmax_lowest({0, 0, 9}), 2);
  EXPECT_THROW(argmax_lowest({}), DataError);
}

TEST(DecisionTest, CertifySelectsFromSelectionCountsNotEstimation) {
  // Selection says class 2; estimation votes mostly class 0. CERTIFY must bound p for
  // class 2 (and abstain), never switch to the estimation's favourite.
  const Certificate c = certify_from_counts({1, 0, 99}, {990, 0, 10}, 0.5, 0.001);
  EXPECT_EQ(c.selected, 2);
  EXPECT_EQ(c.n_a, 10);
  EXPECT_TRUE(c.abstained());
  EXPECT_EQ(c.radius, 0.0);
}

TEST(DecisionTest, CertifyRadiusIsSigmaTimesPpfOfLowerBound) {
  const Certificate c = certify_from_counts({0, 100}, {10, 990}, 0.25, 0.001);
  ASSERT_FALSE(c.abstained());
  EXPECT_EQ(c.prediction, 1);
  const double p = stats::clopper_pearson_lower(990, 1000, 0.001);
  // Rounding-safe: both values are lowered by stats::kRoundingUlps (docs/method.md §15).
  EXPECT_EQ(c.p_a_lower, stats::toward_zero(p));
  EXPECT_EQ(c.radius, stats::toward_zero(0.25 * stats::norm_ppf(stats::toward_zero(p))));
  EXPECT_NEAR(c.radius, 0.25 * stats::norm_ppf(p), 1e-13);
}

TEST(DecisionTest, CertifyAbstainsBelowHalf) {
  // 520/1000 gives a lower bound below 0.5 at alpha = 0.001.
  EXPECT_TRUE(certify_from_counts({0, 1}, {480, 520}, 1.0, 0.001).abstained());
  EXPECT_TRUE(certify_from_counts({1, 0}, {0, 1000}, 1.0, 0.001).abstained());  // n_a = 0
}

TEST(DecisionTest, NonFiniteCopiesCountAsTrials) {
  const Certificate all = certify_from_counts({0, 1}, {0, 1000}, 1.0, 0.001);
  const Certificate fewer = certify_from_counts({0, 1}, {0, 1000}, 1.0, 0.001, 1100);
  EXPECT_LT(fewer.p_a_lower, all.p_a_lower);
  EXPECT_THROW(certify_from_counts({0, 1}, {0, 1000}, 1.0, 0.001, 999), DataError);
}

TEST(DecisionTest, RadiusRejectsBadSigma) {
  EXPECT_THROW(radius_from_count(9, 10, 0.0, 0.001), DataError);
  EXPECT_THROW(radius_from_count(9, 10, -1.0, 0.001), DataError);
}

TEST(DecisionTest, PredictTopTwoAndTies) {
  const Prediction p = predict_from_counts({10, 980, 10}, 0.001);
  EXPECT_EQ(p.prediction, 1);
  EXPECT_EQ(p.count1, 980);
  EXPECT_EQ(p.count2, 10);
  // A tie between the top two always abstains (p-value 1).
  const Prediction tie = predict_from_counts({500, 500, 0}, 0.001);
  EXPECT_TRUE(tie.abstained());
  EXPECT_EQ(tie.p_value, 1.0);
  EXPECT_THROW(predict_from_counts({0, 0}, 0.001), DataError);
  EXPECT_THROW(predict_from_counts({5}, 0.001), DataError);
}

}  // namespace
}  // namespace dualrs
