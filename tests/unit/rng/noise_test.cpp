// Counter-based noise: bit-identical however a sample range is split or ordered, and
// N(0, sigma^2) by moments and a Kolmogorov–Smirnov test at sound tolerances.

#include "dualrs/rng/noise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <boost/math/distributions/normal.hpp>

#include "dualrs/core/error.h"

namespace dualrs {
namespace {

constexpr std::int64_t kNumel = 785;  // odd on purpose: exercises the tail block

std::vector<float> draw(const NoiseSource& noise, std::int64_t example, std::uint32_t sigma_index, std::int64_t first,
                        std::int64_t count, float sigma = 1.0f) {
  std::vector<float> out(static_cast<std::size_t>(count * kNumel));
  noise.fill(out.data(), kNumel, example, sigma_index, first, count, sigma);
  return out;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(NoiseTest, SameNumbersWhateverTheBatching) {
  const NoiseSource noise(1234, NoiseStage::kCertifyEstimation);
  const auto whole = draw(noise, 42, 1, 100, 300);
  for (std::int64_t batch : {1, 7, 64, 299, 1000}) {
    std::vector<float> pieces;
    for (std::int64_t s = 100; s < 400; s += batch) {
      const auto part = draw(noise, 42, 1, s, std::min<std::int64_t>(batch, 400 - s));
      pieces.insert(pieces.end(), part.begin(), part.end());
    }
    EXPECT_TRUE(bit_equal(whole, pieces)) << "batch " << batch;
  }
}

TEST(NoiseTest, SameNumbersWhateverTheOrder) {
  const NoiseSource noise(99, NoiseStage::kCertifySelection);
  const auto whole = draw(noise, 7, 0, 0, 64);
  std::vector<std::int64_t> order(64);
  for (std::int64_t i = 0; i < 64; ++i) order[static_cast<std::size_t>(i)] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  std::vector<float> assembled(whole.size());
  // Interleave other examples' draws too: the source is stateless.
  for (auto s : order) {
    (void)draw(noise, 8, 0, s, 1);
    const auto one = draw(noise, 7, 0, s, 1);
    std::copy(one.begin(), one.end(), assembled.begin() + s * kNumel);
  }
  EXPECT_TRUE(bit_equal(whole, assembled));
}

TEST(NoiseTest, SigmaScalesExactly) {
  const NoiseSource noise(3, NoiseStage::kPredict);
  const auto one = draw(noise, 0, 0, 0, 4, 1.0f);
  const auto two = draw(noise, 0, 0, 0, 4, 2.0f);
  for (std::size_t i = 0; i < one.size(); ++i) ASSERT_EQ(two[i], 2.0f * one[i]);
}

TEST(NoiseTest, StreamsDifferBySeedStageExampleSigmaIndexAndSample) {
  const auto base = draw(NoiseSource(1, NoiseStage::kLabel), 5, 2, 10, 1);
  EXPECT_FALSE(bit_equal(base, draw(NoiseSource(2, NoiseStage::kLabel), 5, 2, 10, 1)));
  EXPECT_FALSE(bit_equal(base, draw(NoiseSource(1, NoiseStage::kPredict), 5, 2, 10, 1)));
  EXPECT_FALSE(bit_equal(base, draw(NoiseSource(1, NoiseStage::kLabel), 6, 2, 10, 1)));
  EXPECT_FALSE(bit_equal(base, draw(NoiseSource(1, NoiseStage::kLabel), 5, 3, 10, 1)));
  EXPECT_FALSE(bit_equal(base, draw(NoiseSource(1, NoiseStage::kLabel), 5, 2, 11, 1)));
  EXPECT_TRUE(bit_equal(base, draw(NoiseSource(1, NoiseStage::kLabel), 5, 2, 10, 1)));
}

TEST(NoiseTest, RejectsIndicesOutsideTheCounter) {
  const NoiseSource noise(0, NoiseStage::kLabel);
  float out[4];
  EXPECT_THROW(noise.fill(out, 4, std::int64_t{1} << 33, 0, 0, 1, 1.0f), DataError);
  EXPECT_THROW(noise.fill(out, 4, 0, 0, (std::int64_t{1} << 32), 1, 1.0f), DataError);
  EXPECT_THROW(noise.fill(out, 4, -1, 0, 0, 1, 1.0f), DataError);
}

// 300,000 values (382 samples x 785): tolerances at ~5.5 standard errors, i.e. a false
// alarm probability below 1e-7 for a correct N(0, 1) generator.
class NoiseMomentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    values_ = draw(NoiseSource(2026, NoiseStage::kCertifyEstimation), 17, 0, 0, 382, 0.5f);
    for (auto& v : values_) v /= 0.5f;
  }
  std::vector<float> values_;
};

TEST_F(NoiseMomentsTest, MeanVarianceSkewKurtosis) {
  const double n = static_cast<double>(values_.size());
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  for (float v : values_) {
    const double x = v;
    m1 += x;
    m2 += x * x;
    m3 += x * x * x;
    m4 += x * x * x * x;
  }
  m1 /= n;
  m2 /= n;
  m3 /= n;
  m4 /= n;
  const double z = 5.5;
  EXPECT_LT(std::abs(m1), z / std::sqrt(n));                 // sd of mean: 1/sqrt(n)
  EXPECT_LT(std::abs(m2 - 1.0), z * std::sqrt(2.0 / n));     // sd of E[x^2]: sqrt(2/n)
  EXPECT_LT(std::abs(m3), z * std::sqrt(15.0 / n));          // sd of E[x^3]: sqrt(15/n)
  EXPECT_LT(std::abs(m4 - 3.0), z * std::sqrt(96.0 / n));    // sd of E[x^4]: sqrt(96/n)
}

TEST_F(NoiseMomentsTest, KolmogorovSmirnovAgainstStandardNormal) {
  std::vector<double> sorted(values_.begin(), values_.end());
  std::sort(sorted.begin(), sorted.end());
  const boost::math::normal_distribution<double> normal;
  const double n = static_cast<double>(sorted.size());
  double d = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const double f = boost::math::cdf(normal, sorted[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  // Asymptotic KS critical value at level 1e-6: sqrt(-ln(alpha/2) / 2) / sqrt(n).
  const double critical = std::sqrt(-std::log(1e-6 / 2) / 2) / std::sqrt(n);
  EXPECT_LT(d, critical) << "KS statistic " << d;
}

TEST_F(NoiseMomentsTest, NeighboursAreUncorrelated) {
  // Lag 1 (within a Box–Muller pair), lag 2 (across pairs) and lag 4 (across Philox blocks).
  for (std::size_t lag : {1u, 2u, 4u, 785u}) {
    double sum = 0;
    const std::size_t m = values_.size() - lag;
    for (std::size_t i = 0; i < m; ++i) sum += static_cast<double>(values_[i]) * values_[i + lag];
    EXPECT_LT(std::abs(sum / static_cast<double>(m)), 5.5 / std::sqrt(static_cast<double>(m))) << "lag " << lag;
  }
}

}  // namespace
}  // namespace dualrs

namespace dualrs {
namespace {

TEST(NoiseOffsetTest, OffsetIsAddedAfterScaling) {
  const NoiseSource noise(77, NoiseStage::kCertifySelection);
  std::vector<float> offset(kNumel);
  for (std::int64_t e = 0; e < kNumel; ++e) offset[static_cast<std::size_t>(e)] = static_cast<float>(e % 256) / 255.0f;
  const auto plain = draw(noise, 4, 2, 30, 5, 0.5f);
  std::vector<float> shifted(plain.size());
  noise.fill(shifted.data(), kNumel, 4, 2, 30, 5, 0.5f, offset.data());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(shifted[i], plain[i] + offset[i % static_cast<std::size_t>(kNumel)]) << i;
  }
}

}  // namespace
}  // namespace dualrs
