// The normal transform of RNG layout version 2: the AVX2 path gives the portable path's bits,
// ln and sin/cos are within a few float32 ulps of double-precision libm over their whole
// input sets, and the quadrant reduction puts every angle where it belongs.

#include "dualrs/rng/gaussian.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace dualrs {
namespace {

using detail::gaussian_pair;
using detail::log_unit;
using detail::Philox8;
using detail::sincos_turn;

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// |got − want| in units of the float32 ulp at |want| (double reference).
double ulps(float got, double want) {
  const double aw = std::fabs(want);
  const int e = aw > 0 ? std::ilogb(aw) : -149;
  const double ulp = std::ldexp(1.0, std::max(e - 23, -149));
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

TEST(GaussianTest, Avx2PathGivesThePortableBits) {
  if (!detail::cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 gen(2026);
  std::vector<std::uint32_t> special = {0u,          1u,          0xFFu,       0x100u,      0x3FFFFFu,   0x400000u,
                                        0x3FFFFF00u, 0x40000000u, 0x7FFFFFFFu, 0x80000000u, 0xBFFFFFFFu, 0xC0000000u,
                                        0xFFFFFF00u, 0xFFFFFFFEu, 0xFFFFFFFFu, 0x001FFFFFu, 0x00200000u, 0x3F3504F3u};
  for (int trial = 0; trial < (1 << 17); ++trial) {
    Philox8 w;
    for (int k = 0; k < 4; ++k) {
      for (int l = 0; l < detail::kPhiloxLanes; ++l) {
        const bool pick_special = trial < 64 && (gen() % 2 == 0);
        w.word[k][l] = pick_special ? special[gen() % special.size()] : static_cast<std::uint32_t>(gen());
      }
    }
    float a[32], b[32];
    detail::gaussian32_portable(w, a);
    detail::gaussian32_avx2(w, b);
    ASSERT_EQ(std::memcmp(a, b, sizeof a), 0) << "trial " << trial;
  }
}

TEST(GaussianTest, ElementOrderOfOneCall) {
  Philox8 w;
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < detail::kPhiloxLanes; ++l) w.word[k][l] = 0x9E3779B9u * static_cast<std::uint32_t>(8 * k + l + 1);
  float z[32];
  detail::best_gaussian32()(w, z);
  for (int l = 0; l < detail::kPhiloxLanes; ++l) {
    float c, s;
    gaussian_pair(w.word[0][l], w.word[1][l], c, s);
    EXPECT_EQ(bits(z[l]), bits(c));
    EXPECT_EQ(bits(z[8 + l]), bits(s));
    gaussian_pair(w.word[2][l], w.word[3][l], c, s);
    EXPECT_EQ(bits(z[16 + l]), bits(c));
    EXPECT_EQ(bits(z[24 + l]), bits(s));
  }
}

TEST(GaussianTest, LogWithinTwoUlpsOfDoubleLogOnTheUniformsItSees) {
  // u = float(b)·2⁻³² + 2⁻³³ for every 251st b, and the 4,096 smallest and largest b exhaustively.
  double worst = 0.0;
  std::uint32_t worst_b = 0;
  auto check = [&](std::uint32_t b) {
    const float u = static_cast<float>(b) * 0x1p-32f + 0x1p-33f;
    const double want = std::log(static_cast<double>(u));
    const float got = log_unit(u);
    if (want == 0.0) {
      ASSERT_EQ(got, 0.0f) << "b " << b;
      return;
    }
    const double e = ulps(got, want);
    if (e > worst) {
      worst = e;
      worst_b = b;
    }
  };
  for (std::uint64_t b = 0; b <= 0xFFFFFFFFull; b += 251) check(static_cast<std::uint32_t>(b));
  for (std::uint32_t b = 0; b < 4096; ++b) {
    check(b);
    check(0xFFFFFFFFu - b);
  }
  EXPECT_LE(worst, 2.0) << "worst at b = " << worst_b;
  std::printf("log_unit: largest error %.3f ulp (b = %u)\n", worst, worst_b);
}

TEST(GaussianTest, SinCosWithinTwoUlpsOnEveryAngle) {
  // All 2²⁴ angles; the reference angle is exact in double (k + ½ has 25 bits).
  const double two_pi = 2.0 * 3.14159265358979323846;
  double worst_s = 0.0, worst_c = 0.0, worst_abs = 0.0;
  for (std::uint32_t k = 0; k < (1u << 24); ++k) {
    float s, c;
    sincos_turn(k << 8 | (k & 0xFFu), s, c);  // the low 8 bits must not matter
    const double theta = two_pi * (static_cast<double>(k) + 0.5) / 16777216.0;
    const double ws = std::sin(theta), wc = std::cos(theta);
    worst_abs = std::max({worst_abs, std::fabs(s - ws), std::fabs(c - wc)});
    worst_s = std::max(worst_s, ulps(s, ws));
    worst_c = std::max(worst_c, ulps(c, wc));
    ASSERT_LE(std::fabs(static_cast<double>(s) * s + static_cast<double>(c) * c - 1.0), 4e-7) << "k " << k;
  }
  // The reduction is exact, so what is left is float(2π)'s error (2.8e-8 relative), the
  // rounding of φ and the polynomial's; measured here: 1.89 ulp at worst.
  EXPECT_LE(worst_s, 2.0);
  EXPECT_LE(worst_c, 2.0);
  EXPECT_LE(worst_abs, 0x1p-23);
  std::printf("sincos_turn: largest error %.3f ulp (sin), %.3f ulp (cos), %.3g absolute\n", worst_s, worst_c, worst_abs);
}

TEST(GaussianTest, PairIsRadiusTimesDirection) {
  std::mt19937 gen(7);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t a = static_cast<std::uint32_t>(gen()), b = static_cast<std::uint32_t>(gen());
    float zc, zs;
    gaussian_pair(a, b, zc, zs);
    const double u = static_cast<double>(static_cast<float>(b) * 0x1p-32f + 0x1p-33f);
    const double r = std::sqrt(-2.0 * std::log(u));
    const double theta = 2.0 * 3.14159265358979323846 * ((a >> 8) + 0.5) / 16777216.0;
    ASSERT_NEAR(zc, r * std::cos(theta), 4e-7 * (1.0 + r)) << a << " " << b;
    ASSERT_NEAR(zs, r * std::sin(theta), 4e-7 * (1.0 + r)) << a << " " << b;
  }
  // The extremes of u: the largest radius √(2·33·ln 2) and radius 0 at u = 1.
  float zc, zs;
  gaussian_pair(0u, 0u, zc, zs);
  EXPECT_NEAR(std::hypot(zc, zs), std::sqrt(66.0 * std::log(2.0)), 1e-5);
  gaussian_pair(0u, 0xFFFFFFFFu, zc, zs);
  EXPECT_EQ(zc, 0.0f);
  EXPECT_EQ(zs, 0.0f);
}

}  // namespace
}  // namespace dualrs
