#pragma once
/// \file
/// `mnist_unet`: a compact UNet ε-model for 28×28 grey digits, trained by `dualrs
/// train-denoiser` so the embedded data can run denoised smoothing [DDS; docs/method.md §9].
///
/// Layout (channels c = 16): 2×2 space-to-depth (1×28×28 → 4×14×14) → 3×3 conv to c →
/// residual block (c) → stride-2 conv to 2c at 7×7 → residual block (2c) → middle residual
/// block (2c) → [concat skip] residual block (4c → 2c) → nearest ×2 upsample + 3×3 conv to c at
/// 14×14 → [concat skip] residual block (2c → c) → GroupNorm, SiLU, 3×3 conv to 4 →
/// depth-to-space (4×14×14 → 1×28×28). Residual blocks: GroupNorm(8), SiLU, 3×3 conv, plus
/// the timestep embedding (sinusoidal, max period 10,000, → linear → SiLU → linear) per
/// channel, GroupNorm, SiLU, 3×3 conv, 1×1 projection shortcut where channels change. The
/// output conv starts at zero, so a fresh model predicts ε̂ = 0 (x̂0 = the scaled input).
/// Working at 14×14 after space-to-depth keeps it cheap enough for certification on CPUs.

#include <memory>

#include "dualrs/model/epsilon_model.h"

namespace dualrs::model {

/// Fresh `mnist_unet`. Input float `[B, 1, 28, 28]` (model space), t `[B]`; output `[B, 1, 28,
/// 28]`. epsilon() throws ModelError on any other input shape.
std::unique_ptr<EpsilonModel> make_mnist_unet();

}  // namespace dualrs::model
