#pragma once
/// \file
/// Stop requests for preemption (docs/cluster.md §7, §8: `--signal=B:USR1@300`, scancel, requeue).
/// A signal handler only sets a flag; sharded stages poll it at every example boundary and,
/// through their models, before every batch of noisy copies; the ranks agree, publish their
/// finished shards, release the folder's lock and exit with kExitPreempted.

namespace dualrs::dist {

/// Exit code of a stage that stopped early on request and can be resumed by running it
/// again (BSD's EX_TEMPFAIL; the Slurm templates requeue on it).
inline constexpr int kExitPreempted = 75;

/// Whether someone asked this process to stop.
class StopToken {
 public:
  virtual ~StopToken() = default;
  virtual bool stop_requested() const = 0;
};

/// A token that never fires (tests, stages that cannot stop early).
class NeverStop final : public StopToken {
 public:
  bool stop_requested() const override { return false; }
};

/// SIGUSR1, SIGTERM, SIGINT and SIGHUP as stop requests. The handlers only record the signal (the flag is
/// process-wide, as a signal handler needs; at most one StopSignals may exist).
///  - SIGUSR1 always sets the flag: phases that cannot stop early finish, and the next
///    stop-aware phase (or `dualrs run` before its next stage) stops at once.
///  - SIGTERM, SIGINT and SIGHUP set the flag while a GracefulScope is open (a stop-aware
///    phase is running). Outside one, or when the same one comes a second time, they end the
///    process as usual.
/// Installed in main() after MPI_Init (Open MPI installs its own handlers for other signals);
/// the destructor restores the previous handlers.
class StopSignals final : public StopToken {
 public:
  /// \throws Error when another StopSignals exists or sigaction fails.
  StopSignals();
  ~StopSignals() override;
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool stop_requested() const override;
  /// The signal that asked to stop (SIGUSR1, SIGTERM, SIGINT or SIGHUP), or 0.
  int signal_number() const;

  /// While alive, SIGTERM is a stop request instead of terminating the process.
  class GracefulScope {
   public:
    explicit GracefulScope(StopSignals& signals);
    ~GracefulScope();
    GracefulScope(const GracefulScope&) = delete;
    GracefulScope& operator=(const GracefulScope&) = delete;
  };
};

/// "SIGUSR1", "SIGTERM", "SIGINT", "SIGHUP", or "a signal".
const char* signal_name(int signal_number);

}  // namespace dualrs::dist
