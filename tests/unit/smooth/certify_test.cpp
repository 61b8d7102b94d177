// Monte Carlo voting and CERTIFY/PREDICT over a model whose vote is a known function of the
// noise, so expected counts can be computed straight from the noise source.

#include "dualrs/smooth/certify.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"
#include "dualrs/smooth/sample_counts.h"
#include "test_models.h"

namespace dualrs::smooth {
namespace {

// Votes class 1 when pixel (0, 0, 0) exceeds 0.5, else class 0 (of 3 classes). With
// `nan_above` set, copies whose pixel exceeds it get NaN logits.
class ThresholdModel : public model::BaseModel {
 public:
  explicit ThresholdModel(float nan_above = INFINITY) : nan_above_(nan_above) {}
  at::Tensor logits(const at::Tensor& x) override {
    ++calls;
    last_batch = x.size(0);
    const auto v = x.select(1, 0).select(1, 0).select(1, 0) - 0.5f;
    auto out = torch::stack({-v, v, torch::full_like(v, -10.0f)}, 1);
    const auto bad = (x.select(1, 0).select(1, 0).select(1, 0) > nan_above_).unsqueeze(1).expand_as(out);
    return out.masked_fill(bad, NAN);
  }
  std::int64_t num_classes() const override { return 3; }
  std::string describe() const override { return "threshold"; }
  void set_training(bool) override {}
  int calls = 0;
  std::int64_t last_batch = 0;

 private:
  float nan_above_;
};

constexpr std::int64_t kC = 1, kH = 4, kW = 4;

// Copies whose pixel 0 exceeds `threshold`, computed directly from the noise source:
// (sigma * z0 + x0) > threshold in float.
std::int64_t copies_above(const NoiseSource& noise, std::int64_t example, float x0, float sigma, std::int64_t first,
                          std::int64_t count, float threshold) {
  std::vector<float> z(static_cast<std::size_t>(count * kC * kH * kW));
  noise.fill(z.data(), kC * kH * kW, example, 0, first, count, sigma);
  std::int64_t above = 0;
  for (std::int64_t s = 0; s < count; ++s) above += (z[static_cast<std::size_t>(s * kC * kH * kW)] + x0 > threshold) ? 1 : 0;
  return above;
}

// Class-1 votes of ThresholdModel.
std::int64_t expected_votes(const NoiseSource& noise, std::int64_t example, float x0, float sigma, std::int64_t first,
                            std::int64_t count) {
  return copies_above(noise, example, x0, sigma, first, count, 0.5f);
}

TEST(SampleCountsTest, VotesEqualTheNoiseComputedDirectly) {
  ThresholdModel model;
  const auto x = torch::full({kC, kH, kW}, 0.45f);
  const NoiseSource noise(11, NoiseStage::kCertifyEstimation);
  const SampleCounts counts = sample_counts(model, x, noise, {3, 0, 0.3, 50, 1000, 128});
  const std::int64_t ones = expected_votes(noise, 3, 0.45f, 0.3f, 50, 1000);
  EXPECT_EQ(counts.votes, (Counts{1000 - ones, ones, 0}));
  EXPECT_EQ(counts.non_finite, 0);
  EXPECT_EQ(model.calls, 8);  // ceil(1000 / 128) forward passes
  EXPECT_EQ(model.last_batch, 1000 - 7 * 128);
  // P(class 1) = P(z > 0.05/0.3): the vote share must be near it.
  const double p = 0.5 * std::erfc((0.05 / 0.3) / std::sqrt(2.0));
  EXPECT_NEAR(static_cast<double>(ones) / 1000.0, p, 5.5 * std::sqrt(p * (1 - p) / 1000.0));
}

TEST(SampleCountsTest, BatchSizeDoesNotChangeTheCounts) {
  const auto x = torch::full({kC, kH, kW}, 0.5f);
  const NoiseSource noise(5, NoiseStage::kCertifySelection);
  ThresholdModel model;
  const Counts reference = sample_counts(model, x, noise, {9, 0, 0.5, 0, 777, 777}).votes;
  for (std::int64_t batch : {1, 10, 100, 1000}) {
    EXPECT_EQ(sample_counts(model, x, noise, {9, 0, 0.5, 0, 777, batch}).votes, reference) << batch;
  }
}

TEST(SampleCountsTest, NanPixelsAreADataErrorNamingTheExample) {
  ThresholdModel model;
  auto x = torch::full({kC, kH, kW}, 0.5f);
  x[0][2][3] = NAN;
  try {
    sample_counts(model, x, NoiseSource(0, NoiseStage::kPredict), {1234, 0, 0.5, 0, 10, 10});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("1234"), std::string::npos) << e.what();
  }
}

TEST(SampleCountsTest, NonFiniteLogitsVoteForNoClass) {
  ThresholdModel model(/*nan_above=*/1.0f);
  const auto x = torch::full({kC, kH, kW}, 0.5f);
  const NoiseSource noise(8, NoiseStage::kPredict);
  const SampleCounts counts = sample_counts(model, x, noise, {0, 0, 1.0, 0, 500, 100});
  EXPECT_GT(counts.non_finite, 0);
  EXPECT_EQ(counts.total(), 500);
  std::vector<float> z(500 * kC * kH * kW);
  noise.fill(z.data(), kC * kH * kW, 0, 0, 0, 500, 1.0f);
  std::int64_t nan_expected = 0;
  for (std::int64_t s = 0; s < 500; ++s) nan_expected += (z[static_cast<std::size_t>(s * kC * kH * kW)] + 0.5f > 1.0f) ? 1 : 0;
  EXPECT_EQ(counts.non_finite, nan_expected);
}

TEST(CertifyTest, CertifyMatchesTheDecisionRuleOnIndependentlyComputedCounts) {
  ThresholdModel model;
  const auto x = torch::full({kC, kH, kW}, 0.9f);  // far above the threshold: class 1
  CertifyConfig config;
  config.sigma = 0.25;
  config.n0 = 100;
  config.n = 2000;
  config.alpha = 0.001;
  config.batch_size = 300;
  config.seed = 21;
  const CertifyRecord rec = certify_example(model, {17, 1, x}, config);
  const NoiseSource est(21, NoiseStage::kCertifyEstimation);
  const std::int64_t n_a = expected_votes(est, 17, 0.9f, 0.25f, 0, 2000);
  EXPECT_EQ(rec.prediction, 1);
  EXPECT_EQ(rec.n_a, n_a);
  const double p = stats::clopper_pearson_lower(n_a, 2000, 0.001);
  EXPECT_EQ(rec.p_a_lower, stats::toward_zero(p));
  EXPECT_EQ(rec.radius, safe_radius(0.25, p));
  EXPECT_TRUE(rec.correct());
  // Selection copies are a different stream from estimation copies.
  const NoiseSource sel(21, NoiseStage::kCertifySelection);
  EXPECT_EQ(rec.counts_selection[1], expected_votes(sel, 17, 0.9f, 0.25f, 0, 100));
}

TEST(CertifyTest, NearTheBoundaryItAbstains) {
  ThresholdModel model;
  const auto x = torch::full({kC, kH, kW}, 0.5f);  // a coin flip between class 0 and 1
  CertifyConfig config;
  config.sigma = 0.5;
  config.n0 = 50;
  config.n = 1000;
  const CertifyRecord rec = certify_example(model, {0, 1, x}, config);
  EXPECT_EQ(rec.prediction, kAbstain);
  EXPECT_EQ(rec.radius, 0.0);
  PredictConfig pc;
  pc.sigma = 0.5;
  pc.n = 1000;
  EXPECT_EQ(predict_example(model, {0, 1, x}, pc).prediction, kAbstain);
}

TEST(CertifyTest, InvalidSettingsAreReportedTogether) {
  CertifyConfig config;
  config.sigma = -1;
  config.alpha = 1.0;
  config.n0 = 0;
  config.batch_size = 0;
  try {
    validate(config);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.issues().size(), 4u) << e.what();
  }
}

TEST(CertifyTest, CertifyAllSendsEveryRecordInOrder) {
  ThresholdModel model;
  MemorySink sink;
  CertifyConfig config;
  config.n0 = 10;
  config.n = 100;
  certify_all(model, 3, [](std::int64_t i) { return Example{10 + i, 1, torch::full({kC, kH, kW}, 0.9f)}; }, config, sink);
  ASSERT_EQ(sink.certified.size(), 3u);
  EXPECT_EQ(sink.certified[2].idx, 12);
}

}  // namespace
}  // namespace dualrs::smooth

namespace dualrs::smooth {
namespace {

// Copies whose pixel (0,0,0) exceeds 1.0 get NaN logits: with x0 = 0.6 and sigma 0.5 that is
// z0 > 0.8, about a fifth of the copies.
std::int64_t expected_nan(const NoiseSource& noise, std::int64_t example, std::int64_t count) {
  return copies_above(noise, example, 0.6f, 0.5f, 0, count, 1.0f);
}

TEST(NonFiniteTest, CertifyCountsNonFiniteCopiesAndAbstains) {
  ThresholdModel model(/*nan_above=*/1.0f);
  CertifyConfig config;
  config.sigma = 0.5;
  config.n0 = 40;
  config.n = 400;
  config.alpha = 0.001;
  config.batch_size = 100;
  config.seed = 4;
  const CertifyRecord r = certify_example(model, {6, 1, torch::full({kC, kH, kW}, 0.6f)}, config);
  const std::int64_t want = expected_nan(NoiseSource(4, NoiseStage::kCertifySelection), 6, 40) +
                            expected_nan(NoiseSource(4, NoiseStage::kCertifyEstimation), 6, 400);
  ASSERT_GT(want, 0);
  EXPECT_EQ(r.non_finite, want);
  EXPECT_EQ(r.prediction, kAbstain);
  EXPECT_EQ(r.radius, 0.0);
  EXPECT_FALSE(r.correct());
  // Without NaN the same example is certified: the abstention is the NaN rule's doing.
  ThresholdModel clean;
  const CertifyRecord ok = certify_example(clean, {6, 1, torch::full({kC, kH, kW}, 0.9f)}, config);
  EXPECT_EQ(ok.non_finite, 0);
  EXPECT_EQ(ok.prediction, 1);
}

TEST(NonFiniteTest, PredictCountsNonFiniteCopiesAndAbstains) {
  ThresholdModel model(/*nan_above=*/1.0f);
  PredictConfig config;
  config.sigma = 0.5;
  config.n = 300;
  config.batch_size = 64;
  config.seed = 8;
  const PredictRecord r = predict_example(model, {2, 1, torch::full({kC, kH, kW}, 0.6f)}, config);
  EXPECT_EQ(r.non_finite, expected_nan(NoiseSource(8, NoiseStage::kPredict), 2, 300));
  EXPECT_GT(r.non_finite, 0);
  EXPECT_EQ(r.prediction, kAbstain);
}

}  // namespace
}  // namespace dualrs::smooth
