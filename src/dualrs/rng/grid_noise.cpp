#include "dualrs/rng/grid_noise.h"

#include <boost/math/special_functions/erf.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "dualrs/core/error.h"

namespace dualrs {
inline namespace rng {
namespace {
using Real = boost::multiprecision::cpp_bin_float_50;

// ⌊m·2⁶⁴⌋ for 0 <= m < 1.
std::uint64_t floor_scaled(const Real& m) {
  const Real scaled = boost::multiprecision::ldexp(m, 64);
  const Real whole = boost::multiprecision::floor(scaled);
  return whole.convert_to<std::uint64_t>();
}
}  // namespace

GridTable::GridTable(double sigma) : sigma_(sigma) {
  if (!(sigma > 0.0 && sigma <= 64.0)) {
    DUALRS_THROW(DataError, "grid noise: sigma must be in (0, 64], got ", sigma);
  }
  max_offset_ = static_cast<std::int32_t>(std::max(1.0, std::ceil(kGridTailSigmas * 255.0 * sigma - 0.5)));
  const std::int32_t k = max_offset_;
  // P(round(255δ) = i) = ½[erfc((2i−1)/(510σ√2)) − erfc((2i+1)/(510σ√2))] for i ≥ 1, and
  // 1 − erfc(1/(510σ√2)) for i = 0; the difference of erfc keeps the tail bins accurate.
  const Real scale = Real(1) / (Real(510) * Real(sigma) * boost::multiprecision::sqrt(Real(2)));
  std::vector<std::uint64_t> half(static_cast<std::size_t>(k) + 1);
  Real upper = boost::math::erfc(scale);  // erfc((2i−1)·scale) for the next i
  half[0] = floor_scaled(Real(1) - upper);
  for (std::int32_t i = 1; i <= k; ++i) {
    const Real next = boost::math::erfc(Real(2 * i + 1) * scale);
    half[static_cast<std::size_t>(i)] = floor_scaled((upper - next) / 2);
    upper = next;
  }
  weights_.resize(static_cast<std::size_t>(2 * k + 1));
  for (std::int32_t i = -k; i <= k; ++i) weights_[static_cast<std::size_t>(i + k)] = half[static_cast<std::size_t>(std::abs(i))];
  // The sum: computed in 128 bits so that an (impossible) total of 2⁶⁴ would be caught.
  unsigned __int128 total = 0;
  cumulative_.resize(weights_.size());
  for (std::size_t j = 0; j < weights_.size(); ++j) {
    total += weights_[j];
    if (total >= (static_cast<unsigned __int128>(1) << 64)) {
      DUALRS_THROW(DataError, "grid noise: the table at sigma ", sigma, " sums to 2^64 or more");
    }
    cumulative_[j] = static_cast<std::uint64_t>(total);
  }
  reject_ = static_cast<std::uint64_t>((static_cast<unsigned __int128>(1) << 64) - total);
  guide_.resize(std::size_t{1} << kGuideBits);
  std::size_t j = 0;
  for (std::size_t g = 0; g < guide_.size(); ++g) {
    const std::uint64_t start = static_cast<std::uint64_t>(g) << (64 - kGuideBits);
    while (j < cumulative_.size() && cumulative_[j] <= start) ++j;
    guide_[g] = static_cast<std::uint32_t>(j);
  }
}

const GridTable& GridTable::for_sigma(double sigma) {
  static std::mutex mutex;
  static std::map<double, std::unique_ptr<GridTable>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = tables.find(sigma);
  if (it == tables.end()) it = tables.emplace(sigma, std::make_unique<GridTable>(sigma)).first;
  return *it->second;
}

std::string GridTable::canonical_bytes() const {
  std::ostringstream text;
  text.precision(17);
  text << "dualrs grid table v1 sigma=" << sigma_ << " K=" << max_offset_ << '\n';
  std::string out = text.str();
  for (const std::uint64_t w : weights_) {
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((w >> (8 * b)) & 0xFF));
  }
  return out;
}

std::vector<std::int32_t> grid_levels(const float* x, std::int64_t numel, std::int64_t example) {
  std::vector<std::int32_t> levels(static_cast<std::size_t>(numel));
  for (std::int64_t e = 0; e < numel; ++e) {
    const double scaled = static_cast<double>(x[e]) * 255.0;
    const double level = std::nearbyint(scaled);
    if (!(std::abs(scaled - level) <= 1e-3) || level < 0.0 || level > 255.0) {
      DUALRS_THROW(DataError, "example ", example, ": pixel ", e, " = ", x[e],
                   " is not an 8-bit level k/255 in [0, 1]; /certify/noise \"grid\" needs images on the 1/255 grid "
                   "(use noise \"gaussian\" for resized or normalised inputs)");
    }
    levels[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(level);
  }
  return levels;
}

}  // namespace rng
}  // namespace dualrs
