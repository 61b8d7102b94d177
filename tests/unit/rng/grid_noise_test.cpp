// Grid noise (docs/method.md §15): the integer table of the rounded Gaussian against SciPy's
// masses (tests/reference/make_grid_reference.py), its sum and symmetry, a χ² test of 10⁷
// draws, and the counter layout of NoiseSource::fill_grid.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include <boost/math/distributions/chi_squared.hpp>
#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"
#include "dualrs/rng/grid_noise.h"
#include "dualrs/rng/noise.h"

namespace dualrs {
namespace {

constexpr double kTwo64 = 18446744073709551616.0;

nlohmann::json reference() {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/grid_reference.json");
  return nlohmann::json::parse(in);
}

TEST(GridTable, WeightsSumToLessThanTwoToTheSixtyFourAndLeaveAReject) {
  for (const double sigma : {0.12, 0.25, 0.5, 1.0}) {
    const GridTable table(sigma);
    unsigned __int128 total = 0;
    for (const std::uint64_t w : table.weights()) total += w;
    EXPECT_LT(total, static_cast<unsigned __int128>(1) << 64) << sigma;
    EXPECT_EQ(total + table.reject_weight(), static_cast<unsigned __int128>(1) << 64) << sigma;
    // Each floor loses less than one unit, and the tail past K is far below one unit.
    EXPECT_LE(table.reject_weight(), table.weights().size() + 1) << sigma;
    EXPECT_GT(table.reject_weight(), 0u);
  }
}

TEST(GridTable, IsSymmetricAndCutWhereTheTailVanishes) {
  const GridTable table(0.25);
  const std::int32_t k = table.max_offset();
  EXPECT_EQ(k, static_cast<std::int32_t>(std::ceil(kGridTailSigmas * 255 * 0.25 - 0.5)));
  ASSERT_EQ(table.weights().size(), static_cast<std::size_t>(2 * k + 1));
  for (std::int32_t i = 0; i <= k; ++i) {
    EXPECT_EQ(table.weights()[static_cast<std::size_t>(k + i)], table.weights()[static_cast<std::size_t>(k - i)]) << i;
  }
  EXPECT_EQ(table.weights().front(), 0u);  // 10σ out: below 2⁻⁶⁴
}

TEST(GridTable, BinMassesMatchScipyAndNeverExceedThem) {
  const nlohmann::json masses = reference().at("masses");
  for (const auto& [sigma_text, bins] : masses.items()) {
    const GridTable table(std::stod(sigma_text));
    for (const auto& [i_text, m] : bins.items()) {
      const int i = std::stoi(i_text);
      const double expected = m.get<double>();
      const double w = static_cast<double>(table.weights()[static_cast<std::size_t>(table.max_offset() + i)]);
      // ⌊m·2⁶⁴⌋ ≤ m·2⁶⁴ < ⌊m·2⁶⁴⌋ + 1, up to SciPy's double-precision error (relative 1e-13 allowed).
      EXPECT_LE(w, expected * kTwo64 * (1 + 1e-13) + 1) << "sigma " << sigma_text << " bin " << i;
      EXPECT_NEAR(w / kTwo64, expected, expected * 1e-12 + 1e-19) << "sigma " << sigma_text << " bin " << i;
    }
  }
}

TEST(GridTable, DrawInvertsTheCumulativeTable) {
  const GridTable table(0.12);
  const std::int32_t k = table.max_offset();
  std::uint64_t start = 0;
  for (std::int32_t i = -k; i <= k; ++i) {
    const std::uint64_t w = table.weights()[static_cast<std::size_t>(i + k)];
    if (w == 0) continue;
    EXPECT_EQ(table.draw(start), i);
    EXPECT_EQ(table.draw(start + w - 1), i);
    start += w;
  }
  EXPECT_EQ(table.draw(start), GridTable::kReject);
  EXPECT_EQ(table.draw(~std::uint64_t{0}), GridTable::kReject);
}

// 10⁷ draws through fill_grid (the sampler the certificates use) against the exact masses,
// bins with expected count below 5 pooled into the two tails.
TEST(GridTable, TenMillionDrawsPassAChiSquareTest) {
  const double sigma = 0.02;  // 5.1 levels: 40-odd populated bins
  const GridTable& table = GridTable::for_sigma(sigma);
  const NoiseSource noise(5, NoiseStage::kCertifyEstimation, NoiseKind::kGrid);
  constexpr std::int64_t kNumel = 1000;
  constexpr std::int64_t kSamples = 10000;
  const std::vector<std::int32_t> levels(kNumel, 0);
  std::vector<float> out(kNumel * 100);
  std::vector<std::uint8_t> rejected(100);
  const std::int32_t k = table.max_offset();
  std::vector<double> observed(static_cast<std::size_t>(2 * k + 1), 0.0);
  for (std::int64_t s = 0; s < kSamples; s += 100) {
    noise.fill_grid(out.data(), rejected.data(), kNumel, 3, 0, s, 100, table, levels.data());
    for (std::size_t e = 0; e < out.size(); ++e) {
      const auto i = static_cast<std::int32_t>(std::lround(out[e] * 255.0f));
      ASSERT_LE(std::abs(i), k);
      observed[static_cast<std::size_t>(i + k)] += 1;
    }
    for (const std::uint8_t r : rejected) ASSERT_EQ(r, 0);
  }
  const double draws = static_cast<double>(kNumel * kSamples);
  double chi2 = 0, low_obs = 0, low_exp = 0, high_obs = 0, high_exp = 0;
  int dof = -1;
  for (std::int32_t i = -k; i <= k; ++i) {
    const double expected = draws * static_cast<double>(table.weights()[static_cast<std::size_t>(i + k)]) / kTwo64;
    const double got = observed[static_cast<std::size_t>(i + k)];
    if (expected < 5) {
      (i < 0 ? low_obs : high_obs) += got;
      (i < 0 ? low_exp : high_exp) += expected;
      continue;
    }
    chi2 += (got - expected) * (got - expected) / expected;
    ++dof;
  }
  for (const auto& [o, e] : {std::pair{low_obs, low_exp}, std::pair{high_obs, high_exp}}) {
    if (e > 0) {
      chi2 += (o - e) * (o - e) / e;
      ++dof;
    }
  }
  const double p = boost::math::cdf(boost::math::complement(boost::math::chi_squared(dof), chi2));
  EXPECT_GT(p, 1e-4) << "chi2 " << chi2 << " on " << dof << " degrees of freedom";
  EXPECT_GT(dof, 30);
}

TEST(GridNoise, CopiesAreLevelsPlusOffsetsOverTwoFiftyFiveAndSplitFree) {
  const GridTable& table = GridTable::for_sigma(0.25);
  const NoiseSource noise(9, NoiseStage::kLabel, NoiseKind::kGrid);
  constexpr std::int64_t kNumel = 37;  // not a multiple of the 16 elements per Philox step
  std::vector<std::int32_t> levels(kNumel);
  for (std::int64_t e = 0; e < kNumel; ++e) levels[static_cast<std::size_t>(e)] = static_cast<std::int32_t>((e * 41) % 256);
  std::vector<float> whole(kNumel * 6), parts(kNumel * 6);
  std::vector<std::uint8_t> r1(6), r2(6);
  noise.fill_grid(whole.data(), r1.data(), kNumel, 12, 2, 10, 6, table, levels.data());
  noise.fill_grid(parts.data(), r2.data(), kNumel, 12, 2, 10, 2, table, levels.data());
  noise.fill_grid(parts.data() + 2 * kNumel, r2.data() + 2, kNumel, 12, 2, 12, 4, table, levels.data());
  EXPECT_EQ(whole, parts);
  for (std::size_t v = 0; v < whole.size(); ++v) {
    const float scaled = whole[v] * 255.0f;
    EXPECT_NEAR(scaled, std::nearbyint(scaled), 1e-3) << v;
    const std::int32_t level = levels[v % kNumel];
    const auto offset = static_cast<std::int32_t>(std::lround(scaled)) - level;
    EXPECT_LE(std::abs(offset), table.max_offset());
    EXPECT_EQ(whole[v], static_cast<float>(level + offset) / 255.0f) << "the sum is not converted once, exactly";
  }
  // Another stage, example or σ word gives other numbers.
  std::vector<float> other(kNumel * 6);
  noise.fill_grid(other.data(), r2.data(), kNumel, 13, 2, 10, 6, table, levels.data());
  EXPECT_NE(whole, other);
}

TEST(GridNoise, OffGridPixelsAreRefusedNamingTheExample) {
  const std::vector<float> ok{0.0f, 1.0f, 128.0f / 255.0f};
  EXPECT_EQ(grid_levels(ok.data(), 3, 4), (std::vector<std::int32_t>{0, 255, 128}));
  const std::vector<float> resized{0.5f};
  try {
    grid_levels(resized.data(), 1, 77);
    FAIL() << "an off-grid pixel was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 77"), std::string::npos) << e.what();
  }
  const std::vector<float> outside{1.2f};
  EXPECT_THROW(grid_levels(outside.data(), 1, 0), DataError);
  EXPECT_THROW(GridTable(0.0), DataError);
}

}  // namespace
}  // namespace dualrs
