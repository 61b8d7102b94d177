// The eight-lane Philox4x32-10 and the noise built on it give exactly Random123's numbers,
// on the AVX2 path and the portable path alike, and exactly the independently computed
// reference numbers of RNG layout version 2 (tests/reference/make_noise_reference.py).

#include "dualrs/rng/philox8.h"

#include <gtest/gtest.h>

#include <Random123/philox.h>

#include <cstring>
#include <string>
#include <vector>

#include "../core/csv_reader.h"
#include "dualrs/rng/gaussian.h"
#include "dualrs/rng/noise.h"

namespace dualrs {
namespace {

using rng::detail::Philox8;
using Philox = r123::Philox4x32_R<10>;

std::vector<rng::detail::Philox8Fn> implementations() {
  std::vector<rng::detail::Philox8Fn> fns = {&rng::detail::philox8_portable};
  if (rng::detail::cpu_has_avx2()) fns.push_back(&rng::detail::philox8_avx2);
  return fns;
}

TEST(Philox8Test, KnownAnswerVectorsOfRandom123) {
  // kat_vectors of Random123: philox4x32 with 10 rounds, lane 0 carries the counter.
  struct Kat {
    std::uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (auto fn : implementations()) {
    for (const Kat& k : kats) {
      Philox8 out;
      fn(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1], out);
      for (int w = 0; w < 4; ++w) EXPECT_EQ(out.word[w][0], k.out[w]) << "word " << w;
    }
  }
}

TEST(Philox8Test, EveryLaneMatchesRandom123IncludingCounterWrap) {
  const Philox philox;
  const std::uint32_t firsts[] = {0u, 1u, 195u, 0xFFFFFFFAu};  // the last wraps inside the lanes
  for (auto fn : implementations()) {
    for (std::uint32_t first : firsts) {
      Philox8 out;
      fn(first, 77u, 2u, 0xDEADBEEFu, 0x12345678u, 0x9ABCDEF0u, out);
      for (int l = 0; l < rng::detail::kPhiloxLanes; ++l) {
        const Philox::ctr_type ctr = {{first + static_cast<std::uint32_t>(l), 77u, 2u, 0xDEADBEEFu}};
        const Philox::ctr_type ref = philox(ctr, {{0x12345678u, 0x9ABCDEF0u}});
        for (int w = 0; w < 4; ++w) ASSERT_EQ(out.word[w][l], ref[w]) << "first " << first << " lane " << l;
      }
    }
  }
}

// NoiseSource::fill written the plain way, one Random123 call per block and the scalar
// transform per pair (layout version 2: block b = 8g + l feeds elements 32g + l + {0, 8, 16, 24}).
std::vector<float> scalar_fill(const NoiseSource& noise, std::int64_t numel, std::int64_t example,
                               std::uint32_t sigma_index, std::int64_t first, std::int64_t count, float sigma,
                               const float* offset) {
  std::vector<float> out(static_cast<std::size_t>(numel * count));
  const Philox philox;
  const std::int64_t blocks = 8 * ((numel + 31) / 32);
  for (std::int64_t s = 0; s < count; ++s) {
    for (std::int64_t b = 0; b < blocks; ++b) {
      const Philox::ctr_type ctr = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(first + s), sigma_index,
                                     static_cast<std::uint32_t>(example)}};
      const Philox::ctr_type r = philox(ctr, {{noise.key0(), noise.key1()}});
      float z[4];
      detail::gaussian_pair(r[0], r[1], z[0], z[1]);
      detail::gaussian_pair(r[2], r[3], z[2], z[3]);
      for (std::int64_t j = 0; j < 4; ++j) {
        const std::int64_t e = 32 * (b / 8) + b % 8 + 8 * j;
        if (e >= numel) continue;
        float v = sigma * z[j];
        if (offset != nullptr) v += offset[e];
        out[static_cast<std::size_t>(s * numel + e)] = v;
      }
    }
  }
  return out;
}

TEST(NoiseFillTest, SameBitsAsOneRandom123CallPerBlock) {
  const NoiseSource noise(31337, NoiseStage::kCertifyEstimation);
  std::vector<float> offset(3072);
  for (std::size_t e = 0; e < offset.size(); ++e) offset[e] = static_cast<float>(e % 256) / 255.0f;
  std::vector<std::int64_t> sizes;
  for (std::int64_t n = 1; n <= 70; ++n) sizes.push_back(n);
  for (std::int64_t n : {784, 785, 3072}) sizes.push_back(n);
  for (std::int64_t numel : sizes) {
    for (const float* off : {static_cast<const float*>(nullptr), static_cast<const float*>(offset.data())}) {
      std::vector<float> fast(static_cast<std::size_t>(numel * 3));
      noise.fill(fast.data(), numel, 9, 1, 40, 3, 0.75f, off);
      const auto ref = scalar_fill(noise, numel, 9, 1, 40, 3, 0.75f, off);
      ASSERT_EQ(std::memcmp(fast.data(), ref.data(), ref.size() * sizeof(float)), 0)
          << "numel " << numel << (off ? " with offset" : "");
    }
  }
}

TEST(NoiseFillTest, MatchesTheIndependentReferenceOfLayoutVersion2) {
  ASSERT_EQ(kRngLayoutVersion, 2) << "a new layout needs new reference numbers";
  // The cases of tests/reference/make_noise_reference.py (CASES).
  struct Case {
    std::uint64_t seed;
    NoiseStage stage;
    std::int64_t example;
    std::uint32_t sigma_index;
    std::int64_t first, count, numel;
    float sigma;
    bool offset;
  };
  const Case cases[] = {
      {0, NoiseStage::kCertifyEstimation, 0, 0, 0, 2, 785, 0.5f, false},
      {1234, NoiseStage::kLabel, 42, 2, 7, 3, 13, 1.0f, true},
      {2026, NoiseStage::kEstimatorEstimation, 0xFFFFFFFFLL, 1, 0xFFFFFFFELL, 2, 70, 0.25f, false},
  };
  const auto table = testing::read_csv(std::string(DUALRS_TEST_DATA_DIR) + "/noise_reference.csv");
  std::vector<std::vector<float>> drawn;
  for (const Case& c : cases) {
    std::vector<float> offset(static_cast<std::size_t>(c.numel));
    for (std::size_t e = 0; e < offset.size(); ++e) offset[e] = static_cast<float>(e % 256) / 255.0f;
    std::vector<float> out(static_cast<std::size_t>(c.count * c.numel));
    NoiseSource(c.seed, c.stage).fill(out.data(), c.numel, c.example, c.sigma_index, c.first, c.count, c.sigma,
                                      c.offset ? offset.data() : nullptr);
    drawn.push_back(out);
  }
  std::size_t expected_rows = 0;
  for (const Case& c : cases) expected_rows += static_cast<std::size_t>(c.count * c.numel);
  ASSERT_EQ(table.rows.size(), expected_rows);
  for (const auto& row : table.rows) {
    const auto i = static_cast<std::size_t>(row[table.col("case")]);
    const auto s = static_cast<std::int64_t>(row[table.col("sample")]);
    const auto e = static_cast<std::int64_t>(row[table.col("element")]);
    const auto bits = static_cast<std::uint32_t>(row[table.col("bits")]);
    std::uint32_t got = 0;
    std::memcpy(&got, &drawn[i][static_cast<std::size_t>(s * cases[i].numel + e)], sizeof(got));
    ASSERT_EQ(got, bits) << "case " << i << " sample " << s << " element " << e;
  }
}

}  // namespace
}  // namespace dualrs
