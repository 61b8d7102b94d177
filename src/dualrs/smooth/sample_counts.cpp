#include "dualrs/smooth/sample_counts.h"

#include <torch/torch.h>

#include <numeric>

#include "dualrs/core/error.h"

namespace dualrs::smooth {

std::int64_t SampleCounts::total() const {
  return std::accumulate(votes.begin(), votes.end(), non_finite);
}

void fill_noisy_copies(at::Tensor& out, const at::Tensor& x, const NoiseSource& noise, std::int64_t example,
                       std::uint32_t sigma_index, double sigma, std::int64_t first_sample) {
  const std::int64_t count = out.size(0);
  const std::int64_t numel = x.numel();
  DUALRS_CHECK(out.is_contiguous() && out.scalar_type() == torch::kFloat32 && out.numel() == count * numel, DataError,
               "noisy-copy buffer must be contiguous float [count, C, H, W]");
  const at::Tensor image = x.to(torch::kFloat32).contiguous();
  float* dst = out.data_ptr<float>();
  const float* clean = image.data_ptr<float>();
  const float s = static_cast<float>(sigma);
  at::parallel_for(0, count, 16, [&](std::int64_t begin, std::int64_t end) {
    noise.fill(dst + begin * numel, numel, example, sigma_index, first_sample + begin, end - begin, s, clean);
  });
}

SampleCounts sample_counts(model::BaseModel& model, const at::Tensor& x, const NoiseSource& noise,
                           const NoiseRequest& request) {
  DUALRS_CHECK(x.dim() == 3, DataError, "example ", request.example, ": expected an image [C, H, W], got ", x.sizes());
  if (!(request.sigma > 0)) throw ConfigError("", "/sigma", "must be > 0, got " + std::to_string(request.sigma));
  if (request.batch_size < 1) throw ConfigError("", "/batch_size", "must be >= 1, got " + std::to_string(request.batch_size));
  const at::Tensor image = x.to(torch::kFloat32).contiguous();
  if (!torch::isfinite(image).all().item<bool>()) {
    DUALRS_THROW(DataError, "example ", request.example, ": image holds NaN or infinite pixels");
  }
  torch::InferenceMode guard;
  const std::int64_t k = model.num_classes();
  SampleCounts result;
  result.votes.assign(static_cast<std::size_t>(k), 0);
  const auto shape = image.sizes();
  // Never more rows than copies: --batch-size 1000000000 for n = 100 allocates 100 (the
  // noise of a copy does not depend on the batch it is drawn in).
  const std::int64_t rows = std::max<std::int64_t>(1, std::min(request.batch_size, request.count));
  at::Tensor batch = torch::empty({rows, shape[0], shape[1], shape[2]}, torch::kFloat32);
  for (std::int64_t done = 0; done < request.count;) {
    const std::int64_t b = std::min(rows, request.count - done);
    at::Tensor view = batch.narrow(0, 0, b);
    fill_noisy_copies(view, image, noise, request.example, request.sigma_index, request.sigma,
                      request.first_sample + done);
    const at::Tensor logits = model.logits(view).to(torch::kCPU);
    DUALRS_CHECK(logits.dim() == 2 && logits.size(0) == b && logits.size(1) == k, ModelError, "model ",
                 model.describe(), " returned ", logits.sizes(), " for ", b, " inputs; expected [", b, ", ", k, "]");
    const at::Tensor finite = torch::isfinite(logits).all(1);
    const at::Tensor predictions = logits.argmax(1);
    const auto pred = predictions.accessor<std::int64_t, 1>();
    const auto ok = finite.accessor<bool, 1>();
    for (std::int64_t i = 0; i < b; ++i) {
      if (ok[i]) ++result.votes[static_cast<std::size_t>(pred[i])];
      else ++result.non_finite;
    }
    done += b;
  }
  return result;
}

std::vector<SampleCounts> draw_step(model::BaseModel& model, const at::Tensor& x, const SamplePlan& plan,
                                    const SampleStep& step, std::int64_t example) {
  std::vector<SampleCounts> out;
  out.reserve(step.draws.size());
  for (const SampleDraw& draw : step.draws) {
    out.push_back(sample_counts(model, x, NoiseSource(plan.seed, draw.stage),
                                {example, step.sigma_index, step.sigma, 0, draw.count, plan.batch_size}));
  }
  return out;
}

}  // namespace dualrs::smooth
