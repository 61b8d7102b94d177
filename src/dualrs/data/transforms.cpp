#include "dualrs/data/transforms.h"

#include <torch/torch.h>

#include <cmath>

#include "dualrs/core/error.h"

namespace dualrs::data {

std::pair<std::int64_t, std::int64_t> resized_size(std::int64_t h, std::int64_t w, std::int64_t shorter) {
  DUALRS_CHECK(h >= 1 && w >= 1 && shorter >= 1, DataError, "cannot resize a ", h, " x ", w, " image to shorter side ",
               shorter);
  const std::int64_t short_side = std::min(h, w), long_side = std::max(h, w);
  // torchvision: int(size * long / short) — an exact integer product, one float division.
  const auto new_long = static_cast<std::int64_t>(static_cast<double>(shorter * long_side) / static_cast<double>(short_side));
  return w <= h ? std::pair{new_long, shorter} : std::pair{shorter, new_long};
}

at::Tensor resize_shorter_side(const at::Tensor& image, std::int64_t shorter) {
  DUALRS_CHECK(image.dim() == 3, DataError, "resize expects [C, H, W], got ", image.sizes());
  const auto [h, w] = resized_size(image.size(1), image.size(2), shorter);
  if (h == image.size(1) && w == image.size(2)) return image;
  namespace F = torch::nn::functional;
  return F::interpolate(image.unsqueeze(0), F::InterpolateFuncOptions()
                                               .size(std::vector<std::int64_t>{h, w})
                                               .mode(torch::kBilinear)
                                               .align_corners(false)
                                               .antialias(true))
      .squeeze(0);
}

at::Tensor center_crop(const at::Tensor& image, std::int64_t size) {
  DUALRS_CHECK(image.dim() == 3, DataError, "center crop expects [C, H, W], got ", image.sizes());
  const std::int64_t h = image.size(1), w = image.size(2);
  DUALRS_CHECK(size >= 1 && h >= size && w >= size, DataError, "cannot crop ", size, " x ", size, " from a ", h, " x ",
               w, " image");
  // std::nearbyint rounds half to even under the default rounding mode, like Python's round.
  const auto top = static_cast<std::int64_t>(std::nearbyint((h - size) / 2.0));
  const auto left = static_cast<std::int64_t>(std::nearbyint((w - size) / 2.0));
  return image.slice(1, top, top + size).slice(2, left, left + size);
}

at::Tensor resize_and_center_crop(const at::Tensor& image, std::int64_t shorter, std::int64_t crop) {
  at::Tensor x = image.scalar_type() == torch::kUInt8 ? image.to(torch::kFloat32).div_(255.0f) : image;
  return center_crop(resize_shorter_side(x, shorter), crop).contiguous();
}

}  // namespace dualrs::data
