#pragma once
/// \file
/// The Gaussian rounded to the 8-bit pixel grid, as an exact integer table for counter-based
/// sampling. Source: Voráček & Hein, "Sound Randomized Smoothing in Floating-Point
/// Arithmetic", ICLR 2023; docs/method.md §15.
///
/// For δ ~ N(0, σ²) (σ in [0,1]-pixel units) the offset i = round(255·δ) has mass
///   m_i = Φ((2i+1)/(510σ)) − Φ((2i−1)/(510σ)).
/// An image x on the grid plus i/255 per pixel is therefore round(x + δ) exactly, so the
/// smoothed classifier under this noise is the Gaussian-smoothed classifier of f∘round and
/// Cohen's theorem holds unchanged, with the same σ and radius formula.
///
/// The table gives bin i the integer weight w_i = ⌊m_i·2⁶⁴⌋ (computed with 50 significant
/// digits, so w_i ≤ m_i·2⁶⁴ exactly), for |i| ≤ K; a uniform 64-bit word u selects the bin
/// whose cumulative range holds it. Words beyond the last bin (2⁶⁴ − Σw_i, at most 2K + 1
/// units plus the tail mass past K) are a *reject*: the copy votes for no class. Rejecting
/// only lowers every class's chance, so a lower bound on p_A stays a lower bound; rejects are
/// never redrawn (a redraw would raise the chance of every bin).

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs {
inline namespace rng {

/// Offsets are cut at K = ⌈kGridTailSigmas·255σ − 1/2⌉, where the Gaussian tail beyond
/// (K + 1/2)/255 is below 2·10⁻²³ per side (far below one unit of 2⁻⁶⁴ per bin).
inline constexpr double kGridTailSigmas = 10.0;

/// The integer table of the rounded Gaussian at one σ.
class GridTable {
 public:
  /// Returned by draw() for a reject.
  static constexpr std::int32_t kReject = INT32_MIN;

  /// \param sigma noise level in [0,1]-pixel units, > 0 and ≤ 64. \throws DataError otherwise.
  explicit GridTable(double sigma);

  /// The table for `sigma`, built once per process and shared (thread-safe).
  static const GridTable& for_sigma(double sigma);

  double sigma() const { return sigma_; }
  /// K: offsets lie in [−K, K] (units of 1/255).
  std::int32_t max_offset() const { return max_offset_; }
  /// w_i for i = −K..K (size 2K + 1).
  const std::vector<std::uint64_t>& weights() const { return weights_; }
  /// 2⁶⁴ − Σ w_i, the reject weight (> 0).
  std::uint64_t reject_weight() const { return reject_; }

  /// The offset (units of 1/255) for the uniform word `u`, or kReject.
  std::int32_t draw(std::uint64_t u) const {
    std::size_t j = guide_[u >> (64 - kGuideBits)];
    while (j < cumulative_.size() && cumulative_[j] <= u) ++j;
    if (j == cumulative_.size()) return kReject;
    return static_cast<std::int32_t>(j) - max_offset_;
  }

  /// The table's canonical bytes (σ as text, K, then every weight little-endian), whose
  /// SHA-256 the provenance records.
  std::string canonical_bytes() const;

 private:
  static constexpr int kGuideBits = 12;
  double sigma_;
  std::int32_t max_offset_;
  std::vector<std::uint64_t> weights_;
  std::vector<std::uint64_t> cumulative_;  ///< cumulative_[j] = w_{−K} + … + w_{j−K}
  std::vector<std::uint32_t> guide_;       ///< first bin whose cumulative end exceeds g·2^(64−kGuideBits)
  std::uint64_t reject_;
};

/// The clean image as grid levels: level[e] = round(255·x[e]).
/// \throws DataError naming the example and the first pixel that is off the grid by more
/// than 10⁻³ of a level (e.g. a resized image) or outside [0, 1].
std::vector<std::int32_t> grid_levels(const float* x, std::int64_t numel, std::int64_t example);

}  // namespace rng
}  // namespace dualrs
