#include "dualrs/smooth/sample_counts.h"

#include <torch/torch.h>

#include <numeric>

#include "dualrs/core/error.h"
#include "dualrs/rng/grid_noise.h"

namespace dualrs::smooth {

std::int64_t SampleCounts::total() const {
  return std::accumulate(votes.begin(), votes.end(), non_finite + rejected);
}

void add_counts(SampleCounts& total, const SampleCounts& more) {
  if (total.votes.empty()) total.votes.assign(more.votes.size(), 0);
  DUALRS_CHECK(total.votes.size() == more.votes.size(), DataError, "adding counts of ", more.votes.size(),
               " classes to counts of ", total.votes.size());
  for (std::size_t c = 0; c < more.votes.size(); ++c) total.votes[c] += more.votes[c];
  total.non_finite += more.non_finite;
  total.rejected += more.rejected;
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

namespace {
// One request's pixels as contiguous float, checked: [C, H, W], finite.
at::Tensor checked_image(const at::Tensor& x, const NoiseRequest& request) {
  DUALRS_CHECK(x.dim() == 3, DataError, "example ", request.example, ": expected an image [C, H, W], got ", x.sizes());
  if (!(request.sigma > 0)) throw ConfigError("", "/sigma", "must be > 0, got " + std::to_string(request.sigma));
  const at::Tensor image = x.to(torch::kFloat32).contiguous();
  if (!torch::isfinite(image).all().item<bool>()) {
    DUALRS_THROW(DataError, "example ", request.example, ": image holds NaN or infinite pixels");
  }
  return image;
}
}  // namespace

SampleCounts sample_counts(model::BaseModel& model, const at::Tensor& x, const NoiseSource& noise,
                           const NoiseRequest& request) {
  return sample_counts_grouped(model, {GroupedRequest{x, request}}, noise, request.batch_size).front();
}

std::vector<SampleCounts> sample_counts_grouped(model::BaseModel& model, const std::vector<GroupedRequest>& requests,
                                                const NoiseSource& noise, std::int64_t batch_size) {
  if (batch_size < 1) throw ConfigError("", "/batch_size", "must be >= 1, got " + std::to_string(batch_size));
  const std::int64_t k = model.num_classes();
  std::vector<SampleCounts> results(requests.size());
  std::vector<at::Tensor> images;
  images.reserve(requests.size());
  std::int64_t total = 0;
  for (std::size_t r = 0; r < requests.size(); ++r) {
    images.push_back(checked_image(requests[r].image, requests[r].request));
    DUALRS_CHECK(images.back().sizes() == images.front().sizes(), DataError, "example ", requests[r].request.example,
                 ": image ", images.back().sizes(), " differs in shape from example ", requests.front().request.example,
                 "'s ", images.front().sizes(), " in one forward group");
    DUALRS_CHECK(requests[r].request.count >= 0, DataError, "example ", requests[r].request.example, ": negative copy count");
    results[r].votes.assign(static_cast<std::size_t>(k), 0);
    total += requests[r].request.count;
  }
  if (total == 0) return results;
  // Grid noise works on the 8-bit levels of each image (checked on the grid here, once).
  const bool grid = noise.kind() == NoiseKind::kGrid;
  std::vector<std::vector<std::int32_t>> levels;
  if (grid) {
    for (std::size_t q = 0; q < requests.size(); ++q) {
      levels.push_back(grid_levels(images[q].data_ptr<float>(), images[q].numel(), requests[q].request.example));
    }
  }
  torch::InferenceMode guard;
  const auto shape = images.front().sizes();
  const std::int64_t numel = images.front().numel();
  std::vector<std::uint8_t> rejected(static_cast<std::size_t>(std::min(batch_size, total)), 0);
  // Never more rows than copies: --batch-size 1000000000 for n = 100 allocates 100 (the
  // noise of a copy does not depend on the forward it is drawn in).
  const std::int64_t rows = std::min(batch_size, total);
  at::Tensor batch = torch::empty({rows, shape[0], shape[1], shape[2]}, torch::kFloat32);
  std::size_t r = 0;         // the request whose copies come next
  std::int64_t offset = 0;   // copies of request r already drawn
  std::vector<std::pair<std::size_t, std::int64_t>> segments;  // (request, rows) of this forward, in row order
  for (std::int64_t done = 0; done < total;) {
    const std::int64_t b = std::min(rows, total - done);
    segments.clear();
    for (std::int64_t filled = 0; filled < b;) {
      while (offset == requests[r].request.count) {
        ++r;
        offset = 0;
      }
      const NoiseRequest& q = requests[r].request;
      const std::int64_t take = std::min(b - filled, q.count - offset);
      if (grid) {
        const GridTable& table = GridTable::for_sigma(q.sigma);
        float* dst = batch.data_ptr<float>() + filled * numel;
        std::uint8_t* flags = rejected.data() + filled;
        const std::int32_t* lv = levels[r].data();
        const std::int64_t first = q.first_sample + offset;
        at::parallel_for(0, take, 16, [&](std::int64_t begin, std::int64_t end) {
          noise.fill_grid(dst + begin * numel, flags + begin, numel, q.example, q.sigma_index, first + begin, end - begin,
                          table, lv);
        });
      } else {
        at::Tensor view = batch.narrow(0, filled, take);
        fill_noisy_copies(view, images[r], noise, q.example, q.sigma_index, q.sigma, q.first_sample + offset);
      }
      segments.emplace_back(r, take);
      filled += take;
      offset += take;
    }
    const at::Tensor logits = model.logits(batch.narrow(0, 0, b)).to(torch::kCPU);
    DUALRS_CHECK(logits.dim() == 2 && logits.size(0) == b && logits.size(1) == k, ModelError, "model ",
                 model.describe(), " returned ", logits.sizes(), " for ", b, " inputs; expected [", b, ", ", k, "]");
    const at::Tensor finite = torch::isfinite(logits).all(1);
    const at::Tensor predictions = logits.argmax(1);
    const auto pred = predictions.accessor<std::int64_t, 1>();
    const auto ok = finite.accessor<bool, 1>();
    std::int64_t row = 0;
    for (const auto& [request, count] : segments) {
      SampleCounts& out = results[request];
      for (std::int64_t i = 0; i < count; ++i, ++row) {
        if (grid && rejected[static_cast<std::size_t>(row)] != 0) ++out.rejected;  // votes for no class
        else if (ok[row]) ++out.votes[static_cast<std::size_t>(pred[row])];
        else ++out.non_finite;
      }
    }
    done += b;
  }
  return results;
}

std::vector<SampleCounts> draw_step(model::BaseModel& model, const at::Tensor& x, const SamplePlan& plan,
                                    const SampleStep& step, std::int64_t example) {
  std::vector<SampleCounts> out;
  out.reserve(step.draws.size());
  for (const SampleDraw& draw : step.draws) {
    out.push_back(sample_counts(model, x, NoiseSource(plan.seed, draw.stage, plan.noise),
                                {example, step.sigma_index, step.sigma, 0, draw.count, plan.batch_size}));
  }
  return out;
}

}  // namespace dualrs::smooth
