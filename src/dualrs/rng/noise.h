#pragma once
/// \file
/// Reproducible Gaussian noise from the counter-based Philox4x32-10 generator (Random123).
/// Source: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011;
/// docs/cluster.md §5.
///
/// Layout (version kRngLayoutVersion):
///   key     = splitmix64(seed ^ splitmix64(stage)), split into two 32-bit words;
///   counter = {block b, sample index, sigma index, example index};
///   one Philox call gives four 32-bit words -> two Box–Muller pairs (gaussian.h) -> with
///   b = 8g + l, elements 32g + l, 32g + 8 + l (words 0, 1) and 32g + 16 + l, 32g + 24 + l
///   (words 2, 3), so eight consecutive blocks fill 32 consecutive elements.
/// Version 1 (up to 2026-12) used Random123's r123::boxmuller (the C library's sincosf and
/// logf, scalar) and elements 4b..4b+3; version 2 has the transform vectorised.
/// The numbers for (example, sigma index, sample, element) therefore do not depend on batch
/// size, rank count, shard order or device.

#include <cstdint>

#include "dualrs/core/noise_kind.h"

namespace dualrs {
inline namespace rng {

/// Bumped whenever the mapping from (seed, stage, counter) to numbers changes; written into
/// every output so results made with different layouts are never mixed.
inline constexpr int kRngLayoutVersion = 2;

/// Independent noise streams per use. Never renumber an existing entry.
enum class NoiseStage : std::uint32_t {
  kCertifySelection = 1,   ///< CERTIFY: the n0 copies that pick the class
  kCertifyEstimation = 2,  ///< CERTIFY: the n fresh copies that bound p_A
  kPredict = 3,            ///< PREDICT
  kLabel = 4,              ///< per-σ radius labels (Dual RS §5.2.1)
  kEstimateSigma = 5,      ///< smoothed estimator's σ choice on the train set
  kEstimatorSelection = 6, ///< Dual RS: the estimator's n0 selection copies at σ_e
  kEstimatorEstimation = 7,///< Dual RS: the estimator's n estimation copies at σ_e
  kEstimatorPredict = 8,   ///< Dual RS PREDICT: the estimator's copies at σ_e
  // Training augmentation: a function of (seed, epoch, example index) only, so data-parallel
  // training on K ranks sees the noise of 1-rank training (sample = epoch - 1, or for the
  // estimator's m copies (epoch - 1)·m + copy).
  kTrainBase = 9,           ///< train-base: Gaussian augmentation of each example
  kTrainSigmaChoice = 10,   ///< train-base with sigma_candidates: the σ an example gets in an epoch
  kFinetune = 11,           ///< finetune: Gaussian augmentation at σ_c(x)
  kTrainEstimator = 12,     ///< train-estimator: the m noisy copies at σ_e
  kEstimatorValidation = 13,///< train-estimator: one copy per held-out example (sample 0)
};

class GridTable;

/// Stateless generator of σ·z, z ~ N(0, 1), for any (example, sigma index, sample, element),
/// or of its rounding to the 1/255 grid (`kind` NoiseKind::kGrid, fill_grid).
class NoiseSource {
 public:
  NoiseSource(std::uint64_t seed, NoiseStage stage, NoiseKind kind = NoiseKind::kGaussian);

  /// Writes `count` consecutive samples [first_sample, first_sample + count), each of
  /// `numel` values (C·H·W of one image), scaled by `sigma`, to `out` (count · numel floats,
  /// sample-major). Thread-safe; any split of a sample range gives the same numbers.
  /// \throws DataError when an index does not fit its 32-bit counter word.
  /// With `offset` (numel floats, e.g. the clean image) each value is `offset[e] + sigma·z`,
  /// which saves a second pass over the batch.
  void fill(float* out, std::int64_t numel, std::int64_t example, std::uint32_t sigma_index,
            std::int64_t first_sample, std::int64_t count, float sigma, const float* offset = nullptr) const;

  /// A uniform integer in [0, `bound`) for (example, sigma index, sample): the first 32-bit
  /// word of the Philox block at element block 0, mapped by Lemire's multiply-shift (bias
  /// below bound / 2^32). Use a stage of its own: fill() reads the same block.
  /// \throws DataError as fill(), and when bound is 0.
  std::uint32_t uniform_index(std::int64_t example, std::uint32_t sigma_index, std::int64_t sample,
                              std::uint32_t bound) const;

  /// Grid noise (grid_noise.h): writes `count` samples of (level[e] + i_e)/255 as float,
  /// i_e = table.draw(u_e) with the 64-bit word u_e = (w0 << 32 | w1) of words (0,1) (even e)
  /// or (2,3) (odd e) of the Philox block {e/2, sample, sigma index, example}; the sum is taken
  /// in integers, then converted. `rejected[s]` is set to 1 when some element of sample s drew
  /// the table's reject (its values are then unspecified), else 0. Same counter checks as fill().
  void fill_grid(float* out, std::uint8_t* rejected, std::int64_t numel, std::int64_t example,
                 std::uint32_t sigma_index, std::int64_t first_sample, std::int64_t count, const GridTable& table,
                 const std::int32_t* levels) const;

  std::uint64_t seed() const { return seed_; }
  NoiseStage stage() const { return stage_; }
  NoiseKind kind() const { return kind_; }
  std::uint32_t key0() const { return key_[0]; }
  std::uint32_t key1() const { return key_[1]; }

 private:
  std::uint64_t seed_;
  NoiseStage stage_;
  NoiseKind kind_;
  std::uint32_t key_[2];
};

}  // namespace rng
}  // namespace dualrs
