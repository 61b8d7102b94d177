#pragma once
/// \file
/// Groups of consecutive examples whose noisy copies share forward passes (docs/method.md
/// §14), for the sharded stages. Header only, no Torch.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace dualrs::pipeline {

/// Per-example results computed a group of consecutive positions at a time, so that several
/// examples share forward passes (docs/method.md §14). Groups are [g·size, (g+1)·size) within
/// each shard (shard i covers [i·shard_size, …)), never crossing a shard boundary: which
/// examples share a forward depends on the config (group size, shard size) alone, not on the
/// rank count or on which shards a run resumes, so results stay bit-identical.
template <typename Row>
class ExampleGroups {
 public:
  /// \param compute  the rows of positions [begin, end), in order
  ExampleGroups(std::int64_t count, std::int64_t shard_size, std::int64_t group_size,
                std::function<std::vector<Row>(std::int64_t begin, std::int64_t end)> compute)
      : count_(count), shard_size_(std::max<std::int64_t>(1, shard_size)), group_size_(std::max<std::int64_t>(1, group_size)),
        compute_(std::move(compute)) {}

  /// The row of `position`, computing its whole group when it is not the group held.
  const Row& at(std::int64_t position) {
    if (position < begin_ || position >= begin_ + static_cast<std::int64_t>(rows_.size())) {
      const std::int64_t shard_begin = position / shard_size_ * shard_size_;
      const std::int64_t shard_end = std::min(shard_begin + shard_size_, count_);
      begin_ = shard_begin + (position - shard_begin) / group_size_ * group_size_;
      rows_.clear();
      rows_ = compute_(begin_, std::min(begin_ + group_size_, shard_end));
    }
    return rows_[static_cast<std::size_t>(position - begin_)];
  }
  /// Forgets the group held (a shard interrupted midway).
  void reset() {
    rows_.clear();
    begin_ = 0;
  }

 private:
  std::int64_t count_, shard_size_, group_size_;
  std::function<std::vector<Row>(std::int64_t, std::int64_t)> compute_;
  std::int64_t begin_ = 0;
  std::vector<Row> rows_;
};

/// Examples per forward group for `copies` noisy copies per example and a forward of
/// `batch_size` rows: max(1, batch_size / copies).
inline std::int64_t examples_per_forward(std::int64_t batch_size, std::int64_t copies) {
  return copies < 1 ? 1 : std::max<std::int64_t>(1, batch_size / copies);
}

}  // namespace dualrs::pipeline
