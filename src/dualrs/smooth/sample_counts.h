#pragma once
/// \file
/// Monte Carlo votes of the base classifier under Gaussian noise: the inner loop of every
/// smoothing method (noise → forward → argmax → counts).

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dualrs/core/decision.h"
#include "dualrs/model/base_model.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/sample_plan.h"

namespace dualrs::smooth {

/// Which noisy copies to draw for one example.
struct NoiseRequest {
  std::int64_t example = 0;        ///< dataset index: the counter's example word
  std::uint32_t sigma_index = 0;   ///< index of sigma in Σ (0 for a single global sigma)
  double sigma = 0.25;             ///< noise level, pixel units, > 0
  std::int64_t first_sample = 0;   ///< first sample index of the range
  std::int64_t count = 0;          ///< number of noisy copies
  std::int64_t batch_size = 1000;  ///< copies per forward pass (fix it for bit-identical runs)
};

/// Votes over the requested copies. `non_finite` counts copies whose logits had a NaN/Inf:
/// they vote for no class (a certificate built on them stays sound: they count as trials).
/// With grid noise, `rejected` counts copies that drew the table's reject (grid_noise.h): they
/// vote for no class either, and count as trials.
struct SampleCounts {
  Counts votes;                  ///< [K]
  std::int64_t non_finite = 0;
  std::int64_t rejected = 0;
  std::int64_t total() const;    ///< requested copies = sum(votes) + non_finite + rejected
};

/// Adds `more`'s votes, non-finite and rejected copies to `total` (votes resized to `more`'s
/// K when empty). \throws DataError when both hold votes of different sizes.
void add_counts(SampleCounts& total, const SampleCounts& more);

/// Draws the copies x + δ, δ = noise.fill(...) (so the numbers depend only on the noise
/// source and the request), runs the model in batches under inference mode and counts the
/// argmax class of each copy. With a grid-noise source (NoiseKind::kGrid) the copies are
/// noise.fill_grid of x's 8-bit levels. \param x float `[C, H, W]` in [0, 1].
/// \throws DataError when x holds NaN/Inf pixels (naming the example), or with grid noise a
/// pixel off the 1/255 grid; ModelError when the model's output is not `[B, K]`.
SampleCounts sample_counts(model::BaseModel& model, const at::Tensor& x, const NoiseSource& noise,
                           const NoiseRequest& request);

/// One example's copies in a grouped forward (sample_counts_grouped).
struct GroupedRequest {
  at::Tensor image;      ///< float `[C, H, W]` in [0, 1]
  NoiseRequest request;  ///< its batch_size is not used: the group's is
};

/// The votes of several requests through one model, their copies concatenated in request
/// order and cut into forward passes of `batch_size` rows, so one forward may hold the last
/// copies of one example and the first of the next (docs/method.md §14). Which copies share
/// a forward is a function of the list and `batch_size` alone: callers that form their
/// groups from the config and the shard layout, never from the rank count, keep results
/// bit-identical for any number of ranks. With one request this is sample_counts.
/// \return one SampleCounts per request, in order. Same errors as sample_counts; all images
/// must have one shape (DataError otherwise).
std::vector<SampleCounts> sample_counts_grouped(model::BaseModel& model, const std::vector<GroupedRequest>& requests,
                                                const NoiseSource& noise, std::int64_t batch_size);

/// The votes of each draw of `step` (sample_plan.h) for example `example` through `model`, in
/// the step's order: draw d takes samples [0, count) of noise stream draws[d].stage at the
/// step's σ word and σ, in forward passes of `plan.batch_size` copies with `plan.seed`. A
/// CERTIFY step gives {selection, estimation}. A step whose σ is chosen at run time is
/// drawn through SampleStep::at (unresolved, its σ 0 is refused). Same errors as
/// sample_counts.
std::vector<SampleCounts> draw_step(model::BaseModel& model, const at::Tensor& x, const SamplePlan& plan,
                                    const SampleStep& step, std::int64_t example);

/// Fills `out` (float `[count, C, H, W]`, contiguous) with x + noise for samples
/// [first_sample, first_sample + count), in parallel. Shared by training code and benches.
void fill_noisy_copies(at::Tensor& out, const at::Tensor& x, const NoiseSource& noise, std::int64_t example,
                       std::uint32_t sigma_index, double sigma, std::int64_t first_sample);

}  // namespace dualrs::smooth
