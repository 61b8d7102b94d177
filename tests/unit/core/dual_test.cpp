// Dual RS and Multiscale decision rules on counts; the cascade against SciPy reference values
// (tests/reference/make_multiscale_reference.py -> tests/data/multiscale_reference.json), label
// rows and their weights likewise (make_label_reference.py -> tests/data/label_reference.json).

#include "dualrs/core/dual.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs {
namespace {

bool names(const ConfigError& e, const std::string& pointer) {
  for (const auto& i : e.issues()) {
    if (i.pointer == pointer) return true;
  }
  return false;
}

TEST(SigmaCandidatesTest, MustBePositiveSortedAndUnique) {
  EXPECT_NO_THROW(validate_sigma_candidates({0.25, 0.5, 1.0}, "/dual/sigma_candidates"));
  for (const auto& [sigmas, bad] : std::vector<std::pair<std::vector<double>, std::string>>{
           {{0.5, 0.25}, "/dual/sigma_candidates/1"},
           {{0.25, 0.25}, "/dual/sigma_candidates/1"},
           {{0.0, 0.5}, "/dual/sigma_candidates/0"},
           {{-1.0}, "/dual/sigma_candidates/0"},
           {{}, "/dual/sigma_candidates"}}) {
    try {
      validate_sigma_candidates(sigmas, "/dual/sigma_candidates");
      FAIL() << bad;
    } catch (const ConfigError& e) {
      EXPECT_TRUE(names(e, bad)) << e.what();
    }
  }
}

TEST(LabelRadiusTest, OnlyCorrectConfidentVotesEarnARadius) {
  const double p = stats::clopper_pearson_lower(95, 100, 0.001);
  EXPECT_EQ(label_radius({2, 95, 3}, 1, 0.5, 0.001), stats::toward_zero(0.5 * stats::norm_ppf(stats::toward_zero(p))));
  EXPECT_EQ(label_radius({2, 95, 3}, 0, 0.5, 0.001), 0.0);   // top class is not the label
  EXPECT_EQ(label_radius({40, 55, 5}, 1, 0.5, 0.001), 0.0);  // p_a_lower < 0.5
  // With N = 100 and alpha = 0.001 the largest label radius is sigma * 1.5005 (docs/method.md §5).
  EXPECT_NEAR(label_radius({0, 100, 0}, 1, 1.0, 0.001), 1.5005, 1e-4);
  // Votes for no class (non-finite logits) count as trials.
  EXPECT_LT(label_radius({0, 100, 0}, 1, 1.0, 0.001, 110), label_radius({0, 100, 0}, 1, 1.0, 0.001));
}

TEST(LabelRadiusTest, BestIndexTiesGoToTheSmallerSigma) {
  EXPECT_EQ(best_sigma_index({0.1, 0.4, 0.4}), 1);
  EXPECT_EQ(best_sigma_index({0.0, 0.0, 0.0}), -1);
  EXPECT_EQ(best_sigma_index({0.3, 0.0, 0.2}), 0);
}

TEST(LabelRadiusTest, RebalancingWeightsAreInverseFrequencies) {
  const auto w = rebalancing_weights({0, 0, 1, -1, 2, 2, 2, 2}, 3);
  const std::vector<double> expected = {3.5, 3.5, 7.0, 0.0, 1.75, 1.75, 1.75, 1.75};
  ASSERT_EQ(w.size(), expected.size());
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_DOUBLE_EQ(w[i], expected[i]) << i;
  EXPECT_THROW(rebalancing_weights({3}, 3), DataError);
}

TEST(DualRuleTest, RadiusIsTheMinimumOfBothStages) {
  Certificate e;
  e.prediction = 2;
  e.radius = 0.8;
  Certificate c;
  c.prediction = 7;
  c.radius = 0.3;
  const DualCertificate d = combine_dual(e, c);
  EXPECT_EQ(d.sigma_index, 2);
  EXPECT_EQ(d.prediction, 7);
  EXPECT_EQ(d.radius, 0.3);
  c.radius = 1.2;
  EXPECT_EQ(combine_dual(e, c).radius, 0.8);
}

TEST(DualRuleTest, EitherStageAbstainingAbstains) {
  Certificate abstain;
  Certificate e;
  e.prediction = 1;
  e.radius = 0.5;
  const DualCertificate no_sigma = combine_dual(abstain, e);
  EXPECT_TRUE(no_sigma.abstained());
  EXPECT_EQ(no_sigma.sigma_index, kAbstain);
  EXPECT_EQ(no_sigma.radius, 0.0);
  const DualCertificate no_class = combine_dual(e, abstain);
  EXPECT_TRUE(no_class.abstained());
  EXPECT_EQ(no_class.sigma_index, 1);
  EXPECT_EQ(no_class.r_sigma, 0.5);
  EXPECT_EQ(no_class.radius, 0.0);
}

TEST(DualAlphaTest, EachStageGetsItsBudgetOrHalfOfAlpha) {
  const DualAlpha even = dual_alpha_split(0.001);
  EXPECT_EQ(even.alpha_e, 0.0005);
  EXPECT_EQ(even.alpha_c, 0.0005);
  EXPECT_EQ(even.alpha_e, 0.001 / 2);  // bit for bit the α/2 PREDICT always used
  const DualAlpha given = dual_alpha_split(0.01, 0.002, 0.008);
  EXPECT_EQ(given.alpha_e, 0.002);
  EXPECT_EQ(given.alpha_c, 0.008);
  const DualAlpha one = dual_alpha_split(0.01, -1.0, 0.003);  // only alpha_c given
  EXPECT_EQ(one.alpha_e, 0.005);
  EXPECT_EQ(one.alpha_c, 0.003);
  // The union bound: with the defaults the two stages spend exactly alpha.
  for (double alpha : {0.001, 0.01, 0.05, 0.3}) {
    const DualAlpha a = dual_alpha_split(alpha);
    EXPECT_DOUBLE_EQ(a.alpha_e + a.alpha_c, alpha);
  }
}

TEST(MultiscaleTest, BonferroniStagesSumToAlphaAndReferenceStagesExceedIt) {
  for (std::int64_t stages : {1, 2, 3, 5}) {
    double bonferroni = 0.0, reference = 0.0;
    for (std::int64_t s = 0; s < stages; ++s) {
      bonferroni += multiscale_stage_alpha(0.001, s, stages, AlphaSplit::kBonferroni);
      reference += multiscale_stage_alpha(0.001, s, stages, AlphaSplit::kReference);
    }
    EXPECT_NEAR(bonferroni, 0.001, 1e-15) << stages;
    // α/2 + α/3 < α, but from three stages on the reference's budgets exceed α (docs/method.md §11).
    if (stages >= 3) {
      EXPECT_GT(reference, 0.001) << stages;
    } else {
      EXPECT_LE(reference, 0.001) << stages;
    }
  }
}

TEST(LabelRowTest, RowsAndWeightsMatchScipyReference) {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/label_reference.json");
  ASSERT_TRUE(in.good());
  const auto ref = nlohmann::json::parse(in);
  const auto sigmas = ref["sigma_candidates"].get<std::vector<double>>();
  const double alpha = ref["alpha"].get<double>();
  std::vector<std::int64_t> best;
  for (const auto& row : ref["rows"]) {
    const auto idx = row["idx"].get<std::int64_t>();
    std::vector<double> radii;
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
      radii.push_back(label_radius(row["votes"][i].get<Counts>(), row["label"].get<std::int64_t>(), sigmas[i], alpha));
      EXPECT_NEAR(radii.back(), row["radii"][i].get<double>(), 1e-9) << "row " << idx << " sigma " << sigmas[i];
    }
    const LabelRowSummary summary = summarize_label_row(radii);
    EXPECT_EQ(summary.best, row["best"].get<std::int64_t>()) << "row " << idx;
    EXPECT_NEAR(summary.max_radius, row["max_radius"].get<double>(), 1e-9) << "row " << idx;
    best.push_back(summary.best);
  }
  const std::vector<double> weights = rebalancing_weights(best, static_cast<std::int64_t>(sigmas.size()));
  for (std::size_t i = 0; i < best.size(); ++i) {
    EXPECT_NEAR(weights[i], ref["rows"][i]["weight_e"].get<double>(), 1e-12) << "row " << i;
  }
  EXPECT_THROW(summarize_label_row({}), std::invalid_argument);
  EXPECT_EQ(summarize_label_row({0.0, 0.0}).best, -1);
  EXPECT_EQ(summarize_label_row({0.0, 0.0}).max_radius, 0.0);
}

TEST(MultiscaleTest, StageAlphaSplits) {
  EXPECT_DOUBLE_EQ(multiscale_stage_alpha(0.003, 0, 3, AlphaSplit::kBonferroni), 0.001);
  EXPECT_DOUBLE_EQ(multiscale_stage_alpha(0.003, 2, 3, AlphaSplit::kBonferroni), 0.001);
  EXPECT_DOUBLE_EQ(multiscale_stage_alpha(0.006, 0, 3, AlphaSplit::kReference), 0.003);  // alpha / (1 + 1)
  EXPECT_DOUBLE_EQ(multiscale_stage_alpha(0.006, 1, 3, AlphaSplit::kReference), 0.002);  // alpha / (2 + 1)
}

TEST(MultiscaleTest, CascadeMatchesScipyReference) {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/multiscale_reference.json");
  ASSERT_TRUE(in.good());
  const auto ref = nlohmann::json::parse(in);
  const auto sigmas = ref["sigmas"].get<std::vector<double>>();
  const double alpha = ref["alpha"].get<double>();
  const auto num = static_cast<std::int64_t>(sigmas.size());
  for (const auto& c : ref["cases"]) {
    const std::string name = c["name"];
    std::vector<MultiscaleStage> stages;
    std::vector<double> visited;
    for (std::size_t step = 0; step < c["stages"].size(); ++step) {
      const double sigma = sigmas[sigmas.size() - 1 - step];
      const auto& s = c["stages"][step];
      stages.push_back(multiscale_stage(s["selection"].get<Counts>(), s["estimation"].get<Counts>(), sigma,
                                        multiscale_stage_alpha(alpha, static_cast<std::int64_t>(step), num,
                                                               AlphaSplit::kBonferroni)));
      visited.push_back(sigma);
      const auto& want = c["expected_stages"][step];
      const std::string decision = want["decision"];
      const StageDecision expected = decision == "certify" ? StageDecision::kCertify
                                     : decision == "undecided" ? StageDecision::kUndecided
                                                               : StageDecision::kBelowHalf;
      EXPECT_EQ(stages.back().decision, expected) << name << " stage " << step;
      EXPECT_NEAR(stages.back().p_a_lower, want["p_a_lower"].get<double>(), 1e-9) << name;
      EXPECT_NEAR(stages.back().p_high, want["p_high"].get<double>(), 1e-9) << name;
      EXPECT_NEAR(stages.back().cap, want["cap"].get<double>(), 1e-9) << name;
    }
    const MultiscaleCertificate cert = combine_multiscale(stages, visited);
    EXPECT_EQ(cert.prediction, c["expected"]["prediction"].get<std::int64_t>()) << name;
    EXPECT_NEAR(cert.radius, c["expected"]["radius"].get<double>(), 1e-9) << name;
  }
}

TEST(MultiscaleTest, CapNeverExceedsTheStageRadius) {
  // An earlier stage close to 0.5 caps the radius hard.
  const MultiscaleStage below = multiscale_stage({34, 33, 33}, {490, 300, 210}, 1.0, 0.001);
  ASSERT_EQ(below.decision, StageDecision::kUndecided);  // upper bound reaches 0.5
  const MultiscaleStage far_below = multiscale_stage({34, 33, 33}, {340, 330, 330}, 1.0, 0.001);
  ASSERT_EQ(far_below.decision, StageDecision::kBelowHalf);
  const MultiscaleStage certify = multiscale_stage({0, 100, 0}, {0, 1000, 0}, 0.5, 0.001);
  const MultiscaleCertificate cert = combine_multiscale({far_below, certify}, {1.0, 0.5});
  EXPECT_EQ(cert.radius, std::min(certify.radius, far_below.cap));
  EXPECT_EQ(cert.sigma, 0.5);
}

}  // namespace
}  // namespace dualrs
