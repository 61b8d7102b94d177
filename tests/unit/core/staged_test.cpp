// Staged sequential CERTIFY's schedule, thresholds and stop rule (docs/method.md §16), and the
// rounding-safe radius (§15), against SciPy (tests/reference/make_grid_reference.py).

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dualrs/core/decision.h"
#include "dualrs/core/error.h"
#include "dualrs/core/staged.h"
#include "dualrs/core/stats.h"

namespace dualrs {
namespace {

TEST(LookSchedule, GeometricLooksEndAtNAndSpendAtMostAlpha) {
  const LookSchedule s = look_schedule(StagedConfig{}, 10000, 0.001);
  EXPECT_EQ(s.n, (std::vector<std::int64_t>{79, 157, 313, 625, 1250, 2500, 5000, 10000}));
  double total = 0;
  for (const double a : s.alpha) total += a;
  EXPECT_LE(total, 0.001 * (1 + 1e-12));
  EXPECT_DOUBLE_EQ(s.alpha.back(), 0.0005);
  EXPECT_DOUBLE_EQ(s.alpha.front(), 0.0005 / 7);
  // Small n: duplicate looks are dropped (⌈5/8⌉ = 1, ⌈5/4⌉ = 2, ⌈5/2⌉ = 3, 5).
  StagedConfig four;
  four.num_looks = 4;
  EXPECT_EQ(look_schedule(four, 5, 0.1).n, (std::vector<std::int64_t>{1, 2, 3, 5}));
  four.num_looks = 3;
  EXPECT_THROW(look_schedule(four, 2, 0.1), ConfigError);  // more looks than copies
  EXPECT_EQ(single_look(100, 0.01).alpha, std::vector<double>{0.01});
}

TEST(LookSchedule, ExplicitLooksGetNAppendedAndBadSchedulesAreRefused) {
  StagedConfig c;
  c.looks = {100, 400};
  EXPECT_EQ(look_schedule(c, 1000, 0.01).n, (std::vector<std::int64_t>{100, 400, 1000}));
  c.looks = {100, 2000};
  EXPECT_THROW(look_schedule(c, 1000, 0.01), ConfigError);  // beyond n
  c.looks = {400, 100};
  EXPECT_THROW(look_schedule(c, 1000, 0.01), ConfigError);  // not increasing
  c.looks = {};
  c.last_look_alpha_share = 1.5;
  EXPECT_THROW(look_schedule(c, 1000, 0.01), ConfigError);  // alphas would sum past alpha
  c.last_look_alpha_share = 0.5;
  c.num_looks = 0;
  EXPECT_THROW(look_schedule(c, 1000, 0.01), ConfigError);
}

TEST(StagedThresholds, MatchScipyAndTheReportedRadius) {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/grid_reference.json");
  const nlohmann::json ref = nlohmann::json::parse(in).at("staged");
  for (const auto& row : ref) {
    StagedConfig c;
    c.num_looks = row.at("num_looks").get<std::int64_t>();
    const LookSchedule s = look_schedule(c, row.at("n").get<std::int64_t>(), row.at("alpha").get<double>());
    std::vector<double> radii{0.0};
    for (const auto& r : row.at("radii")) radii.push_back(r.get<double>());
    const double sigma = row.at("sigma").get<double>();
    const StagedThresholds t(s, sigma, radii);
    ASSERT_EQ(s.size(), row.at("looks").size());
    for (std::size_t j = 0; j < s.size(); ++j) {
      const auto& look = row.at("looks")[j];
      EXPECT_EQ(s.n[j], look.at("n").get<std::int64_t>());
      EXPECT_NEAR(s.alpha[j], look.at("alpha").get<double>(), 1e-18);
      EXPECT_NEAR(t.threshold(j, 0), look.at("certify").get<std::int64_t>(), 1) << "look " << j;
      for (std::size_t r = 1; r < radii.size(); ++r) {
        EXPECT_NEAR(t.threshold(j, r), look.at("radii")[r - 1].get<std::int64_t>(), 1) << "look " << j << " r " << radii[r];
        // The threshold is exactly where radius_from_count crosses the radius.
        const std::int64_t c_min = t.threshold(j, r);
        if (c_min <= s.n[j]) {
          EXPECT_GE(radius_from_count(c_min, s.n[j], sigma, s.alpha[j]).radius, radii[r]);
          if (c_min > 0) {
            const Certificate below = radius_from_count(c_min - 1, s.n[j], sigma, s.alpha[j]);
            EXPECT_TRUE(below.abstained() || below.radius < radii[r]);
          }
        }
      }
    }
  }
}

TEST(NextLook, StopsAtTheCapWhenFutileAndAtTheLastLook) {
  StagedConfig c;
  c.looks = {100, 200, 400};
  const LookSchedule s = look_schedule(c, 1000, 0.01);
  const StagedThresholds t(s, 0.25, {0.0, 0.25, 0.5});
  // Unanimous 100 of 100 at σ = 0.25 and α/6: p ≈ 0.95, radius ≈ 0.41: next target 0.5 is
  // reachable later (1000 of 1000 gives about 0.66).
  const Certificate first = t.certificate(0, 100);
  ASSERT_FALSE(first.abstained());
  EXPECT_EQ(next_look(t, 0, 100, first.radius, INFINITY), LookOutcome::kContinue);
  // A cap below the next stop radius: nothing reported can change.
  EXPECT_EQ(next_look(t, 0, 100, first.radius, 0.45), LookOutcome::kReachedCap);
  // The top stop radius reached.
  EXPECT_EQ(next_look(t, 0, 100, 0.5, INFINITY), LookOutcome::kReachedCap);
  // 50 of 100, abstaining so far: later looks can still certify.
  EXPECT_EQ(next_look(t, 0, 50, -1.0, INFINITY), LookOutcome::kContinue);
  // 0 of 400 at the third look: 600 more for ĉ give at most 600 of 1000 (p ≈ 0.56 at α/2),
  // which certifies but stays below 0.25.
  EXPECT_TRUE(t.reachable_after(2, 0, 0));
  EXPECT_FALSE(t.reachable_after(2, 0, 1));
  EXPECT_EQ(next_look(t, 2, 0, -1.0, INFINITY), LookOutcome::kContinue);
  // Certified at 0.1 there: the next stop radius 0.25 is out of reach, so stop.
  EXPECT_EQ(next_look(t, 2, 0, 0.1, INFINITY), LookOutcome::kFutile);
  // 1 of 100 at the first look: not even certification is reachable by 200 or 400, but by 1000 it is.
  EXPECT_EQ(next_look(t, 0, 1, -1.0, INFINITY), LookOutcome::kContinue);
  EXPECT_EQ(next_look(t, 3, 500, 0.3, INFINITY), LookOutcome::kLastLook);
  EXPECT_GT(t.max_radius(), 0.6);
  EXPECT_LT(t.max_radius(), 0.7);
}

TEST(RoundingSafeRadius, LowersBothValuesAFewUlpsAndAbstainsAtOneHalf) {
  EXPECT_EQ(stats::toward_zero(0.0), 0.0);
  EXPECT_LT(stats::toward_zero(0.7), 0.7);
  EXPECT_GT(stats::toward_zero(0.7), 0.7 - 1e-14);
  EXPECT_GT(stats::toward_zero(-0.7), -0.7);
  const Certificate c = radius_from_count(990, 1000, 0.5, 0.001);
  const double p = stats::clopper_pearson_lower(990, 1000, 0.001);
  EXPECT_LT(c.p_a_lower, p);
  EXPECT_LT(c.radius, 0.5 * stats::norm_ppf(c.p_a_lower));
  EXPECT_NEAR(c.radius, 0.5 * stats::norm_ppf(p), 1e-13);
  // p_a_lower at exactly 0.5 abstains: 1 of 1 at α = 0.5 gives the bound 0.5.
  const Certificate half = radius_from_count(1, 1, 0.25, 0.5);
  EXPECT_TRUE(half.abstained());
}

}  // namespace
}  // namespace dualrs
