// Statistics against reference values computed independently with SciPy/statsmodels
// (tests/reference/make_stats_reference.py -> tests/data/stats_*.csv).

#include "dualrs/core/stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "csv_reader.h"
#include "dualrs/core/decision.h"
#include "dualrs/core/error.h"

namespace dualrs {
namespace {
using testing::data_path;
using testing::read_csv;

constexpr double kRel = 1e-9;

void expect_rel(double actual, double expected, double rel, const std::string& what) {
  if (expected == 0.0) {
    EXPECT_EQ(actual, 0.0) << what;
  } else {
    EXPECT_LE(std::abs(actual - expected), rel * std::abs(expected)) << what << ": got " << actual << " want " << expected;
  }
}

TEST(StatsTest, ClopperPearsonMatchesStatsmodels) {
  const auto t = read_csv(data_path("stats_clopper_pearson.csv"));
  ASSERT_GT(t.rows.size(), 100u);
  for (const auto& r : t.rows) {
    const auto n_a = static_cast<std::int64_t>(r[t.col("n_a")]);
    const auto n = static_cast<std::int64_t>(r[t.col("n")]);
    const double alpha = r[t.col("alpha")];
    const std::string what = "n_a=" + std::to_string(n_a) + " n=" + std::to_string(n) + " alpha=" + std::to_string(alpha);
    expect_rel(stats::clopper_pearson_lower(n_a, n, alpha), r[t.col("p_a_lower")], kRel, "lower " + what);
    expect_rel(stats::clopper_pearson_upper(n_a, n, alpha), r[t.col("p_a_upper")], kRel, "upper " + what);
  }
}

TEST(StatsTest, ClopperPearsonEdgeCases) {
  EXPECT_EQ(stats::clopper_pearson_lower(0, 10, 0.001), 0.0);
  EXPECT_EQ(stats::clopper_pearson_upper(10, 10, 0.001), 1.0);
  // n_a = n: the lower bound is alpha^(1/n) exactly.
  EXPECT_NEAR(stats::clopper_pearson_lower(100, 100, 0.001), std::pow(0.001, 0.01), 1e-15);
  EXPECT_THROW(stats::clopper_pearson_lower(5, 4, 0.001), DataError);
  EXPECT_THROW(stats::clopper_pearson_lower(1, 0, 0.001), DataError);
  EXPECT_THROW(stats::clopper_pearson_lower(1, 4, 0.0), DataError);
  EXPECT_THROW(stats::clopper_pearson_lower(1, 4, 1.0), DataError);
}

TEST(StatsTest, NormPpfMatchesScipy) {
  const auto t = read_csv(data_path("stats_norm_ppf.csv"));
  ASSERT_GT(t.rows.size(), 10u);
  for (const auto& r : t.rows) {
    const double p = r[t.col("p")];
    expect_rel(stats::norm_ppf(p), r[t.col("ppf")], kRel, "ppf(" + std::to_string(p) + ")");
  }
  EXPECT_THROW(stats::norm_ppf(0.0), DataError);
  EXPECT_THROW(stats::norm_ppf(1.0), DataError);
}

TEST(StatsTest, BinomTestMatchesScipy) {
  const auto t = read_csv(data_path("stats_binom_test.csv"));
  ASSERT_GT(t.rows.size(), 100u);
  for (const auto& r : t.rows) {
    const auto k = static_cast<std::int64_t>(r[t.col("k")]);
    const auto n = static_cast<std::int64_t>(r[t.col("n")]);
    const double p = r[t.col("p")];
    const double want = r[t.col("p_value")];
    const double got = stats::binom_test_two_sided(k, n, p);
    const std::string what = "k=" + std::to_string(k) + " n=" + std::to_string(n) + " p=" + std::to_string(p);
    if (want == 0.0) {
      EXPECT_LT(got, 1e-300) << what;  // the true value underflows double
    } else {
      EXPECT_LE(std::abs(got - want), kRel * want) << what << ": got " << got << " want " << want;
    }
  }
}

TEST(StatsTest, RadiusRuleMatchesReference) {
  const auto t = read_csv(data_path("stats_radius.csv"));
  ASSERT_GT(t.rows.size(), 100u);
  for (const auto& r : t.rows) {
    const auto n_a = static_cast<std::int64_t>(r[t.col("n_a")]);
    const auto n = static_cast<std::int64_t>(r[t.col("n")]);
    const double alpha = r[t.col("alpha")], sigma = r[t.col("sigma")];
    const Certificate c = radius_from_count(n_a, n, sigma, alpha);
    const std::string what = "n_a=" + std::to_string(n_a) + " n=" + std::to_string(n) + " alpha=" +
                             std::to_string(alpha) + " sigma=" + std::to_string(sigma);
    EXPECT_EQ(c.abstained(), r[t.col("abstain")] == 1.0) << what;
    expect_rel(c.p_a_lower, r[t.col("p_a_lower")], kRel, "p_a_lower " + what);
    // Near p = 0.5 the radius is tiny and absolute error matters: scale by sigma there.
    const double want = r[t.col("radius")];
    EXPECT_LE(std::abs(c.radius - want), kRel * std::max(std::abs(want), sigma)) << "radius " << what;
  }
}

TEST(StatsTest, PredictRuleMatchesReference) {
  const auto t = read_csv(data_path("stats_predict.csv"));
  ASSERT_GT(t.rows.size(), 100u);
  for (const auto& r : t.rows) {
    const auto c1 = static_cast<std::int64_t>(r[t.col("c1")]);
    const auto c2 = static_cast<std::int64_t>(r[t.col("c2")]);
    const double alpha = r[t.col("alpha")];
    // Put the runner-up first and add a third class so the top-two search is exercised.
    const Prediction p = predict_from_counts({c2, 0, c1}, alpha);
    const bool abstain = r[t.col("abstain")] == 1.0;
    EXPECT_EQ(p.abstained(), abstain) << "c1=" << c1 << " c2=" << c2 << " alpha=" << alpha;
    if (!abstain && c1 != c2) {
      EXPECT_EQ(p.prediction, 2);
    }
  }
}

}  // namespace
}  // namespace dualrs
