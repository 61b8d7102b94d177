#include "dualrs/rng/noise.h"

#include <Random123/philox.h>

#include <algorithm>

#include "dualrs/core/error.h"
#include "dualrs/rng/gaussian.h"
#include "dualrs/rng/grid_noise.h"
#include "dualrs/rng/philox8.h"

namespace dualrs {
inline namespace rng {
namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
}  // namespace

NoiseSource::NoiseSource(std::uint64_t seed, NoiseStage stage, NoiseKind kind) : seed_(seed), stage_(stage), kind_(kind) {
  const std::uint64_t k = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(stage)));
  key_[0] = static_cast<std::uint32_t>(k);
  key_[1] = static_cast<std::uint32_t>(k >> 32);
}

void NoiseSource::fill(float* out, std::int64_t numel, std::int64_t example, std::uint32_t sigma_index,
                       std::int64_t first_sample, std::int64_t count, float sigma, const float* offset) const {
  if (example < 0 || example > 0xFFFFFFFFLL || first_sample < 0 || count < 0 ||
      first_sample + count > 0x100000000LL || numel < 0 || (numel + 31) / 32 * 8 > 0x100000000LL) {
    DUALRS_THROW(DataError, "NoiseSource::fill: example, sample or element index outside the 32-bit counter");
  }
  // One Philox8 call (eight blocks, 32 words) gives 32 values: layout version 2's element
  // order within a step (gaussian.h) lets the transform run eight lanes at a time.
  constexpr std::int64_t kStep = 4 * detail::kPhiloxLanes;
  const detail::Philox8Fn philox8 = detail::best_philox8();
  const detail::Gaussian32Fn gaussian32 = detail::best_gaussian32();
  detail::Philox8 r;
  alignas(32) float z[kStep];
  for (std::int64_t s = 0; s < count; ++s) {
    float* dst = out + s * numel;
    const auto sample = static_cast<std::uint32_t>(first_sample + s);
    for (std::int64_t e0 = 0; e0 < numel; e0 += kStep) {
      philox8(static_cast<std::uint32_t>(e0 / 4), sample, sigma_index, static_cast<std::uint32_t>(example), key_[0],
              key_[1], r);
      gaussian32(r, z);
      const std::int64_t m = std::min(kStep, numel - e0);
      float* d = dst + e0;
      if (offset != nullptr) {
        const float* o = offset + e0;
        for (std::int64_t e = 0; e < m; ++e) d[e] = sigma * z[e] + o[e];
      } else {
        for (std::int64_t e = 0; e < m; ++e) d[e] = sigma * z[e];
      }
    }
  }
}

void NoiseSource::fill_grid(float* out, std::uint8_t* rejected, std::int64_t numel, std::int64_t example,
                            std::uint32_t sigma_index, std::int64_t first_sample, std::int64_t count,
                            const GridTable& table, const std::int32_t* levels) const {
  if (example < 0 || example > 0xFFFFFFFFLL || first_sample < 0 || count < 0 ||
      first_sample + count > 0x100000000LL || numel < 0 || numel / 2 > 0xFFFFFFFFLL) {
    DUALRS_THROW(DataError, "NoiseSource::fill_grid: example, sample or element index outside the 32-bit counter");
  }
  // Eight Philox blocks per step, two elements per block (64 bits each).
  constexpr std::int64_t kStep = 2 * detail::kPhiloxLanes;
  const detail::Philox8Fn philox8 = detail::best_philox8();
  detail::Philox8 r;
  for (std::int64_t s = 0; s < count; ++s) {
    float* dst = out + s * numel;
    const auto sample = static_cast<std::uint32_t>(first_sample + s);
    bool reject = false;
    for (std::int64_t e0 = 0; e0 < numel; e0 += kStep) {
      philox8(static_cast<std::uint32_t>(e0 / 2), sample, sigma_index, static_cast<std::uint32_t>(example), key_[0],
              key_[1], r);
      const std::int64_t m = std::min(kStep, numel - e0);
      for (std::int64_t e = 0; e < m; ++e) {
        const int lane = static_cast<int>(e / 2);
        const int w = static_cast<int>(e % 2) * 2;
        const std::uint64_t u = (static_cast<std::uint64_t>(r.word[w][lane]) << 32) | r.word[w + 1][lane];
        const std::int32_t offset = table.draw(u);
        if (offset == GridTable::kReject) {
          reject = true;
          dst[e0 + e] = 0.0f;
          continue;
        }
        // x + δ in integers, then one conversion: (level + i)/255 as float. Division (not
        // multiplication by 1/255) gives the float nearest to the grid value, as the loaders' k/255.
        dst[e0 + e] = static_cast<float>(levels[e0 + e] + offset) / 255.0f;
      }
    }
    rejected[s] = reject ? 1 : 0;
  }
}

std::uint32_t NoiseSource::uniform_index(std::int64_t example, std::uint32_t sigma_index, std::int64_t sample,
                                         std::uint32_t bound) const {
  if (example < 0 || example > 0xFFFFFFFFLL || sample < 0 || sample > 0xFFFFFFFFLL) {
    DUALRS_THROW(DataError, "NoiseSource::uniform_index: example or sample index outside the 32-bit counter");
  }
  if (bound == 0) DUALRS_THROW(DataError, "NoiseSource::uniform_index: bound must be >= 1");
  using Philox = r123::Philox4x32_R<10>;
  Philox philox;
  const Philox::key_type key = {{key_[0], key_[1]}};
  const Philox::ctr_type ctr = {{0u, static_cast<std::uint32_t>(sample), sigma_index, static_cast<std::uint32_t>(example)}};
  const Philox::ctr_type r = philox(ctr, key);
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(r[0]) * bound) >> 32);
}

}  // namespace rng
}  // namespace dualrs
