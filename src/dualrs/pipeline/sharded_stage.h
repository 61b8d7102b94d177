#pragma once
// The frame of every sharded stage (label, estimate-sigma, certify, predict): lock the
// output folder, find the shards still to do, compute them over the ranks
// with per-rank logs and job-wide progress, stop cleanly on request, and merge.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/shards.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/shard_files.h"
#include "dualrs/pipeline/example_groups.h"
#include "dualrs/pipeline/stage_context.h"

namespace dualrs::pipeline {

/// What differs between sharded stages.
struct ShardedStage {
  std::string command;                  ///< "label", ... (messages, lock, progress)
  std::string schema;                   ///< schema of the stage's files, e.g. "dualrs.labels"
  io::Provenance provenance;            ///< of the stage's outputs (its config hash decides resume)
  std::vector<std::int64_t> indices;    ///< the selection's dataset indices, in position order
  std::int64_t shard_size = 1;
  /// Computes example `position` of the selection and keeps its result for its shard.
  std::function<void(std::int64_t position)> compute;
  /// Writes the kept results of `shard` to `path` with `provenance` (one HDF5 file, published
  /// atomically) and forgets them.
  std::function<void(const Shard& shard, const std::string& path, const io::Provenance& provenance)> write_shard;
  /// Forgets the kept results (a shard interrupted midway).
  std::function<void()> discard;
};

/// Collective. Runs `stage` into `out_dir`:
///  1. rank 0 takes the folder's lock (dualrs.lock, or one per --shard-subset), removes
///     leftover temporary files, moves damaged shard files to shards/corrupt/ (reporting
///     them) and lists the shards still to do; it refuses a folder holding another config's
///     shards;
///  2. every rank computes its share of those shards (round robin), logging to
///     `<out_dir>/logs/rank-NNNN.log`; rank 0 prints the job's progress, rate and ETA;
///  3. on SIGUSR1/SIGTERM every rank stops at its next example boundary, finished shards
///     stay published, and every rank throws dist::Preempted (exit code 75);
///  4. rank 0 merges the shards into the stage's output (not for a shard subset) and warns
///     about examples with non-finite logits.
/// \return true when the stage's output was merged (false for a --shard-subset run).
bool run_sharded_stage(StageContext& ctx, const std::string& out_dir, ShardedStage& stage);

/// The derived columns of merged stage outputs: labels' rebalancing weights w_e(x) =
/// 1/q_best(x) over every row (rebalancing_weights, core/dual.h; docs/method.md §5). Every
/// merge (the stages' own and `dualrs merge`) uses these.
io::MergeDerivations merge_derivations();

/// The stage's provenance with this job's world size and MPI library recorded.
void record_world(const StageContext& ctx, io::Provenance& provenance);

}  // namespace dualrs::pipeline
