#pragma once
// What every subcommand runs with: the ranks of the job, stop requests, how errors read,
// and helpers that run a phase on every rank (or on rank 0) and agree on its outcome
// (docs/style.md §4: a rank never throws while the others wait in a collective).

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dualrs/core/progress.h"
#include "dualrs/core/shards.h"
#include "dualrs/dist/agreement.h"
#include "dualrs/dist/communicator.h"
#include "dualrs/dist/nccl_communicator.h"
#include "dualrs/dist/stop_signal.h"
#include "dualrs/dist/world.h"

namespace dualrs::pipeline {

struct StageContext {
  dist::Communicator& comm;
  const dist::World& world;
  dist::StopSignals& signals;
  dist::DescribeFn describe;       ///< exception -> exit code + message (knows Torch's errors)
  std::string mpi_version;         ///< for provenance, e.g. "Open MPI v4.1.4" or "none"
  Verbosity verbosity = Verbosity::kNormal;
  ShardSubset subset;              ///< sharded stages: --shard-subset (all shards by default)
  /// NCCL over this process's GPU, made on first use by train_context (CUDA training on
  /// several ranks) and kept for the stages that follow in this process.
  std::shared_ptr<dist::NcclCommunicator> device_comm{};
  /// The plan lines of the stage about to run (announce_plan): a sharded stage prints them as
  /// its first progress lines once it holds its folder's lock, others at once.
  std::vector<std::string> plan_lines{};

  bool is_root() const { return comm.is_root(); }
  /// Rank 0 and not --quiet: the rank that talks.
  bool talks() const { return comm.is_root() && verbosity != Verbosity::kQuiet; }

  /// Runs `phase` on every rank, then agrees (throws dist::AgreedFailure everywhere if any
  /// rank failed).
  template <typename Fn>
  void agreed(Fn&& phase) {
    dist::agreed(comm, describe, std::forward<Fn>(phase));
  }
  /// Runs `work` on rank 0 while the other ranks wait, then agrees.
  template <typename Fn>
  void on_root(Fn&& work) {
    dist::on_root(comm, describe, std::forward<Fn>(work));
  }
};

/// Prints one line to stderr when `ctx.talks()` (printf-style).
template <typename... Args>
void say(const StageContext& ctx, const char* format, Args... args) {
  if (!ctx.talks()) return;
  std::fprintf(stderr, format, args...);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

/// A warning: printed on rank 0 even with --quiet.
template <typename... Args>
void warn(const StageContext& ctx, const char* format, Args... args) {
  if (!ctx.is_root()) return;
  std::fputs("warning: ", stderr);
  std::fprintf(stderr, format, args...);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace dualrs::pipeline
