#pragma once
/// \file
/// Runs the pending shards of a stage over the ranks of a job, with preemption and failures
/// agreed between ranks (docs/cluster.md §2, §3, §7).
///
/// Every rank takes the shards `assign_shards` gives it and computes them example by example.
/// Before each example it checks for a stop: its own StopToken (SIGUSR1/SIGTERM) or a kStop
/// notice from another rank. A rank that sees its own signal, or fails, posts kStop to every
/// other rank, so all ranks stop at their next example boundary — whatever work each had
/// left. A finished shard is published; a shard interrupted midway is discarded. Ranks that
/// run out of work report kDone to rank 0 and wait for its kRelease, still passing on a stop
/// signal of their own; rank 0 waits for every kDone (printing the job's progress
/// meanwhile) and releases them; then all ranks meet once, agree on the outcome and drain
/// the notices still in flight. No rank waits in a collective that another rank will not
/// reach, so nothing hangs; a rank that dies (SIGKILL) makes the launcher end the job.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/core/progress.h"
#include "dualrs/dist/agreement.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/core/shards.h"
#include "dualrs/dist/stop_signal.h"

namespace dualrs::dist {

/// The shards of `pending` that rank `rank` of `size` works on, round robin:
/// pending[rank], pending[rank + size], ... Every shard goes to exactly one rank.
std::vector<Shard> assign_shards(const std::vector<Shard>& pending, int rank, int size);

/// What a stage does with a shard. Called on the rank that owns the shard, in order:
/// compute(begin) ... compute(end-1), then publish(shard); or discard(shard) when stopped or
/// failed midway. Any of them may throw (the failure is then agreed, see run_shards).
struct ShardCallbacks {
  /// Computes example `position` of the selection and keeps its result for its shard.
  std::function<void(std::int64_t position)> compute;
  /// Every example of `shard` is computed: publish its file (atomically).
  std::function<void(const Shard& shard)> publish;
  /// `shard` was interrupted: drop what compute() kept for it.
  std::function<void(const Shard& shard)> discard;
  /// Optional: a line for this rank's log file.
  std::function<void(const std::string& line)> log;
};

struct ShardRunOptions {
  /// Seconds between a rank's progress notices to rank 0.
  double progress_interval_s = 1.0;
};

/// The agreed outcome (every rank returns the same except `published`).
struct ShardRunResult {
  bool preempted = false;             ///< some rank stopped on request before its shards were done
  std::int64_t published = 0;         ///< shards this rank published
  std::int64_t published_total = 0;   ///< shards all ranks published
  std::int64_t abandoned_total = 0;   ///< pending shards left undone (preempted)
};

/// Collective. Runs `pending` (the shards not yet done, the same list on every rank) over
/// the ranks. On rank 0, `progress` (may be null) counts examples of the whole run, starting
/// from `done_before` (examples in shards finished by earlier runs).
/// \throws AgreedFailure on every rank when a callback threw on some rank (the finished
/// shards of every rank are published first); CommError on communication failures.
ShardRunResult run_shards(Communicator& comm, const StopToken& stop, const std::vector<Shard>& pending,
                          const ShardCallbacks& work, ProgressMeter* progress, std::int64_t done_before,
                          const DescribeFn& describe, const ShardRunOptions& options = {});

/// Thrown from inside ShardCallbacks::compute when a stop was requested midway through an
/// example, e.g. between two batches of noisy copies (pipeline::stopping_between_batches): the
/// shard is discarded as if the stop had come before the example; it is no failure.
class StopInExample : public Error {
 public:
  using Error::Error;
};

/// Thrown on every rank after a stage stopped on request (exit code kExitPreempted = 75):
/// finished shards are published, and running the stage again completes it.
class Preempted : public Error {
 public:
  using Error::Error;
};

}  // namespace dualrs::dist
