#pragma once
/// \file
/// Data-parallel training over the ranks of a job (docs/cluster.md §6), following the design
/// of PyTorch's DistributedDataParallel (Li et al., "PyTorch Distributed: Experiences on
/// Accelerating Data Parallel Training", VLDB 2020) without its C++ API, which LibTorch does
/// not ship:
///  - parameters and buffers are broadcast from rank 0 when training starts (after any
///    checkpoint was loaded), so every rank starts from rank 0's weights;
///  - every optimizer step takes one global batch of the config's batch size; each rank
///    trains on its own contiguous slice of it (rank_slice), read from a permutation of the
///    examples that every rank computes alike (epoch_permutation);
///  - gradients are averaged over ranks in flat buckets of about 25 MB, in the module's fixed
///    parameter order, identical on every rank (plan_buckets), and weighted by each rank's
///    share of the batch, so the step equals the 1-rank step on the whole batch up to float
///    summation order (training is therefore not bit-reproducible across rank counts);
///  - buffers (BatchNorm running statistics) follow rank 0 before every step, like DDP's
///    broadcast_buffers; batch statistics are per rank (there is no SyncBatchNorm), so a model
///    with BatchNorm trains differently on K ranks than on one beyond summation order;
///  - a failure on one rank inside a step is carried by the gradient reduction itself (a flag
///    element), so every rank fails together instead of waiting in the next collective.
/// With one rank every collective is skipped: training is bit-identical to a plain loop.
///
/// Host tensors are reduced with Communicator::all_reduce(float*) (MPI_Allreduce); CUDA
/// tensors with an NcclCommunicator on LibTorch's current CUDA stream when one is given, else
/// through a host copy.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dualrs/dist/agreement.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/dist/nccl_communicator.h"

namespace torch::nn {
class Module;
}

namespace dualrs::train {

/// DDP's default bucket size (bucket_cap_mb = 25).
inline constexpr std::size_t kDefaultBucketBytes = std::size_t{25} << 20;

/// What a trainer runs with: the ranks of the job and how failures read.
struct TrainContext {
  TrainContext(dist::Communicator& comm, dist::NcclCommunicator* device_comm = nullptr, dist::DescribeFn describe = {})
      : comm(comm), device_comm(device_comm), describe(std::move(describe)) {}
  /// Host collectives (MpiCommunicator in a job, SingleProcessCommunicator otherwise).
  dist::Communicator& comm;
  /// Collectives over CUDA tensors; nullptr: CUDA tensors are reduced through host copies.
  dist::NcclCommunicator* device_comm;
  /// Maps a failure to its message when ranks agree on one (empty: describe_standard).
  dist::DescribeFn describe;
};

/// A run of consecutive parameters whose gradients are reduced as one flat buffer.
struct GradientBucket {
  std::size_t first = 0;   ///< index of its first parameter in the module's parameter order
  std::size_t count = 0;   ///< number of parameters
  std::int64_t numel = 0;  ///< their elements in all
  bool operator==(const GradientBucket& o) const { return first == o.first && count == o.count && numel == o.numel; }
};

/// Splits parameters of `numels` elements, in this order, into consecutive buckets: a bucket
/// closes before the parameter that would take it past `bucket_bytes`, so a parameter larger
/// than `bucket_bytes` gets a bucket of its own and no bucket is empty. The plan depends only
/// on the arguments, so every rank with the same model makes the same one.
/// \param element_bytes  bytes per element (4 for float). \throws CommError when a numel is
/// negative or element_bytes / bucket_bytes is 0.
std::vector<GradientBucket> plan_buckets(const std::vector<std::int64_t>& numels, std::size_t element_bytes,
                                         std::size_t bucket_bytes);

/// The part of a global batch that one rank trains on.
struct RankSlice {
  std::int64_t begin = 0;  ///< offset in the global batch
  std::int64_t count = 0;  ///< examples (may be 0 when the batch is smaller than the world)
};

/// Rank `rank` of `size` takes a contiguous slice of a global batch of `batch` examples. When
/// `size` does not divide `batch`, the first `batch % size` ranks take one example more
/// (e.g. 10 over 4 ranks: 3, 3, 2, 2); gradients are weighted by these counts, so the update
/// is that of the whole batch whatever the split. \throws CommError on a bad rank or size.
RankSlice rank_slice(std::int64_t batch, int rank, int size);

/// The order of the training examples in `epoch` (1-based): a permutation of 0..n-1 from a
/// CPU generator seeded with seed·1000003 + epoch, so every rank computes the same one and a
/// resumed run repeats an uninterrupted one. `[n]` int64.
at::Tensor epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

/// The collectives of one model's data-parallel training (see the file comment).
class DataParallel {
 public:
  /// Plans the gradient buckets over `module`'s parameters and checks, collectively, that
  /// every rank has the same parameter layout. `module` must outlive this object.
  /// \throws ModelError when a parameter is not float32 or parameters sit on several devices;
  /// CommError (on every rank) when the ranks' layouts differ.
  DataParallel(torch::nn::Module& module, const TrainContext& context, std::size_t bucket_bytes = kDefaultBucketBytes);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return context_.comm.rank(); }
  int size() const { return context_.comm.size(); }
  bool is_root() const { return context_.comm.is_root(); }
  /// The buckets, in reduction order.
  const std::vector<GradientBucket>& buckets() const { return buckets_; }

  /// Copies rank 0's parameters and buffers to every rank. Collective. \throws CommError.
  void broadcast_parameters_and_buffers();
  /// Copies rank 0's buffers (e.g. BatchNorm running statistics) to every rank. Collective.
  void broadcast_buffers();

  /// This rank's slice of a global batch of `batch` examples (rank_slice).
  RankSlice slice(std::int64_t batch) const { return rank_slice(batch, rank(), size()); }

  /// Collective, once per optimizer step after backward(): replaces every parameter's
  /// gradient by the batch-weighted mean over ranks, Σ_r (local_r / global) · grad_r, where
  /// grad_r is rank r's gradient of its mean loss over its `local_examples` (0: no
  /// gradient, taken as zeros) and `global_examples` is the whole batch. `local_error` is
  /// this rank's failure in the step, if any (its gradients are then ignored).
  /// \throws the original exception with one rank; with several, dist::AgreedFailure on every
  /// rank when any rank passed an error; CommError when the collective fails.
  void reduce_gradients(std::int64_t local_examples, std::int64_t global_examples, std::exception_ptr local_error);

  /// Sums `count` doubles over ranks in place (per-epoch metrics). Collective.
  void sum(double* values, std::size_t count);

  /// Runs `work` on every rank and agrees on the outcome (dist::agreed): the epoch boundary,
  /// where rank 0 writes checkpoints and logs. \throws dist::AgreedFailure on every rank if
  /// `work` threw on any rank (with one rank: the original exception).
  template <typename Fn>
  void agreed(Fn&& work) {
    if (size() == 1) {
      work();
      return;
    }
    dist::agreed(context_.comm, describe(), std::forward<Fn>(work));
  }

 private:
  dist::DescribeFn describe() const;
  void all_reduce_mean(at::Tensor& flat);
  void broadcast(const std::vector<at::Tensor>& tensors);

  torch::nn::Module& module_;
  TrainContext context_;
  std::vector<at::Tensor> parameters_;
  std::vector<GradientBucket> buckets_;
  std::vector<at::Tensor> flats_;  ///< one per bucket; the last has one more element, the failure flag
};

}  // namespace dualrs::train
