#pragma once
/// \file
/// Deterministic image transforms of the ImageNet evaluation pipeline: torchvision's
/// `Resize(256)` + `CenterCrop(224)` on tensors (Cohen et al.'s and Carlini et al.'s ImageNet
/// test transform), applied to float pixels in [0, 1].
///
/// Filter: bilinear interpolation with antialiasing (`torch.nn.functional.interpolate(...,
/// mode="bilinear", align_corners=False, antialias=True)`, LibTorch's own kernel): when
/// shrinking, the triangle filter is widened by the scale factor, as PIL's `Image.resize(...,
/// BILINEAR)` does. Results stay float (no rounding back to bytes), so they differ from
/// torchvision's PIL path (which rounds to uint8 after resizing) by less than about 1/255.

#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace dualrs::data {

/// Output size {h, w} of torchvision's `Resize(shorter)` for an h × w image: the shorter side
/// becomes `shorter`, the longer one int(shorter · long / short) (truncated, as torchvision).
/// \throws DataError when a side is < 1.
std::pair<std::int64_t, std::int64_t> resized_size(std::int64_t h, std::int64_t w, std::int64_t shorter);

/// Resizes float `[C, H, W]` so its shorter side is `shorter` (sizes from resized_size),
/// bilinear with antialiasing. Returns float `[C, h', w']`.
at::Tensor resize_shorter_side(const at::Tensor& image, std::int64_t shorter);

/// The central `size` × `size` window of `[C, H, W]`, offsets as torchvision's `center_crop`:
/// top = round((H − size) / 2), left = round((W − size) / 2), Python's round (half to even).
/// \throws DataError when the image is smaller than the crop.
at::Tensor center_crop(const at::Tensor& image, std::int64_t size);

/// resize_shorter_side then center_crop: uint8 or float `[C, H, W]` (bytes are scaled to
/// [0, 1] first) -> float `[C, crop, crop]` in [0, 1].
at::Tensor resize_and_center_crop(const at::Tensor& image, std::int64_t shorter, std::int64_t crop);

}  // namespace dualrs::data
