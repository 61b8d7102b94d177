#pragma once
/// \file
/// Training of a native ε-model with the DDPM objective [Ho, Jain, Abbeel 2020, Algorithm 1]
/// so the embedded data can run denoised smoothing [DDS; docs/method.md §9]:
/// x0' = 2x − 1, x_t = √ᾱ_t·x0' + √(1−ᾱ_t)·ε, loss = mean ‖ε − ε_θ(x_t, t)‖² (over pixels and
/// the batch). The certification pipeline only ever runs the network at t*(σ) for the σ it
/// smooths with (Σ ∪ {σ_e}), so training timesteps are drawn around those (see
/// timestep_windows) instead of uniformly over [0, T): the capacity of a small network goes
/// where it is used, and the windows keep it smooth in t.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "dualrs/data/dataset.h"
#include "dualrs/model/diffusion_denoiser.h"

namespace dualrs::train {

/// The timestep window of each σ: the integers [⌊t*(σ)(1 − w)⌋, ⌈t*(σ)(1 + w)⌉] ∩ [0, T − 1],
/// w = t_window. Each training example draws σ uniformly from `sigmas`, then t uniformly
/// from its window. \throws ConfigError (σ outside the schedule, w outside [0, 1]).
std::vector<std::pair<std::int64_t, std::int64_t>> timestep_windows(const DiffusionSchedule& schedule,
                                                                    const std::vector<double>& sigmas, double t_window);

/// One epoch's numbers.
struct DenoiserEpochStats {
  std::int64_t epoch = 0;
  double loss = 0.0;               ///< mean ε-MSE over the epoch's training images
  std::vector<double> val_rmse;    ///< per σ in `sigmas`: RMSE of (x̂0 + 1)/2 vs x, pixel units, on the held-out slice (NaN when empty)
  double lr = 0.0;
  double seconds = 0.0;
};

/// Called after every epoch (write the checkpoint and the log there).
using DenoiserEpochCallback = std::function<void(const DenoiserEpochStats&)>;

/// Trains the native ε-model of `denoiser` for epochs [first_epoch, config.epochs] on
/// `indices` of `dataset` (a seeded held-out slice of config.validation_fraction is kept for
/// val_rmse, denoised exactly as certification does: one step at t*(σ) from x + σz). AdamW.
/// The learning rate and every random stream depend only on (seed, epoch), so a resumed run
/// repeats an uninterrupted one. `optimizer_state` (may be empty) is loaded when resuming and
/// written after every epoch.
/// \param sigmas  the noise levels whose t* to train around (Σ ∪ {σ_e}).
/// \throws ConfigError (bad settings, σ outside the schedule), ModelError (not trainable),
/// DataError (no images).
std::vector<DenoiserEpochStats> train_denoiser(model::DiffusionDenoiser& denoiser, const data::ImageDataset& dataset,
                                               const std::vector<std::int64_t>& indices, const std::vector<double>& sigmas,
                                               const TrainDenoiserConfig& config, std::int64_t first_epoch,
                                               const std::string& optimizer_state, const DenoiserEpochCallback& on_epoch,
                                               Verbosity verbosity);

/// Checks the settings. \throws ConfigError listing every problem under /train_denoiser.
void validate(const TrainDenoiserConfig& config);

}  // namespace dualrs::train
