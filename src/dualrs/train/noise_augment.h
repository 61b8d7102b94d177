#pragma once
/// \file
/// Gaussian noise augmentation for training [Cohen et al. 2019 §4] from the counter-based
/// generator (dualrs/rng/noise.h): the noise of an example depends on (seed, stage, example
/// index, sample) only — not on the batch it lands in or the rank that trains it — so
/// data-parallel training on K ranks sees exactly the noise of 1-rank training.

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dualrs/data/dataset.h"
#include "dualrs/rng/noise.h"

namespace dualrs::train {

/// The examples `idx` of `dataset`, `m` noisy copies of each: float `[B·m, C, H, W]`, the
/// copies of one image consecutive (copy-major within each image). Copy k of image idx[j] is
/// the clean image (pixels in [0, 1]) plus sigma[j]·z, z the standard normal numbers of
/// `noise` at counter (example idx[j], sigma index 0, sample first_sample + k).
/// \throws DataError on an index out of range or sigma.size() != idx.size().
at::Tensor noisy_copies(const data::ImageDataset& dataset, const std::vector<std::int64_t>& idx,
                        const std::vector<float>& sigma, std::int64_t m, const NoiseSource& noise,
                        std::int64_t first_sample);

}  // namespace dualrs::train
