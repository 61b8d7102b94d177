#include "dualrs/train/data_parallel.h"

#include <torch/torch.h>

#include "dualrs/build_info.h"
#include "dualrs/core/error.h"
#include "dualrs/train/optimizer_state.h"

#if DUALRS_HAVE_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace dualrs::train {

std::vector<GradientBucket> plan_buckets(const std::vector<std::int64_t>& numels, std::size_t element_bytes,
                                         std::size_t bucket_bytes) {
  DUALRS_CHECK(element_bytes > 0 && bucket_bytes > 0, CommError, "plan_buckets: element and bucket sizes must be > 0");
  std::vector<GradientBucket> buckets;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < numels.size(); ++i) {
    DUALRS_CHECK(numels[i] >= 0, CommError, "plan_buckets: parameter ", i, " has ", numels[i], " elements");
    const std::size_t add = static_cast<std::size_t>(numels[i]) * element_bytes;
    if (buckets.empty() || (buckets.back().count > 0 && bytes + add > bucket_bytes)) {
      buckets.push_back({i, 0, 0});
      bytes = 0;
    }
    buckets.back().count += 1;
    buckets.back().numel += numels[i];
    bytes += add;
  }
  return buckets;
}

RankSlice rank_slice(std::int64_t batch, int rank, int size) {
  DUALRS_CHECK(size >= 1 && rank >= 0 && rank < size && batch >= 0, CommError, "rank_slice: rank ", rank, " of ", size,
               ", batch ", batch);
  const std::int64_t base = batch / size;
  const std::int64_t extra = batch % size;
  const std::int64_t r = rank;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

at::Tensor epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  auto generator = epoch_generator(seed, epoch);
  return torch::randperm(n, generator, torch::kInt64);
}

namespace {

/// The CUDA stream LibTorch enqueues work on for `t`'s device (nullptr: the default stream).
void* current_stream([[maybe_unused]] const at::Tensor& t) {
#if DUALRS_HAVE_TORCH_CUDA
  return at::cuda::getCurrentCUDAStream(t.device().index()).stream();
#else
  return nullptr;
#endif
}

/// FNV-1a over the parameter shapes: equal on ranks that build the same model.
std::int64_t layout_fingerprint(const std::vector<at::Tensor>& parameters) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](std::uint64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= (v >> (8 * b)) & 0xFF;
      h *= 1099511628211ULL;
    }
  };
  mix(parameters.size());
  for (const auto& p : parameters) {
    mix(static_cast<std::uint64_t>(p.dim()));
    for (auto s : p.sizes()) mix(static_cast<std::uint64_t>(s));
  }
  return static_cast<std::int64_t>(h >> 1);
}

}  // namespace

DataParallel::DataParallel(torch::nn::Module& module, const TrainContext& context, std::size_t bucket_bytes)
    : module_(module), context_(context), parameters_(module.parameters()) {
  std::vector<std::int64_t> numels;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const at::Tensor& p = parameters_[i];
    DUALRS_CHECK(p.scalar_type() == at::kFloat, ModelError, "data-parallel training needs float32 parameters; parameter ",
                 i, " is ", p.scalar_type());
    DUALRS_CHECK(p.device() == parameters_.front().device(), ModelError,
                 "data-parallel training needs every parameter on one device; parameter ", i, " is on ", p.device(),
                 ", parameter 0 on ", parameters_.front().device());
    numels.push_back(p.numel());
  }
  buckets_ = plan_buckets(numels, sizeof(float), bucket_bytes);
  if (size() == 1) return;
  // DDP's model verification: a different architecture on some rank would otherwise turn
  // into silently mismatched buffers. Every rank sees the same min and max, so all throw.
  const std::int64_t mine = layout_fingerprint(parameters_);
  const std::int64_t low = context_.comm.all_reduce(mine, dist::ReduceOp::kMin);
  const std::int64_t high = context_.comm.all_reduce(mine, dist::ReduceOp::kMax);
  DUALRS_CHECK(low == high, CommError, "data-parallel training: the ranks' models have different parameter layouts (",
               parameters_.size(), " parameters on rank ", rank(), ")");
  const auto options = parameters_.empty() ? torch::TensorOptions(torch::kFloat32)
                                           : parameters_.front().options().requires_grad(false);
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    flats_.push_back(torch::zeros({buckets_[b].numel + (b + 1 == buckets_.size() ? 1 : 0)}, options));
  }
  if (flats_.empty()) flats_.push_back(torch::zeros({1}, options));  // the flag alone
}

DataParallel::~DataParallel() = default;

dist::DescribeFn DataParallel::describe() const {
  return context_.describe ? context_.describe : dist::DescribeFn(dist::describe_standard);
}

void DataParallel::all_reduce_mean(at::Tensor& flat) {
  if (flat.is_cuda() && context_.device_comm != nullptr) {
    context_.device_comm->all_reduce(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()), dist::ReduceOp::kMean,
                                     current_stream(flat));
    return;
  }
  if (flat.is_cuda()) {  // no NCCL: through the host
    at::Tensor host = flat.to(torch::kCPU);
    context_.comm.all_reduce(host.data_ptr<float>(), static_cast<std::size_t>(host.numel()), dist::ReduceOp::kMean);
    flat.copy_(host);
    return;
  }
  context_.comm.all_reduce(flat.data_ptr<float>(), static_cast<std::size_t>(flat.numel()), dist::ReduceOp::kMean);
}

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors) {
  if (size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const at::Tensor& t : tensors) {
    if (t.numel() == 0) continue;
    const auto bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
    if (t.is_cuda() && context_.device_comm != nullptr && t.is_contiguous()) {
      context_.device_comm->broadcast(t.data_ptr(), bytes, 0, current_stream(t));
      continue;
    }
    at::Tensor host = t.is_cuda() || !t.is_contiguous() ? t.to(torch::kCPU).contiguous() : t;
    context_.comm.broadcast(host.data_ptr(), bytes, 0);
    if (!host.is_same(t)) t.copy_(host);
  }
}

void DataParallel::broadcast_parameters_and_buffers() {
  broadcast(parameters_);
  broadcast_buffers();
}

void DataParallel::broadcast_buffers() { broadcast(module_.buffers()); }

void DataParallel::reduce_gradients(std::int64_t local_examples, std::int64_t global_examples,
                                    std::exception_ptr local_error) {
  if (size() == 1) {
    if (local_error) std::rethrow_exception(local_error);
    return;
  }
  DUALRS_CHECK(global_examples > 0 && local_examples >= 0 && local_examples <= global_examples, CommError,
               "reduce_gradients: ", local_examples, " local of ", global_examples, " examples");
  torch::NoGradGuard no_grad;
  // Mean over ranks of factor_r · grad_r = Σ_r (local_r / global) · grad_r.
  const double factor = static_cast<double>(size()) * static_cast<double>(local_examples) /
                        static_cast<double>(global_examples);
  const bool contributes = local_examples > 0 && !local_error;
  for (std::size_t b = 0; b < flats_.size(); ++b) {
    at::Tensor& flat = flats_[b];
    if (b < buckets_.size()) {
      const GradientBucket& bucket = buckets_[b];
      std::int64_t offset = 0;
      for (std::size_t i = bucket.first; i < bucket.first + bucket.count; ++i) {
        const at::Tensor& grad = parameters_[i].grad();
        const std::int64_t n = parameters_[i].numel();
        at::Tensor part = flat.narrow(0, offset, n);
        if (contributes && grad.defined()) part.copy_(grad.reshape({-1}));
        else part.zero_();
        offset += n;
      }
      if (contributes && factor != 1.0) flat.narrow(0, 0, bucket.numel).mul_(factor);
    }
    if (b + 1 == flats_.size()) flat[flat.numel() - 1].fill_(local_error ? 1.0 : 0.0);
    all_reduce_mean(flat);
  }
  const at::Tensor& last = flats_.back();
  if (last[last.numel() - 1].item<float>() > 0.0f) {
    dist::agree_on_failures(context_.comm, local_error, describe());  // throws on every rank
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    std::int64_t offset = 0;
    for (std::size_t i = buckets_[b].first; i < buckets_[b].first + buckets_[b].count; ++i) {
      at::Tensor& p = parameters_[i];
      const at::Tensor reduced = flats_[b].narrow(0, offset, p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(reduced);
      else p.mutable_grad() = reduced.clone();
      offset += p.numel();
    }
  }
}

void DataParallel::sum(double* values, std::size_t count) {
  if (size() == 1) return;
  context_.comm.all_reduce(values, count, dist::ReduceOp::kSum);
}

}  // namespace dualrs::train
