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

// A per-sigma file of the Dual RS classifier (streams dual_rs_classifier) at alpha_c.
io::CertifyResults per_sigma(double sigma, std::vector<CertifyRecord> records, double alpha = 0.0005) {
  io::CertifyResults r = global(sigma, std::move(records));
  r.info.method = "dual_rs_classifier_sigma_" + std::to_string(sigma);
  r.info.streams = "dual_rs_classifier";
  r.info.alpha = alpha;
  r.info.n0 = 10;
  r.info.n = 100;
  return r;
}

// A record with counts (the copies a stage drew): `votes` estimation votes for `cls` of 3.
CertifyRecord drawn(std::int64_t idx, std::int64_t label, std::int64_t pred, double radius, std::int64_t votes) {
  CertifyRecord r = rec(idx, label, pred, radius);
  r.counts_selection = {0, 10, 0};
  r.counts = {100 - votes, votes, 0};
  return r;
}

io::CertifyResults dual_file(std::vector<CertifyRecord> records) {
  io::CertifyResults dual;
  dual.info.method = "dual_rs";
  dual.info.sigma_candidates = {0.25, 1.0};
  dual.info.sigma_e = 1.0;
  dual.info.alpha_c = 0.0005;
  dual.info.n0 = 10;
  dual.info.n = 100;
  dual.records = std::move(records);
  return dual;
}

CertifyRecord dual_record(std::int64_t idx, std::int64_t sigma_index, double r_sigma, const CertifyRecord& classifier) {
  CertifyRecord d = classifier;
  d.idx = idx;
  d.sigma_index = sigma_index;
  d.r_sigma = r_sigma;
  d.r_c = classifier.prediction == kAbstain ? 0.0 : classifier.radius;
  d.radius = classifier.prediction == kAbstain ? 0.0 : std::min(r_sigma, classifier.radius);
  return d;
}

TEST(SigmaAnalysisTest, PerSigmaFilesOfTheDualRsClassifierAreTheReferenceAndDeltaRcIsNeverNegative) {
  // Σ = {0.25, 1.0}; the per-sigma files hold at the chosen sigma exactly Dual RS's copies.
  const CertifyRecord a0 = drawn(0, 1, 1, 0.4, 90), b0 = drawn(0, 1, 1, 0.6, 95);
  const CertifyRecord a1 = drawn(1, 1, 1, 0.5, 92), b1 = drawn(1, 1, 2, 0.8, 97);  // wrong class at sigma 1.0
  const CertifyRecord a2 = drawn(2, 1, kAbstain, 0, 40), b2 = drawn(2, 1, 1, 0.2, 70);
  const auto p1 = per_sigma(0.25, {a0, a1, a2});
  const auto p2 = per_sigma(1.0, {b0, b1, b2});
  // An ordinary global-sigma file with far larger radii: ignored once the per-sigma files cover Σ.
  const auto g = global(0.25, {rec(0, 1, 1, 5.0), rec(1, 1, 1, 5.0), rec(2, 1, 1, 5.0)});
  const auto dual = dual_file({dual_record(0, 0, 0.3, a0), dual_record(1, 1, 0.9, b1), dual_record(2, 0, 0.7, a2)});
  const SigmaAnalysis a = analyze_sigma_choice({g, p1, p2}, dual);
  EXPECT_EQ(a.reference, ReferenceRuns::kDualRsClassifier);
  EXPECT_EQ(a.reference_methods, (std::vector<std::string>{p1.info.method, p2.info.method}));
  EXPECT_EQ(a.same_counts, 3);
  EXPECT_EQ(a.optimal_index, (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(a.optimal_radius, (std::vector<double>{0.6, 0.5, 0.2}));
  // R_c: 0.4 (correct), 0 (wrong class), 0 (abstained) -> ΔR_c = 0.2, 0.5, 0.2.
  ASSERT_EQ(a.delta_r_c.size(), 3u);
  EXPECT_DOUBLE_EQ(a.delta_r_c[0], 0.6 - 0.4);
  EXPECT_DOUBLE_EQ(a.delta_r_c[1], 0.5);
  EXPECT_DOUBLE_EQ(a.delta_r_c[2], 0.2);
  const std::string summary = delta_summary_csv(a);
  EXPECT_NE(summary.find(",dual_rs_classifier,3\n"), std::string::npos) << summary;

  // Another classifier (other counts at the chosen sigma) is refused, naming file and example.
  CertifyRecord other = a0;
  other.counts = {20, 80, 0};
  try {
    analyze_sigma_choice({per_sigma(0.25, {other, a1, a2}), p2}, dual);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(p1.info.method), std::string::npos) << e.what();
  }
  // ... unless Dual RS sampled in stages (it stops early: counts differ by design).
  io::CertifyResults staged = dual;
  staged.info.sampling = "staged";
  EXPECT_EQ(analyze_sigma_choice({per_sigma(0.25, {other, a1, a2}), p2}, staged).same_counts, 2);
  // A per-sigma file at another alpha than alpha_c is refused.
  EXPECT_THROW(analyze_sigma_choice({per_sigma(0.25, {a0, a1, a2}, 0.001), p2}, dual), DataError);
}

TEST(SigmaAnalysisTest, DiagnosisSplitsTheExamplesDualRsDoesNotCertify) {
  // Five examples, Σ = {0.25, 1.0}; per example: R_σ, the classifier at the chosen sigma, the
  // best per-sigma radius (the oracle).
  const CertifyRecord c0 = drawn(0, 1, 1, 0.8, 99);       // R_σ 0.6, R_c 0.8: R = 0.6
  const CertifyRecord c1 = drawn(1, 1, 1, 0.9, 99);       // R_σ 0.2, R_c 0.9: R = 0.2
  const CertifyRecord c2 = drawn(2, 1, 1, 0.3, 80);       // R_σ 0.7, R_c 0.3: R = 0.3
  const CertifyRecord c3 = drawn(3, 1, 2, 0.9, 99);       // wrong class: R_c counts 0
  const CertifyRecord c4 = drawn(4, 1, kAbstain, 0, 30);  // the estimator abstains (no classifier)
  const auto p1 = per_sigma(0.25, {c0, c1, c2, c3, c4});
  const auto p2 = per_sigma(1.0, {drawn(0, 1, 1, 0.5, 90), drawn(1, 1, 1, 0.4, 90), drawn(2, 1, 1, 1.2, 99),
                                  drawn(3, 1, 1, 0.1, 60), drawn(4, 1, 1, 0.5, 90)});
  CertifyRecord d4 = c4;
  d4.counts = {0, 0, 0};
  d4.counts_selection = {0, 0, 0};
  const auto dual = dual_file({dual_record(0, 0, 0.6, c0), dual_record(1, 0, 0.2, c1), dual_record(2, 0, 0.7, c2),
                               dual_record(3, 0, 0.5, c3), dual_record(4, kAbstain, 0.0, d4)});
  const SigmaAnalysis a = analyze_sigma_choice({p1, p2}, dual);
  EXPECT_EQ(a.optimal_radius, (std::vector<double>{0.8, 0.9, 1.2, 0.1, 0.5}));
  const std::vector<DiagnosisRow> rows = diagnose(a, {0.0, 0.25, 0.5, 1.0}, {Convention::kInclusive, Convention::kStrict});
  ASSERT_EQ(rows.size(), 8u);
  // r = 0 inclusive: certified 0, 1, 2; 3 lost to R_c (wrong class); 4 abstained.
  EXPECT_DOUBLE_EQ(rows[0].dual_rs, 0.6);
  EXPECT_DOUBLE_EQ(rows[0].oracle, 1.0);
  EXPECT_DOUBLE_EQ(rows[0].lost_to_r_c, 0.2);
  EXPECT_DOUBLE_EQ(rows[0].estimator_abstained, 0.2);
  // r = 0.25: 1 is lost to R_σ (0.2 < 0.25 ≤ 0.9).
  EXPECT_DOUBLE_EQ(rows[1].dual_rs, 0.4);
  EXPECT_DOUBLE_EQ(rows[1].lost_to_r_sigma, 0.2);
  EXPECT_DOUBLE_EQ(rows[1].lost_to_r_c, 0.2);
  EXPECT_DOUBLE_EQ(rows[1].oracle, 0.8);  // example 3's best is 0.1
  // r = 0.5: 0 certified (0.6); 1 lost to R_σ; 2 (R_c 0.3) and 3 (R_σ 0.5 reaches, R_c 0) lost to R_c.
  EXPECT_DOUBLE_EQ(rows[2].dual_rs, 0.2);
  EXPECT_DOUBLE_EQ(rows[2].lost_to_r_sigma, 0.2);
  EXPECT_DOUBLE_EQ(rows[2].lost_to_r_c, 0.4);
  EXPECT_DOUBLE_EQ(rows[2].lost_to_both, 0.0);
  EXPECT_DOUBLE_EQ(rows[2].oracle, 0.8);
  // r = 1.0: nothing certified; 0 to 3 fall short of it with both radii.
  EXPECT_DOUBLE_EQ(rows[3].dual_rs, 0.0);
  EXPECT_DOUBLE_EQ(rows[3].lost_to_both, 0.8);
  EXPECT_DOUBLE_EQ(rows[3].oracle, 0.2);  // example 2 at sigma 1.0: 1.2
  // r = 0.5 strict: example 3's R_σ = 0.5 no longer reaches 0.5: lost to both.
  EXPECT_DOUBLE_EQ(rows[6].lost_to_both, 0.2);
  EXPECT_DOUBLE_EQ(rows[6].lost_to_r_c, 0.2);
  for (const DiagnosisRow& r : rows) {
    EXPECT_NEAR(r.dual_rs + r.estimator_abstained + r.lost_to_r_sigma + r.lost_to_r_c + r.lost_to_both, 1.0, 1e-12);
    EXPECT_LE(r.dual_rs, r.oracle);
  }
  const std::string csv = diagnosis_csv(rows);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "radius,convention,dual_rs,oracle,estimator_abstained,lost_to_r_sigma,lost_to_r_c,lost_to_both");
  EXPECT_NE(csv.find("\n0.25,inclusive,0.4,0.8,0.2,0.2,0.2,0.0\n"), std::string::npos) << csv;
}

TEST(SigmaAnalysisTest, AblationRowsSummariseEachDualRsResult) {
  // Three examples, Σ = {0.25, 1.0}: optimal σ 1, 0, none; the estimator picks 1, 1, abstains.
  const CertifyRecord a0 = drawn(0, 1, 1, 0.4, 90), b0 = drawn(0, 1, 1, 0.6, 95);
  const CertifyRecord a1 = drawn(1, 1, 1, 0.5, 92), b1 = drawn(1, 1, 1, 0.3, 80);
  const CertifyRecord a2 = drawn(2, 1, kAbstain, 0, 40), b2 = drawn(2, 1, kAbstain, 0, 40);
  const auto p1 = per_sigma(0.25, {a0, a1, a2});
  const auto p2 = per_sigma(1.0, {b0, b1, b2});
  CertifyRecord none = a2;
  none.counts = {0, 0, 0};
  none.counts_selection = {0, 0, 0};
  auto dual = dual_file({dual_record(0, 1, 0.5, b0), dual_record(1, 1, 0.9, b1), dual_record(2, kAbstain, 0.0, none)});
  dual.info.method = "lambda_40";
  const SigmaAnalysis a = analyze_sigma_choice({p1, p2}, dual);
  const AblationRow row = ablation_row(dual, a, {0.0, 0.4}, Convention::kInclusive);
  EXPECT_EQ(row.method, "lambda_40");
  // Radii min(R_σ, R_c): 0.5 and 0.3 (both correct).
  EXPECT_DOUBLE_EQ(row.certified_accuracy[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(row.certified_accuracy[1], 1.0 / 3);
  EXPECT_DOUBLE_EQ(row.acr, (0.5 + 0.3) / 3);
  EXPECT_DOUBLE_EQ(row.sigma_selection_accuracy, 0.5);  // right on example 0 only, of the two with an optimal σ
  EXPECT_DOUBLE_EQ(row.bound_by_r_sigma, 0.5);          // example 0: R_σ 0.5 < R_c 0.6
  EXPECT_DOUBLE_EQ(row.mean_delta_r_c, (0.0 + 0.2) / 2);
  EXPECT_DOUBLE_EQ(row.oracle_acr, (0.6 + 0.5 + 0.0) / 3);
  const std::string csv = ablation_csv({row}, {0.0, 0.4});
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "method,convention,num_examples,0.0,0.4,acr,sigma_selection_accuracy,bound_by_r_sigma,mean_delta_r_c,"
            "oracle_acr,reference");
  const std::string md = ablation_markdown({row}, {0.0, 0.4}, "Ablation lambda");
  EXPECT_NE(md.find("| lambda_40 | 66.7 | 33.3 | 0.267 | 50.0 | 50.0 | 0.100 | 0.367 |"), std::string::npos) << md;
  // Two Σ in one ablation: each result finds the reference runs that hold its own copies.
  auto other = per_sigma(1.0, {drawn(0, 1, 1, 0.1, 60), b1, b2});  // another classifier's run at σ = 1.0
  other.info.method = "other_classifier_sigma_1.0";
  EXPECT_EQ(analyze_sigma_choice({other, p1, p2}, dual).reference_methods[1], p2.info.method);
  EXPECT_THROW(analyze_sigma_choice({other, p1}, dual), DataError);  // and none of them: refused
}

TEST(SigmaAnalysisTest, QuantilesInterpolateLikeNumpy) {
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.1), 1.3);
  EXPECT_DOUBLE_EQ(quantile({5}, 0.9), 5);
  EXPECT_TRUE(std::isnan(quantile({}, 0.5)));
}

}  // namespace
}  // namespace dualrs::report
