#include "dualrs/rng/noise.h"

#include <Random123/boxmuller.hpp>
#include <Random123/philox.h>

#include <stdexcept>

namespace dualrs {
namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
}  // namespace

NoiseSource::NoiseSource(std::uint64_t seed, NoiseStage stage) : seed_(seed), stage_(stage) {
  const std::uint64_t k = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(stage)));
  key_[0] = static_cast<std::uint32_t>(k);
  key_[1] = static_cast<std::uint32_t>(k >> 32);
}

void NoiseSource::fill(float* out, std::int64_t numel, std::int64_t example, std::uint32_t sigma_index,
                       std::int64_t first_sample, std::int64_t count, float sigma, const float* offset) const {
  if (example < 0 || example > 0xFFFFFFFFLL || first_sample < 0 || count < 0 ||
      first_sample + count > 0x100000000LL || numel < 0 || numel / 4 > 0xFFFFFFFFLL) {
    throw std::out_of_range("NoiseSource::fill: example, sample or element index outside the 32-bit counter");
  }
  using Philox = r123::Philox4x32_R<10>;
  Philox philox;
  const Philox::key_type key = {{key_[0], key_[1]}};
  const std::int64_t full_blocks = numel / 4;
  const std::int64_t tail = numel % 4;
  for (std::int64_t s = 0; s < count; ++s) {
    float* dst = out + s * numel;
    Philox::ctr_type ctr = {{0u, static_cast<std::uint32_t>(first_sample + s), sigma_index,
                             static_cast<std::uint32_t>(example)}};
    for (std::int64_t b = 0; b < full_blocks; ++b) {
      ctr[0] = static_cast<std::uint32_t>(b);
      const Philox::ctr_type r = philox(ctr, key);
      const r123::float2 z01 = r123::boxmuller(r[0], r[1]);
      const r123::float2 z23 = r123::boxmuller(r[2], r[3]);
      dst[4 * b + 0] = sigma * z01.x;
      dst[4 * b + 1] = sigma * z01.y;
      dst[4 * b + 2] = sigma * z23.x;
      dst[4 * b + 3] = sigma * z23.y;
      if (offset != nullptr) {
        for (int e = 0; e < 4; ++e) dst[4 * b + e] += offset[4 * b + e];
      }
    }
    if (tail > 0) {
      ctr[0] = static_cast<std::uint32_t>(full_blocks);
      const Philox::ctr_type r = philox(ctr, key);
      const r123::float2 z01 = r123::boxmuller(r[0], r[1]);
      const r123::float2 z23 = r123::boxmuller(r[2], r[3]);
      const float z[4] = {z01.x, z01.y, z23.x, z23.y};
      for (std::int64_t e = 0; e < tail; ++e) {
        dst[4 * full_blocks + e] = sigma * z[e] + (offset != nullptr ? offset[4 * full_blocks + e] : 0.0f);
      }
    }
  }
}

std::uint32_t NoiseSource::uniform_index(std::int64_t example, std::uint32_t sigma_index, std::int64_t sample,
                                         std::uint32_t bound) const {
  if (example < 0 || example > 0xFFFFFFFFLL || sample < 0 || sample > 0xFFFFFFFFLL) {
    throw std::out_of_range("NoiseSource::uniform_index: example or sample index outside the 32-bit counter");
  }
  if (bound == 0) throw std::invalid_argument("NoiseSource::uniform_index: bound must be >= 1");
  using Philox = r123::Philox4x32_R<10>;
  Philox philox;
  const Philox::key_type key = {{key_[0], key_[1]}};
  const Philox::ctr_type ctr = {{0u, static_cast<std::uint32_t>(sample), sigma_index, static_cast<std::uint32_t>(example)}};
  const Philox::ctr_type r = philox(ctr, key);
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(r[0]) * bound) >> 32);
}

}  // namespace dualrs
