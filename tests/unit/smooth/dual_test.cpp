// Dual RS, Multiscale and label generation over models whose votes are known.

#include "dualrs/smooth/dual.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"
#include "test_models.h"

namespace dualrs::smooth {
namespace {

// Always votes for `cls` (of k classes).
class ConstantModel : public model::BaseModel {
 public:
  ConstantModel(std::int64_t k, std::int64_t cls) : k_(k), cls_(cls) {}
  at::Tensor logits(const at::Tensor& x) override {
    auto out = torch::zeros({x.size(0), k_});
    out.select(1, cls_).fill_(5.0f);
    return out;
  }
  std::int64_t num_classes() const override { return k_; }
  std::string describe() const override { return "constant"; }
  void set_training(bool) override {}

 private:
  std::int64_t k_, cls_;
};

// Always votes for `cls`, but every logit is NaN: a broken model.
class NanModel : public ConstantModel {
 public:
  using ConstantModel::ConstantModel;
  at::Tensor logits(const at::Tensor& x) override { return ConstantModel::logits(x).fill_(NAN); }
};

Example example(std::int64_t idx, std::int64_t label, float value = 0.5f) {
  return {idx, label, torch::full({1, 4, 4}, value)};
}

PerSigmaSettings settings() {
  PerSigmaSettings s;
  s.sigma_candidates = {0.25, 0.5, 1.0};
  s.n0 = 50;
  s.n = 500;
  s.batch_size = 128;
  s.seed = 9;
  return s;
}

TEST(DualCertifyTest, TwoStagesAndTheMinimumRadius) {
  ConstantModel estimator(3, 1);  // always picks sigma index 1 (0.5)
  ConstantModel classifier(10, 7);
  const ClassifierPool pool(3, &classifier);
  const DualSettings ds{settings(), 1.0, 0.0005, 0.0005};
  const CertifyRecord r = dual_certify_example(estimator, pool, example(3, 7), ds);
  EXPECT_EQ(r.sigma_index, 1);
  EXPECT_EQ(r.prediction, 7);
  EXPECT_EQ(r.sigma, 0.5);
  // Unanimous votes: p_a_lower = alpha^(1/n) for each stage.
  const double r_sigma = safe_radius(1.0, stats::clopper_pearson_lower(500, 500, 0.0005));
  const double r_c = safe_radius(0.5, stats::clopper_pearson_lower(500, 500, 0.0005));
  EXPECT_EQ(r.r_sigma, r_sigma);
  EXPECT_EQ(r.r_c, r_c);
  EXPECT_EQ(r.radius, std::min(r_sigma, r_c));
  EXPECT_EQ(r.estimator_counts, (Counts{0, 500, 0}));
  EXPECT_EQ(r.counts[7], 500);
  EXPECT_TRUE(r.correct());
}

TEST(DualCertifyTest, EstimatorAbstainingSkipsTheClassifier) {
  CoinModel estimator(3);
  ConstantModel classifier(10, 7);
  const ClassifierPool pool(3, &classifier);
  const CertifyRecord r = dual_certify_example(estimator, pool, example(0, 7), {settings(), 1.0, 0.0005, 0.0005});
  EXPECT_EQ(r.sigma_index, kAbstain);
  EXPECT_EQ(r.prediction, kAbstain);
  EXPECT_EQ(r.radius, 0.0);
  EXPECT_EQ(r.counts, Counts(10, 0));  // the classifier was not run
}

TEST(DualCertifyTest, ClassifierStageDrawsTheSameCopiesAsGlobalCertifyAtThatSigma) {
  ConstantModel estimator(3, 2);  // sigma index 2 (1.0)
  CoinModel classifier(10);
  const ClassifierPool pool(3, &classifier);
  PerSigmaSettings ps = settings();
  const CertifyRecord dual = dual_certify_example(estimator, pool, example(5, 1, 0.6f), {ps, 1.0, 0.0005, 0.0005});
  CertifyConfig global;
  global.sigma = 1.0;
  global.n0 = ps.n0;
  global.n = ps.n;
  global.alpha = 0.0005;
  global.batch_size = 77;  // batch size must not matter
  global.seed = ps.seed;
  const CertifyRecord single = certify_example(classifier, example(5, 1, 0.6f), global, /*sigma_index=*/2);
  EXPECT_EQ(dual.counts, single.counts);
  EXPECT_EQ(dual.counts_selection, single.counts_selection);
  EXPECT_DOUBLE_EQ(dual.r_c, single.radius);
}

TEST(DualCertifyTest, EstimatorOutputSizeAndPoolSizeAreChecked) {
  ConstantModel estimator(4, 1);  // 4 outputs for 3 sigmas
  ConstantModel classifier(10, 7);
  EXPECT_THROW(dual_certify_example(estimator, ClassifierPool(3, &classifier), example(0, 7), {settings(), 1.0, 0.0005, 0.0005}),
               ModelError);
  ConstantModel good(3, 1);
  EXPECT_THROW(dual_certify_example(good, ClassifierPool(2, &classifier), example(0, 7), {settings(), 1.0, 0.0005, 0.0005}),
               ConfigError);
}

TEST(DualCertifyTest, RoutingUsesTheExpertOfTheChosenSigma) {
  ConstantModel estimator(3, 0);
  ConstantModel right(10, 4), wrong(10, 9);
  const ClassifierPool pool = {&right, &wrong, &wrong};
  const CertifyRecord r = dual_certify_example(estimator, pool, example(1, 4), {settings(), 1.0, 0.0005, 0.0005});
  EXPECT_EQ(r.sigma_index, 0);
  EXPECT_EQ(r.prediction, 4);
}

TEST(DualPredictTest, PredictsThroughTheChosenSigma) {
  ConstantModel estimator(3, 2);
  ConstantModel classifier(10, 3);
  const PredictRecord p = dual_predict_example(estimator, ClassifierPool(3, &classifier), example(2, 3),
                                               {settings(), 1.0, 0.0005, 0.0005});
  EXPECT_EQ(p.sigma_index, 2);
  EXPECT_EQ(p.prediction, 3);
  CoinModel coin(3);
  EXPECT_EQ(dual_predict_example(coin, ClassifierPool(3, &classifier), example(2, 3), {settings(), 1.0, 0.0005, 0.0005})
                .prediction,
            kAbstain);
}

TEST(MultiscaleCertifyTest, LargestConfidentSigmaDecides) {
  ConstantModel classifier(10, 6);
  const CertifyRecord r = multiscale_certify_example(ClassifierPool(3, &classifier), example(0, 6), settings(), 0.001,
                                                     AlphaSplit::kBonferroni);
  EXPECT_EQ(r.prediction, 6);
  EXPECT_EQ(r.sigma_index, 2);  // the first (largest) sigma already certifies
  EXPECT_EQ(r.radius, safe_radius(1.0, stats::clopper_pearson_lower(500, 500, 0.001 / 3 / 2)));
}

TEST(MultiscaleCertifyTest, ACoinFlipAbstainsAtTheFirstStage) {
  CoinModel classifier(10);
  const CertifyRecord r = multiscale_certify_example(ClassifierPool(3, &classifier), example(0, 1), settings(), 0.001,
                                                     AlphaSplit::kBonferroni);
  EXPECT_EQ(r.prediction, kAbstain);
  EXPECT_EQ(r.sigma_index, kAbstain);
}

TEST(LabelTest, UnanimousCorrectVotesGiveTheMaximalRadiusAtEverySigma) {
  ConstantModel classifier(10, 2);
  PerSigmaSettings ps = settings();
  ps.n = 100;
  const LabelRow row = label_example(ClassifierPool(3, &classifier), example(0, 2), ps, 0.001);
  ASSERT_EQ(row.radii.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(row.radii[i], ps.sigma_candidates[i] * 1.5005, 1e-4);
    EXPECT_EQ(row.top_count[i], 100);
  }
  const LabelRow wrong = label_example(ClassifierPool(3, &classifier), example(0, 5), ps, 0.001);
  EXPECT_EQ(wrong.radii, (std::vector<double>{0, 0, 0}));
}

TEST(LabelTest, RoutingLabelsEachSigmaWithItsExpert) {
  ConstantModel right(10, 2), wrong(10, 8);
  const LabelRow row = label_example({&wrong, &right, &wrong}, example(0, 2), settings(), 0.001);
  EXPECT_EQ(row.radii[0], 0.0);
  EXPECT_GT(row.radii[1], 0.0);
  EXPECT_EQ(row.radii[2], 0.0);
}

TEST(EstimateSigmaTest, MajorityVote) {
  ConstantModel estimator(3, 1);
  const SigmaVote v = estimate_sigma_example(estimator, example(0, 0), 1.0, 32, 16, 0, 3);
  EXPECT_EQ(v.sigma_index, 1);
  EXPECT_EQ(v.votes, (Counts{0, 32, 0}));
  EXPECT_THROW(estimate_sigma_example(estimator, example(0, 0), 1.0, 32, 16, 0, 4), ModelError);
}

TEST(NonFiniteTest, DualAbstainsWhenTheEstimatorOrTheClassifierIsNotFinite) {
  ConstantModel estimator(3, 1);
  NanModel broken_estimator(3, 1);
  ConstantModel classifier(10, 7);
  NanModel broken_classifier(10, 7);
  const DualSettings ds{settings(), 1.0, 0.0005, 0.0005};
  const CertifyRecord e = dual_certify_example(broken_estimator, ClassifierPool(3, &classifier), example(3, 7), ds);
  EXPECT_EQ(e.non_finite, 550);  // n0 + n estimator copies; stage 2 never runs
  EXPECT_EQ(e.prediction, kAbstain);
  EXPECT_EQ(e.radius, 0.0);
  const CertifyRecord c = dual_certify_example(estimator, ClassifierPool(3, &broken_classifier), example(3, 7), ds);
  EXPECT_EQ(c.non_finite, 550);  // the classifier's copies at the chosen sigma
  EXPECT_EQ(c.prediction, kAbstain);
  EXPECT_EQ(c.radius, 0.0);
  const PredictRecord p = dual_predict_example(estimator, ClassifierPool(3, &broken_classifier), example(3, 7), ds);
  EXPECT_EQ(p.non_finite, 500);
  EXPECT_EQ(p.prediction, kAbstain);
}

TEST(NonFiniteTest, MultiscaleAbstainsAtTheFirstStageWithNonFiniteCopies) {
  ConstantModel good(10, 4);
  NanModel broken(10, 4);
  // The largest sigma is tried first: a broken expert there ends the cascade at once.
  const ClassifierPool pool = {&good, &good, &broken};
  const CertifyRecord r = multiscale_certify_example(pool, example(1, 4), settings(), 0.001, AlphaSplit::kBonferroni);
  EXPECT_EQ(r.non_finite, 550);
  EXPECT_EQ(r.prediction, kAbstain);
  EXPECT_EQ(r.sigma_index, kAbstain);
  const PredictRecord p = multiscale_predict_example(pool, example(1, 4), settings(), 0.001, AlphaSplit::kBonferroni);
  EXPECT_EQ(p.non_finite, 500);
  EXPECT_EQ(p.prediction, kAbstain);
  // The same pool without the broken expert certifies.
  const ClassifierPool fine = {&good, &good, &good};
  EXPECT_EQ(multiscale_certify_example(fine, example(1, 4), settings(), 0.001, AlphaSplit::kBonferroni).prediction, 4);
}

TEST(NonFiniteTest, LabelsAreZeroWhereCopiesAreNotFinite) {
  ConstantModel good(10, 4);
  NanModel broken(10, 4);
  const ClassifierPool pool = {&good, &broken, &good};
  const LabelRow row = label_example(pool, example(1, 4), settings(), 0.001);
  EXPECT_EQ(row.non_finite, (std::vector<std::int64_t>{0, 500, 0}));
  EXPECT_GT(row.radii[0], 0.0);
  EXPECT_EQ(row.radii[1], 0.0);
  EXPECT_GT(row.radii[2], 0.0);
  const SigmaVote vote = estimate_sigma_example(broken, example(1, 4), 1.0, 32, 16, 3, 10);
  EXPECT_EQ(vote.non_finite, 32);
}

}  // namespace
}  // namespace dualrs::smooth
