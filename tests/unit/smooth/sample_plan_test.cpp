// The sample plans say what the smoothing routines draw: models that count the noisy copies
// they are given see exactly the plan's copies (at most them, when a step may not run, and
// exactly them when none is skipped). This is what keeps `--dry-run` equal to what runs.

#include "dualrs/smooth/sample_plan.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>

#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"

namespace dualrs::smooth {
namespace {

// Counts the rows of every batch it classifies. Votes either always for `cls` (kConstant) or
// for the largest of the first k pixels (kSpread: about uniform over the k classes under
// noise, so nothing is certified and PREDICT abstains).
class CountingModel : public model::BaseModel {
 public:
  enum class Votes { kConstant, kSpread };
  CountingModel(std::int64_t k, Votes votes, std::int64_t cls = 0) : k_(k), votes_(votes), cls_(cls) {}
  at::Tensor logits(const at::Tensor& x) override {
    copies_ += x.size(0);
    if (votes_ == Votes::kSpread) return x.flatten(1).narrow(1, 0, k_).clone();
    auto out = torch::zeros({x.size(0), k_});
    out.select(1, cls_).fill_(5.0f);
    return out;
  }
  std::int64_t num_classes() const override { return k_; }
  std::string describe() const override { return "counting"; }
  void set_training(bool) override {}
  std::int64_t copies() const { return copies_; }

 private:
  std::int64_t k_;
  Votes votes_;
  std::int64_t cls_;
  std::int64_t copies_ = 0;
};

using Votes = CountingModel::Votes;

// A mid-grey 1x4x4 image: 16 pixels, enough for a 10-class spread model.
Example example(std::int64_t idx = 4, std::int64_t label = 7) { return {idx, label, torch::full({1, 4, 4}, 0.5f)}; }

PerSigmaSettings settings() {
  PerSigmaSettings s;
  s.sigma_candidates = {0.25, 0.5, 1.0};
  s.n0 = 50;
  s.n = 300;
  s.batch_size = 128;  // divides neither n0 nor n: the last batch of each draw is partial
  s.seed = 5;
  return s;
}

DualSettings dual_settings() { return {settings(), 1.0, 0.0005, 0.0005}; }

// Three experts, one per σ of Σ.
struct Pool {
  explicit Pool(Votes votes, std::int64_t cls = 7) {
    for (int i = 0; i < 3; ++i) {
      models.push_back(std::make_unique<CountingModel>(10, votes, cls));
      pool.push_back(models.back().get());
    }
  }
  std::int64_t copies() const {
    std::int64_t total = 0;
    for (const auto& m : models) total += m->copies();
    return total;
  }
  std::vector<std::unique_ptr<CountingModel>> models;
  ClassifierPool pool;
};

// Copies the plan's steps at σ word `sigma_index` draw with the classifier.
std::int64_t classifier_copies_at(const SamplePlan& plan, std::uint32_t sigma_index) {
  std::int64_t total = 0;
  for (const SampleStep& s : plan.steps) {
    if (s.model == ModelRole::kClassifier && s.sigma_index == sigma_index) total += s.copies();
  }
  return total;
}

TEST(SamplePlanTest, GlobalCertifyDrawsThePlannedCopies) {
  CertifyConfig config;
  config.sigma = 0.5;
  config.n0 = 37;
  config.n = 411;
  config.batch_size = 100;
  const SamplePlan plan = certify_plan(config);
  ASSERT_EQ(plan.steps.size(), 1u);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 37 + 411);
  EXPECT_EQ(plan.copies(ModelRole::kEstimator), 0);
  EXPECT_FALSE(plan.conditional(ModelRole::kClassifier));
  CountingModel model(10, Votes::kConstant, 7);
  certify_example(model, example(), config);
  EXPECT_EQ(model.copies(), plan.copies(ModelRole::kClassifier));
}

TEST(SamplePlanTest, GlobalPredictDrawsThePlannedCopies) {
  PredictConfig config;
  config.n = 257;
  config.batch_size = 64;
  const SamplePlan plan = predict_plan(config);
  CountingModel model(10, Votes::kConstant, 3);
  predict_example(model, example(), config);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 257);
  EXPECT_EQ(model.copies(), plan.copies(ModelRole::kClassifier));
}

TEST(SamplePlanTest, LabelDrawsThePlannedCopiesWithEachExpert) {
  const SamplePlan plan = label_plan(settings());
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 3 * 300);
  EXPECT_FALSE(plan.conditional(ModelRole::kClassifier));
  Pool experts(Votes::kConstant);
  label_example(experts.pool, example(), settings(), 0.001);
  EXPECT_EQ(experts.copies(), plan.copies(ModelRole::kClassifier));
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(experts.models[i]->copies(), classifier_copies_at(plan, i)) << i;
}

TEST(SamplePlanTest, EstimateSigmaDrawsThePlannedCopies) {
  const SamplePlan plan = estimate_sigma_plan(1.0, 77, 10, 3, 3);
  CountingModel estimator(3, Votes::kConstant, 1);
  estimate_sigma_example(estimator, example(), 1.0, 77, 10, 3, 3);
  EXPECT_EQ(plan.copies(ModelRole::kEstimator), 77);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 0);
  EXPECT_EQ(estimator.copies(), plan.copies(ModelRole::kEstimator));
}

TEST(SamplePlanTest, DualCertifyDrawsThePlanWhenTheEstimatorDecides) {
  const SamplePlan plan = dual_certify_plan(dual_settings());
  EXPECT_EQ(plan.copies(ModelRole::kEstimator), 50 + 300);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 50 + 300);
  EXPECT_FALSE(plan.conditional(ModelRole::kEstimator));
  EXPECT_TRUE(plan.conditional(ModelRole::kClassifier));
  CountingModel estimator(3, Votes::kConstant, 1);  // certifies σ index 1
  Pool experts(Votes::kConstant);
  const CertifyRecord r = dual_certify_example(estimator, experts.pool, example(), dual_settings());
  ASSERT_EQ(r.sigma_index, 1);
  EXPECT_EQ(estimator.copies(), plan.copies(ModelRole::kEstimator));
  EXPECT_EQ(experts.copies(), plan.copies(ModelRole::kClassifier));  // nothing skipped: the bound is reached
  EXPECT_EQ(experts.models[1]->copies(), plan.copies(ModelRole::kClassifier));
}

TEST(SamplePlanTest, DualCertifySkipsThePlannedClassifierStepWhenTheEstimatorAbstains) {
  const SamplePlan plan = dual_certify_plan(dual_settings());
  CountingModel estimator(3, Votes::kSpread);  // about 1/3 per σ: abstains
  Pool experts(Votes::kConstant);
  const CertifyRecord r = dual_certify_example(estimator, experts.pool, example(), dual_settings());
  ASSERT_EQ(r.prediction, kAbstain);
  EXPECT_EQ(estimator.copies(), plan.copies(ModelRole::kEstimator));
  EXPECT_EQ(experts.copies(), 0);
  EXPECT_LE(experts.copies(), plan.copies(ModelRole::kClassifier));
}

TEST(SamplePlanTest, DualPredictDrawsThePlanAndSkipsTheClassifierOnAbstention) {
  const SamplePlan plan = dual_predict_plan(dual_settings());
  EXPECT_EQ(plan.copies(ModelRole::kEstimator), 300);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 300);
  {
    CountingModel estimator(3, Votes::kConstant, 2);
    Pool experts(Votes::kConstant);
    const PredictRecord r = dual_predict_example(estimator, experts.pool, example(), dual_settings());
    ASSERT_EQ(r.sigma_index, 2);
    EXPECT_EQ(estimator.copies(), plan.copies(ModelRole::kEstimator));
    EXPECT_EQ(experts.copies(), plan.copies(ModelRole::kClassifier));
  }
  {
    CountingModel estimator(3, Votes::kSpread);
    Pool experts(Votes::kConstant);
    const PredictRecord r = dual_predict_example(estimator, experts.pool, example(), dual_settings());
    ASSERT_EQ(r.prediction, kAbstain);
    EXPECT_EQ(estimator.copies(), plan.copies(ModelRole::kEstimator));
    EXPECT_EQ(experts.copies(), 0);
  }
}

TEST(SamplePlanTest, MultiscaleCertifyReachesTheBoundOnlyWhenNoSigmaDecides) {
  const SamplePlan plan = multiscale_certify_plan(settings());
  ASSERT_EQ(plan.steps.size(), 3u);
  EXPECT_EQ(plan.steps.front().sigma_index, 2u);  // largest σ first
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 3 * (50 + 300));
  EXPECT_TRUE(plan.conditional(ModelRole::kClassifier));
  {
    Pool experts(Votes::kSpread);  // below one half at every σ: the cascade runs to the end
    const CertifyRecord r = multiscale_certify_example(experts.pool, example(), settings(), 0.001, AlphaSplit::kBonferroni);
    ASSERT_EQ(r.prediction, kAbstain);
    EXPECT_EQ(experts.copies(), plan.copies(ModelRole::kClassifier));
    for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(experts.models[i]->copies(), classifier_copies_at(plan, i)) << i;
  }
  {
    Pool experts(Votes::kConstant);  // certifies at the largest σ and stops there
    const CertifyRecord r = multiscale_certify_example(experts.pool, example(), settings(), 0.001, AlphaSplit::kBonferroni);
    ASSERT_EQ(r.sigma_index, 2);
    EXPECT_EQ(experts.copies(), plan.steps.front().copies());
    EXPECT_LT(experts.copies(), plan.copies(ModelRole::kClassifier));
  }
}

TEST(SamplePlanTest, MultiscalePredictReachesTheBoundOnlyWhenEverySigmaAbstains) {
  DualConfig dual;
  dual.sigma_candidates = {0.25, 0.5, 1.0};
  PredictConfig predict;
  predict.n = 300;
  predict.batch_size = 128;
  const PerSigmaSettings ps = per_sigma_settings(dual, predict);
  const SamplePlan plan = multiscale_predict_plan(ps);
  EXPECT_EQ(plan.copies(ModelRole::kClassifier), 3 * 300);
  {
    Pool experts(Votes::kSpread);
    const PredictRecord r = multiscale_predict_example(experts.pool, example(), ps, 0.001, AlphaSplit::kBonferroni);
    ASSERT_EQ(r.prediction, kAbstain);
    EXPECT_EQ(experts.copies(), plan.copies(ModelRole::kClassifier));
  }
  {
    Pool experts(Votes::kConstant);
    const PredictRecord r = multiscale_predict_example(experts.pool, example(), ps, 0.001, AlphaSplit::kBonferroni);
    ASSERT_EQ(r.sigma_index, 2);
    EXPECT_EQ(experts.copies(), plan.steps.front().copies());
  }
}

TEST(SamplePlanTest, TheStagePlanIsThePlanOfTheMethodsRoutine) {
  // certify_method_plan / predict_method_plan (what --dry-run costs) pick the routine's plan.
  DualConfig dual;
  dual.sigma_candidates = {0.25, 0.5, 1.0};
  dual.sigma_e = 1.0;
  CertifyConfig certify;
  certify.n0 = 20;
  certify.n = 200;
  for (const Method method : {Method::kGlobal, Method::kDual, Method::kMultiscale}) {
    certify.method = method;
    const PerSigmaSettings ps = per_sigma_settings(dual, certify);
    const SamplePlan expected = method == Method::kGlobal ? certify_plan(certify)
                                : method == Method::kDual ? dual_certify_plan({ps, dual.sigma_e, 0.0005, 0.0005})
                                                          : multiscale_certify_plan(ps);
    const SamplePlan got = certify_method_plan(certify, dual);
    EXPECT_EQ(got.steps.size(), expected.steps.size()) << to_string(method);
    for (const ModelRole role : {ModelRole::kClassifier, ModelRole::kEstimator}) {
      EXPECT_EQ(got.copies(role), expected.copies(role)) << to_string(method);
      EXPECT_EQ(got.conditional(role), expected.conditional(role)) << to_string(method);
    }
  }
  PredictConfig predict;
  predict.n = 90;
  predict.method = Method::kDual;
  EXPECT_EQ(predict_method_plan(predict, dual).copies(ModelRole::kEstimator), 90);
  predict.method = Method::kMultiscale;
  EXPECT_EQ(predict_method_plan(predict, dual).copies(ModelRole::kClassifier), 3 * 90);
}

}  // namespace
}  // namespace dualrs::smooth
