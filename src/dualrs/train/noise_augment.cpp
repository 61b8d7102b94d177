#include "dualrs/train/noise_augment.h"

#include <torch/torch.h>

#include "dualrs/core/error.h"
#include "dualrs/data/parallel.h"

namespace dualrs::train {

at::Tensor noisy_copies(const data::ImageDataset& dataset, const std::vector<std::int64_t>& idx,
                        const std::vector<float>& sigma, std::int64_t m, const NoiseSource& noise,
                        std::int64_t first_sample) {
  DUALRS_CHECK(sigma.size() == idx.size(), DataError, "noisy_copies: ", idx.size(), " examples but ", sigma.size(),
               " noise levels");
  DUALRS_CHECK(m >= 1, DataError, "noisy_copies: m must be >= 1, got ", m);
  const at::Tensor clean = dataset.batch(idx).contiguous();
  const auto b = static_cast<std::int64_t>(idx.size());
  const std::int64_t numel = b > 0 ? clean[0].numel() : 0;
  at::Tensor noisy = torch::empty({b * m, clean.size(1), clean.size(2), clean.size(3)}, clean.options());
  const float* in = clean.data_ptr<float>();
  float* out = noisy.data_ptr<float>();
  data::parallel_ranges(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t k = begin; k < end; ++k) {
      const auto j = static_cast<std::size_t>(k);
      noise.fill(out + k * m * numel, numel, idx[j], 0, first_sample, m, sigma[j], in + k * numel);
    }
  });
  return noisy;
}

}  // namespace dualrs::train
