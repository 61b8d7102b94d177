#pragma once
/// \file
/// Shards (docs/cluster.md §3): fixed index ranges of a selection — the unit of work, output
/// and resume, independent of how many ranks run (dualrs/dist/shard_runner.h runs them,
/// dualrs/io/shard_files.h stores and merges them). Shard i covers positions
/// [i·shard_size, min((i+1)·shard_size, count)) of the selection's index list.

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs {
inline namespace core {

/// Positions [begin, end) of a selection (not dataset indices).
struct Shard {
  std::int64_t index = 0;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  bool operator==(const Shard& o) const { return index == o.index && begin == o.begin && end == o.end; }
};

/// The shards of a selection of `count` examples (an empty selection: one empty shard
/// [0, 0), so that the stage still writes its — empty — output).
/// \throws ConfigError when shard_size < 1, DataError when count < 0.
std::vector<Shard> make_shards(std::int64_t count, std::int64_t shard_size);

/// `--shard-subset I/N`: a run that does only the shards whose index ≡ I (mod N) (one element
/// of a Slurm array job; `dualrs merge` joins the subsets afterwards). N = 1: every shard.
struct ShardSubset {
  std::int64_t index = 0;
  std::int64_t count = 1;
  bool all() const { return count == 1; }
  bool contains(const Shard& shard) const { return shard.index % count == index; }
  /// "I/N"
  std::string text() const;
};

/// Parses "I/N" with 0 <= I < N. \throws ConfigError ("command line", "--shard-subset").
ShardSubset parse_shard_subset(const std::string& text);

/// "3", "3-5", "3-5, 9" for shard indices (sorted), for messages.
std::string describe_shard_indices(std::vector<std::int64_t> indices);

}  // namespace core
}  // namespace dualrs
